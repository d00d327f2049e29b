"""Budgets and the ledger: holds placed atomically at submit, settled at every terminal state."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone

from jobs import services
from jobs.models import Budget, CostEntry, Job, VideoModel
from tests import factories
from tests.factories import KLING, form_data, set_budget
from tests.helpers import at_once, run_job_now

pytestmark = pytest.mark.usefixtures("catalog", "broker_url")


def submit(owner, model=KLING, prompt="a test"):
    """factories.submit on Kling unless told otherwise: for 5 seconds (Kling has no auto), and a
    b64_json result."""
    seconds = "5" if model == KLING else "auto"
    return factories.submit(owner, prompt, model=model, seconds=seconds, response_format="b64_json")


# --- Holds at submit --------------------------------------------------------------------------


def test_a_job_holds_its_models_top_price(alice):
    job = submit(alice)
    assert job.hold == Decimal("0.50")


def test_a_submit_over_budget_is_refused_with_the_amounts_and_saves_nothing(alice, alice_client):
    set_budget(alice, "0.60")
    submit(alice)  # holds $0.50

    response = alice_client.post(
        reverse("jobs:create"),
        form_data(prompt="one more", model=KLING),
    )

    assert response.status_code == 200
    assert (
        "Your personal budget has $0.10 left this month; this video could cost up to $0.50."
        in response.content.decode()
    )
    assert Job.objects.filter(owner=alice).count() == 1


def test_free_models_fit_any_budget(alice):
    set_budget(alice, "0")
    assert submit(alice, model="ir/test-video").hold == 0


def test_no_budget_means_no_limit(alice):
    for _ in range(5):
        submit(alice, model="google/veo-3.1-fast")
    assert Job.objects.filter(owner=alice).count() == 5


def test_last_months_spend_does_not_count_against_this_month(alice):
    set_budget(alice, "0.50")
    old = Job.objects.create(owner=alice, model="kling/kling-2.1-standard", status="succeeded")
    services.ledger_record(
        job=old,
        outcome=CostEntry.Outcome.CHARGED,
        cost=Decimal("0.40"),
        at=timezone.now() - timedelta(days=40),
    )

    assert submit(alice).hold == Decimal("0.50")


def test_pending_possible_costs_count_against_the_budget_until_reconciled(alice, admin_user):
    set_budget(alice, "0.60")
    unknown = Job.objects.create(owner=alice, model="kling/kling-2.1-standard", status="failed")
    entry = services.ledger_record(
        job=unknown, outcome=CostEntry.Outcome.UNKNOWN, possible_cost=Decimal("0.50")
    )

    with pytest.raises(services.OverBudgetError):
        submit(alice)
    services.ledger_reconcile(entry=entry, charged=False, by=admin_user)
    assert submit(alice).hold == Decimal("0.50")


# --- Settlement at every terminal state ---------------------------------------------------------


def test_success_turns_the_hold_into_the_actual_cost(alice, simulator):
    job = submit(alice)

    run_job_now(job.pk)

    job.refresh_from_db()
    entry = CostEntry.objects.get(job=job)
    assert job.status == Job.Status.SUCCEEDED and job.hold == 0
    assert entry.outcome == "charged" and entry.cost == job.cost > 0
    assert entry.cost == Decimal(simulator.stats()["charged_usd"])


def test_a_refusal_releases_the_hold_and_records_zero(alice, simulator):
    simulator.inject({"kind": "http_error", "status": 502})
    job = submit(alice)

    run_job_now(job.pk)

    job.refresh_from_db()
    entry = CostEntry.objects.get(job=job)
    assert job.hold == 0 and entry.outcome == "refunded" and entry.cost == 0


def test_an_unknown_outcome_releases_the_hold_into_a_pending_possible_cost(alice, simulator):
    simulator.inject({"kind": "drop", "after_seconds": 0.1})
    job = submit(alice)

    run_job_now(job.pk)

    job.refresh_from_db()
    entry = CostEntry.objects.get(job=job)
    assert job.hold == 0
    assert (entry.outcome, entry.cost, entry.possible_cost) == ("unknown", 0, Decimal("0.5"))
    assert entry.reconciliation == "pending"


def test_a_failed_store_keeps_the_charge(alice, simulator, settings):
    settings.STORE_RETRY_DELAY = 0
    simulator.inject({"kind": "download_fail", "times": 10, "mode": "error"})
    job = factories.submit(alice, "lost", model=KLING, seconds="5")

    run_job_now(job.pk)

    job.refresh_from_db()
    assert job.status == Job.Status.FAILED
    assert CostEntry.objects.get(job=job).cost == job.cost > 0


def test_cancel_releases_the_hold_and_writes_no_entry(alice):
    job = submit(alice)

    services.job_cancel(job=job)

    job.refresh_from_db()
    assert job.hold == 0 and not CostEntry.objects.filter(job=job).exists()


def test_giving_up_after_rate_limits_releases_the_hold_at_no_cost(alice, simulator):
    job = submit(alice)
    Job.objects.filter(pk=job.pk).update(attempt=4)
    simulator.inject({"kind": "rate_limit", "retry_after": 1})

    run_job_now(job.pk)

    job.refresh_from_db()
    assert job.status == Job.Status.FAILED and job.hold == 0
    assert CostEntry.objects.get(job=job).cost == 0


def test_the_ledger_holds_one_entry_per_job(alice):
    job = Job.objects.create(owner=alice, model="ir/test-video", status="succeeded")
    services.ledger_record(job=job, outcome=CostEntry.Outcome.CHARGED, cost=Decimal("0.1"))

    with pytest.raises(IntegrityError), transaction.atomic():
        services.ledger_record(job=job, outcome=CostEntry.Outcome.CHARGED, cost=Decimal("0.1"))


def test_reconciling_is_done_once(alice, admin_user):
    job = Job.objects.create(owner=alice, model="kling/kling-2.1-standard", status="failed")
    entry = services.ledger_record(
        job=job, outcome=CostEntry.Outcome.UNKNOWN, possible_cost=Decimal("0.50")
    )

    assert services.ledger_reconcile(entry=entry, charged=True, by=admin_user)
    assert not services.ledger_reconcile(entry=entry, charged=False, by=admin_user)
    entry.refresh_from_db()
    job.refresh_from_db()
    assert entry.cost == job.cost == Decimal("0.50") and entry.reconciliation == "charged"


# --- Budget changes and warnings ---------------------------------------------------------------


def test_every_budget_change_is_recorded(alice, admin_user):
    services.budget_set(user=alice, limit=Decimal("5"), changed_by=admin_user)
    services.budget_set(user=alice, limit=None, changed_by=admin_user)

    history = [(c.before["limit"], c.after["limit"], c.actor) for c in alice_changes(alice)]
    assert history == [("5.00", None, admin_user), (None, "5.00", admin_user)]


def alice_changes(user):
    from jobs.models import AuditEvent

    return AuditEvent.objects.filter(user=user, action="budget.set").order_by("-created_at", "-pk")


def test_new_users_start_with_the_default_budget(settings, django_user_model):
    settings.DEFAULT_MONTHLY_BUDGET = Decimal("3")
    carol = django_user_model.objects.create_user("carol")
    assert services.budget_for(carol).limit == Decimal("3")


def test_pages_warn_at_80_percent_of_the_budget(alice, alice_client):
    set_budget(alice, "0.60")
    assert "of this month's budget" not in alice_client.get(reverse("jobs:list")).content.decode()

    submit(alice)  # $0.50 held of $0.60: 83%

    html = alice_client.get(reverse("jobs:list")).content.decode()
    assert "You have used 83% of this month's budget ($0.50 of $0.60" in html


def test_the_polling_fragment_still_costs_one_query(alice, alice_client, django_assert_num_queries):
    """The budget warning on full pages is lazy: polling does not pay for it. (A queued or running
    job's fragment adds its own reads, counted in test_job_page.py; a finished one adds none.)"""
    set_budget(alice, "0.60")
    job = submit(alice)
    Job.objects.filter(pk=job.pk).update(status=Job.Status.SUCCEEDED, hold=0)
    url = reverse("jobs:status", args=[job.pk])
    alice_client.get(url)

    with django_assert_num_queries(3):  # the session, the user, the job
        alice_client.get(url)


# --- The race -----------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_fifty_simultaneous_submits_never_hold_more_than_the_budget(alice, broker_url, settings):
    # This race is about the budget alone; the submit rate and the active-job cap have their own.
    settings.JOB_SUBMITS_PER_MINUTE = settings.JOB_ACTIVE_LIMIT = 0
    VideoModel.objects.create(
        id="test/three-cents",
        name="three cents",
        pricing="fixed",
        price_min=Decimal("0.03"),
        price_average=Decimal("0.03"),
        price_max=Decimal("0.03"),
        seconds=[5],
        synced_at=timezone.now(),
    )
    set_budget(alice, "1.00")
    accepted, refused, errors = at_once(
        50,
        lambda n: submit(alice, model="test/three-cents", prompt=f"race {n}"),
        services.OverBudgetError,
    )

    held = sum(job.hold for job in Job.objects.filter(owner=alice))
    assert errors == []
    assert len(accepted) == 33 and len(refused) == 17  # 33 x $0.03 = $0.99
    assert held == Decimal("0.99") <= Budget.objects.get(user=alice).limit
