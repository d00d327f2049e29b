"""Provider-side caps: with a management key the studio mints one ImageRouter key per team and per
person, capped by their budget, and each job calls with the key of the place it is charged to.
Everything runs against the simulator over real HTTP; jobs run on a real worker where the test
is about a job's run."""

import base64
import json
import logging
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import redis
from cryptography.fernet import Fernet
from django.urls import reverse
from django.utils import timezone

from jobs import encryption, imagerouter, services
from jobs.models import AuditEvent, Budget, CostEntry, Job, Notice, OutgoingEmail, ProviderKey
from jobs.services import provider_keys
from tests.factories import KLING, TEST_MODEL, VEO, submit, team_with
from tests.helpers import at_once, run_with_settings, wait_for, wait_until_finished

MANAGER = "studio-management-key-" + "m" * 42
FERNET_KEY = Fernet.generate_key().decode()


@pytest.fixture
def managed(simulator, settings):
    """The simulator knows MANAGER as a management key, and the studio has it."""
    simulator.configure(management_keys=[MANAGER])
    settings.IMAGEROUTER_MANAGEMENT_KEY = MANAGER
    settings.IMAGEROUTER_KEY_ENCRYPTION_KEYS = [FERNET_KEY]
    settings.JOB_SUBMITS_PER_MINUTE = 0
    settings.JOB_ACTIVE_LIMIT = 0
    return simulator


@pytest.fixture
def design(alice, bob):
    return team_with("Design", members=[alice, bob])


def set_team_budget(team, limit, period):
    services.budget_set(
        level=Budget.Level.TEAM, team=team, limit=Decimal(limit), period=period, changed_by=None
    )


def set_personal_budget(user, limit, period="month"):
    services.budget_set(user=user, limit=Decimal(limit), period=period, changed_by=None)


def provider_report() -> dict:
    """The provider's usage per key, by its id, read as the studio reads it."""
    report = imagerouter.get_client().credits(by_api_key=True)
    return {row["api_key_id"]: row for row in report["usage_by_api_key"]}


def midnight(day) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def secrets_of_keys() -> list[str]:
    return [
        encryption.decrypt(k.secret_encrypted)
        for k in ProviderKey.objects.exclude(secret_encrypted="")
    ]


pytestmark = pytest.mark.usefixtures("catalog")


# Minting per team and per person ---------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_team_job_calls_with_a_team_key_capped_by_the_teams_budget(
    worker, managed, alice, design
):
    set_team_budget(design, "20", "week")

    job = wait_until_finished(submit(alice, "a team video", team=design))

    assert job.status == Job.Status.SUCCEEDED, job.error
    key = ProviderKey.objects.get(team=design)
    assert job.provider_key == key
    assert CostEntry.objects.get(job=job).provider_key == key
    today = timezone.now().astimezone(UTC).date()
    monday = midnight(today - timedelta(days=today.weekday()))
    assert (key.spend_limit, key.period) == (Decimal("20"), "week")
    assert (key.window_start, key.window_end) == (monday, monday + timedelta(days=7))
    assert key.expires_at == monday + timedelta(days=7, hours=1)  # a little past the week
    assert key.status == ProviderKey.Status.ACTIVE and key.retired_at is None
    # What the provider holds for that key, and that the generation used it.
    row = provider_report()[key.provider_id]
    assert row["api_key_name"] == key.name and "Design" in key.name
    assert (row["spend_limit"], row["spend_limit_period"]) == (Decimal("20"), "week")
    assert row["expires_at"] == key.expires_at
    assert row["total_requests"] == 1
    assert len(provider_report()) == 1  # the studio's own key made no generation


@pytest.mark.django_db(transaction=True)
def test_each_person_gets_a_key_of_their_own_capped_by_their_personal_budget(
    worker, managed, alice, bob
):
    set_personal_budget(alice, "5", "day")
    set_personal_budget(bob, "7")

    jobs = [wait_until_finished(submit(person, "mine")) for person in (alice, bob, alice)]

    assert [job.status for job in jobs] == [Job.Status.SUCCEEDED] * 3
    alices, bobs = ProviderKey.objects.get(user=alice), ProviderKey.objects.get(user=bob)
    assert (alices.team, alices.spend_limit, alices.period) == (None, Decimal("5"), "day")
    assert (bobs.spend_limit, bobs.period) == (Decimal("7"), "month")
    assert [job.provider_key for job in jobs] == [alices, bobs, alices]
    report = provider_report()
    assert report[alices.provider_id]["total_requests"] == 2
    assert report[bobs.provider_id]["total_requests"] == 1


@pytest.mark.django_db
def test_a_team_without_a_budget_gets_a_key_without_a_cap_that_still_expires(
    managed, alice, design
):
    job = submit(alice, "no budget", team=design)

    key, _secret = provider_keys.provider_key_for_job(job=job)

    assert (key.spend_limit, key.period) == (None, "")
    row = provider_report()[key.provider_id]
    assert (row["spend_limit"], row["spend_limit_period"]) == (None, None)
    assert row["expires_at"] == key.expires_at == key.window_end + timedelta(hours=1)


@pytest.mark.django_db
def test_a_key_minted_mid_period_is_capped_at_what_the_budget_has_left(
    managed, alice, design, simulator
):
    set_team_budget(design, "20", "month")
    first = submit(alice, "spend some", team=design, model=KLING, seconds="5")
    services.job_run(job_id=first.pk)
    spent = Job.objects.get(pk=first.pk).cost
    assert spent > 0
    ProviderKey.objects.update(retired_at=timezone.now())  # as if the key had been lost

    key, _ = provider_keys.provider_key_for_job(job=submit(alice, "more", team=design))

    assert key.spend_limit == Decimal("20") - spent


@pytest.mark.django_db
def test_every_mint_is_in_the_audit_trail_by_the_studio_without_the_secret(managed, alice, design):
    set_team_budget(design, "12.50", "day")

    key, secret = provider_keys.provider_key_for_job(job=submit(alice, "audit", team=design))

    event = AuditEvent.objects.get(action=AuditEvent.Action.PROVIDER_KEY_MINTED)
    assert (event.actor, event.team) == (None, design)
    assert event.after == {
        "name": key.name,
        "limit": "12.5000",
        "period": "day",
        "expires_at": key.expires_at.isoformat(),
    }
    assert "$12.50 a day" in event.summary
    assert secret not in str(event.after) + event.summary


# Race-safe minting -----------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_workers_needing_the_teams_key_at_once_mint_one(managed, alice, design):
    jobs = [submit(alice, f"at once {n}", team=design) for n in range(6)]

    got, refused, errors = at_once(
        6, lambda n: provider_keys.provider_key_for_job(job=jobs[n]), Exception
    )

    assert errors == [] and refused == []
    assert {key.pk for key, _secret in got} == {ProviderKey.objects.get().pk}
    assert len({secret for _key, secret in got}) == 1
    assert managed.stats()["keys_minted"] == 1


@pytest.mark.django_db
def test_a_stale_claim_is_taken_over_and_the_late_minters_key_is_never_used(managed, alice, design):
    job = submit(alice, "stale", team=design)
    place = provider_keys.place_of_job(job)
    terms = provider_keys.terms_for(place, at=timezone.now())
    abandoned = provider_keys._claim(place, terms, now=timezone.now() - timedelta(minutes=5))
    late_minter = ProviderKey.objects.get(pk=abandoned.pk)  # its view of the claim

    key, _ = provider_keys.provider_key_for_job(job=job)
    assert key.pk == abandoned.pk and key.status == ProviderKey.Status.ACTIVE
    # The first minter wakes up and finishes: its key is recorded, retired, never chosen.
    assert provider_keys._mint(late_minter, place, terms) is None

    unused = ProviderKey.objects.exclude(pk=key.pk).get()
    assert unused.retired_at is not None and "lost its claim" in unused.retired_because
    assert unused.secret_encrypted == ""
    assert managed.stats()["keys_minted"] == 2
    assert AuditEvent.objects.filter(action=AuditEvent.Action.PROVIDER_KEY_MINTED).count() == 2
    again, _ = provider_keys.provider_key_for_job(job=job)
    assert again.pk == key.pk


# The provider-side cap refusing a call -----------------------------------------------------------


@pytest.fixture
def staff(django_user_model):
    return django_user_model.objects.create_user(
        "root", email="root@example.com", password="root-password-1", is_staff=True
    )


@pytest.mark.django_db(transaction=True)
def test_a_call_the_provider_cap_refuses_fails_uncharged_and_staff_are_told(
    worker, managed, alice, design, staff
):
    set_team_budget(design, "0.60", "day")
    # The studio's accounting goes wrong: a call the provider charged ($0.60 on the team's key)
    # is marked "not charged" in the studio, so the studio believes the budget is untouched.
    managed.inject({"kind": "drop", "after_seconds": 0.2})
    lost = wait_until_finished(submit(alice, "dropped", team=design, model=VEO, seconds="4"))
    assert lost.outcome_unknown
    services.ledger_reconcile(entry=lost.cost_entry, charged=False, by=staff)
    paid = managed.stats()["paid_calls"]

    job = wait_until_finished(submit(alice, "one more", team=design, model=VEO, seconds="4"))

    assert job.status == Job.Status.FAILED
    assert (job.cost, job.outcome_unknown) == (Decimal(0), False)
    assert "spending cap on the Design team's provider key ($0.60 a day)" in job.error
    assert "Nothing was charged" in job.error and "Staff have been told" in job.error
    assert CostEntry.objects.get(job=job).outcome == CostEntry.Outcome.REFUNDED
    assert managed.stats()["paid_calls"] == paid
    notice = Notice.objects.get(kind=Notice.Kind.PROVIDER_CAP)
    assert notice.job == job and "$0.6000 of its $0.6000 cap" in notice.message
    email = OutgoingEmail.objects.get(to="root@example.com")
    assert email.subject == "ImageRouter's cap refused a video the studio's budget allowed"


@pytest.mark.django_db(transaction=True)
def test_a_free_video_refused_at_a_cap_both_sides_agree_is_reached_alarms_no_one(
    worker, managed, alice, design, staff
):
    set_team_budget(design, "0.60", "day")
    spent = wait_until_finished(submit(alice, "spend it", team=design, model=VEO, seconds="4"))
    assert spent.status == Job.Status.SUCCEEDED

    free = wait_until_finished(submit(alice, "a free one", team=design, model=TEST_MODEL))

    assert free.status == Job.Status.FAILED and free.cost == 0
    assert "the Design team has used its budget for this period" in free.error
    assert "free ones too" in free.error
    assert not Notice.objects.exists()


@pytest.mark.django_db
def test_a_refusal_that_is_not_the_cap_stays_an_ordinary_refusal(managed, alice, design):
    set_team_budget(design, "20", "month")
    managed.inject({"kind": "http_error", "status": 403, "message": "Content policy"})
    job = submit(alice, "refused", team=design)

    services.job_run(job_id=job.pk)

    job.refresh_from_db()
    assert job.status == Job.Status.FAILED
    assert job.error == "ImageRouter refused this request: Content policy Nothing was charged."
    assert not Notice.objects.exists()


# Keys the provider no longer takes, and mints that fail ----------------------------------------


@pytest.mark.django_db
def test_a_key_the_provider_refuses_with_401_is_retired_and_the_job_retried_with_a_new_one(
    managed, alice, design
):
    managed.inject({"kind": "http_error", "status": 401, "message": "API key is disabled"})
    job = submit(alice, "disabled key", team=design)

    services.job_run(job_id=job.pk)

    job.refresh_from_db()
    first = ProviderKey.objects.get()
    assert job.status == Job.Status.QUEUED and "Nothing was charged" in job.error
    assert first.retired_at is not None and "401" in first.retired_because
    Job.objects.filter(pk=job.pk).update(not_before=None)
    services.job_run(job_id=job.pk)
    job.refresh_from_db()
    assert job.status in (Job.Status.STORING, Job.Status.SUCCEEDED), job.error
    assert job.provider_key != first
    assert provider_report()[first.provider_id]["total_requests"] == 1


@pytest.mark.django_db
def test_a_refused_management_key_fails_the_job_uncharged_with_a_message_for_an_admin(
    managed, alice, design, settings
):
    settings.IMAGEROUTER_MANAGEMENT_KEY = "not-the-management-key"
    job = submit(alice, "no key", team=design)

    services.job_run(job_id=job.pk)

    job.refresh_from_db()
    assert job.status == Job.Status.FAILED
    assert "ImageRouter refused to make a key for the Design team" in job.error
    assert "IMAGEROUTER_MANAGEMENT_KEY" in job.error and "not-the-management-key" not in job.error
    assert CostEntry.objects.get(job=job).outcome == CostEntry.Outcome.NOT_PROCESSED
    assert not ProviderKey.objects.exists()  # the claim was given up: the next job tries again
    assert managed.stats()["generation_requests"] == 0


@pytest.mark.django_db
def test_a_provider_that_cannot_be_reached_sends_the_job_back_to_wait(managed, alice, settings):
    settings.IMAGEROUTER_BASE_URL = "http://127.0.0.1:9"  # nothing listens there
    job = submit(alice, "unreachable")

    services.job_run(job_id=job.pk)

    job.refresh_from_db()
    assert job.status == Job.Status.QUEUED and job.not_before is not None
    assert "Could not get an ImageRouter key" in job.error
    assert not ProviderKey.objects.exists()


# Renewal ------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_renewal_mints_the_next_periods_key_before_the_current_one_expires(managed, alice, design):
    set_team_budget(design, "5", "day")
    current, old_secret = provider_keys.provider_key_for_job(job=submit(alice, "t", team=design))
    end = current.window_end

    assert provider_keys.provider_keys_renew(now=end - timedelta(hours=2))["renewed"] == 0
    counts = provider_keys.provider_keys_renew(now=end - timedelta(minutes=30))

    assert counts["renewed"] == 1
    following = ProviderKey.objects.get(window_start=end)
    assert following.window_end == end + timedelta(days=1)
    assert (following.spend_limit, following.period) == (Decimal("5"), "day")
    assert following.expires_at == end + timedelta(days=1, hours=1)
    assert following.minted_at < current.expires_at  # renewed before the old one expires
    assert provider_keys.provider_keys_renew(now=end - timedelta(minutes=29))["renewed"] == 0
    # From midnight jobs get the new key, and the old one is retired.
    after = end + timedelta(seconds=30)
    assert provider_keys.provider_keys_renew(now=after)["retired"] == 1
    from jobs import selectors

    assert selectors.live_provider_key(place=current.place, now=after) == following
    # At the provider the old key stops an hour after its day ended; the new one goes on.
    new_secret = encryption.decrypt(following.secret_encrypted)
    managed.configure(now=(end + timedelta(hours=1, seconds=1)).isoformat())
    old_client = imagerouter.ImageRouterClient.from_settings(api_key=old_secret)
    with pytest.raises(imagerouter.RefusedError) as refused:
        old_client.generate(model=TEST_MODEL, prompt="too late")
    assert refused.value.status == 401
    new_client = imagerouter.ImageRouterClient.from_settings(api_key=new_secret)
    assert new_client.generate(model=TEST_MODEL, prompt="in time").url


@pytest.mark.django_db
def test_a_key_nobody_used_is_left_to_expire_rather_than_renewed(managed, alice, design):
    set_team_budget(design, "5", "day")
    key, _ = provider_keys.provider_key_for_job(job=submit(alice, "t", team=design))
    ProviderKey.objects.filter(pk=key.pk).update(last_used_at=key.window_start - timedelta(days=1))

    counts = provider_keys.provider_keys_renew(now=key.window_end - timedelta(minutes=10))

    assert counts["renewed"] == 0
    assert ProviderKey.objects.count() == 1


def test_renewal_does_nothing_without_a_management_key(settings, db):
    settings.IMAGEROUTER_MANAGEMENT_KEY = ""

    assert provider_keys.provider_keys_renew() == {
        "retired": 0,
        "replaced": 0,
        "renewed": 0,
        "failed": 0,
    }


# A budget change --------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_budget_change_mints_a_new_key_and_the_old_one_is_never_used_again(
    worker, managed, alice, design
):
    set_team_budget(design, "20", "month")
    first = wait_until_finished(submit(alice, "before", team=design, model=KLING, seconds="5"))
    old = first.provider_key

    set_team_budget(design, "30", "month")
    jobs = [wait_until_finished(submit(alice, f"after {n}", team=design)) for n in range(2)]

    old.refresh_from_db()
    assert old.retired_at is not None and old.retired_because == "its budget changed"
    new = ProviderKey.objects.get(retired_at__isnull=True)
    assert [job.provider_key for job in jobs] == [new, new]
    assert new.budget_limit == Decimal("30") and new.spend_limit == Decimal("30") - first.cost
    report = provider_report()
    assert report[old.provider_id]["total_requests"] == 1
    assert report[new.provider_id]["total_requests"] == 2


@pytest.mark.django_db
def test_the_renewal_pass_replaces_a_used_key_whose_budget_changed(managed, alice, design):
    set_team_budget(design, "20", "month")
    old, _ = provider_keys.provider_key_for_job(job=submit(alice, "t", team=design))
    set_team_budget(design, "10", "week")

    counts = provider_keys.provider_keys_renew()

    assert counts["replaced"] == 1
    old.refresh_from_db()
    assert old.retired_because == "its budget changed"
    new = ProviderKey.objects.get(retired_at__isnull=True)
    assert (new.spend_limit, new.period) == (Decimal("10"), "week")
    key, _ = provider_keys.provider_key_for_job(job=submit(alice, "u", team=design))
    assert key == new and managed.stats()["keys_minted"] == 2


# Reconciliation per key ---------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_per_key_reconciliation_matches_the_provider_to_the_cent_after_a_run_with_faults(
    worker, managed, alice, bob, design, admin_client, settings
):
    settings.STORE_RETRY_DELAY = 0
    faults = {
        "team dropped": {"kind": "drop", "after_seconds": 0.2},
        "team malformed": {"kind": "malformed"},
        "team refused": {"kind": "http_error", "status": 502},
        "team failed late": {"kind": "error_after", "seconds": 0.2},
        "team rate limited": {"kind": "rate_limit", "retry_after": 1},
        "bob download fails": {"kind": "download_fail", "times": 1, "mode": "error"},
    }
    for prompt, fault in faults.items():
        managed.inject({**fault, "match": {"prompt": prompt}})
    plan = [
        (alice, "team ok 1", design, KLING, "5"),
        (bob, "team ok 2", design, KLING, "10"),
        (alice, "team dropped", design, VEO, "4"),
        (bob, "team malformed", design, VEO, "4"),
        (alice, "team refused", design, KLING, "5"),
        (alice, "team failed late", design, VEO, "4"),
        (bob, "team rate limited", design, VEO, "4"),
        (alice, "alice ok", None, VEO, "4"),
        (bob, "bob download fails", None, KLING, "5"),
    ]
    jobs = [
        submit(owner, prompt, team=team, model=model, seconds=seconds)
        for owner, prompt, team, model, seconds in plan
    ]
    jobs = [wait_until_finished(job) for job in jobs]
    assert sum(job.outcome_unknown for job in jobs) == 2

    def rows():
        page = admin_client.get(reverse("costs:reconciliation"))
        assert page.status_code == 200
        return {row.key.pk: row for row in page.context["key_rows"] if row.key}, page

    by_key, page = rows()
    keys = ProviderKey.objects.all()
    assert {key.place for key in keys} == {
        f"team:{design.pk}",
        f"user:{alice.pk}",
        f"user:{bob.pk}",
    }
    team_key = keys.get(team=design)
    # Before the unknown outcomes are checked, the difference is exactly their possible cost.
    team_row = by_key[team_key.pk]
    assert team_row.difference == team_row.studio["pending"] == Decimal("1.20")
    for key in keys.exclude(team=design):
        assert by_key[key.pk].difference == 0 and by_key[key.pk].window_difference == 0

    for job in jobs:
        if job.outcome_unknown:  # the provider's logs say charged, at the model's price
            admin_client.post(reverse("costs:reconcile", args=[job.pk]), {"verdict": "charged"})

    by_key, page = rows()
    report = provider_report()
    for key in keys:
        row = by_key[key.pk]
        ledger = CostEntry.objects.filter(provider_key=key)
        studio = sum((entry.cost for entry in ledger), Decimal(0))
        assert report[key.provider_id]["credit_usage"] == studio == row.studio["total"]
        assert (row.difference, row.window_difference) == (0, 0), key.name
    assert team_row.studio["count"] == 7
    text = page.content.decode()
    assert "Per provider key" in text and team_key.name in text
    assert f"{report[team_key.provider_id]['credit_usage']:.2f}" in text


# Without a management key -------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_without_a_management_key_jobs_call_with_the_studios_own_key(
    worker, simulator, alice, design, settings, admin_client
):
    settings.IMAGEROUTER_MANAGEMENT_KEY = ""
    set_team_budget(design, "20", "month")

    jobs = [
        wait_until_finished(submit(alice, "as before", team=design)),
        wait_until_finished(submit(alice, "mine")),
    ]

    assert [job.status for job in jobs] == [Job.Status.SUCCEEDED] * 2
    assert [job.provider_key for job in jobs] == [None, None]
    assert not ProviderKey.objects.exists()
    (row,) = provider_report().values()
    assert row["total_requests"] == 2 and row["spend_limit"] is None
    assert simulator.stats()["keys_minted"] == 0
    page = admin_client.get(reverse("costs:reconciliation"))
    assert [r.key for r in page.context["key_rows"]] == [None]


# Settings and storage of the secrets ------------------------------------------------------------


def test_a_management_key_without_an_encryption_key_refuses_to_start():
    started = run_with_settings(IMAGEROUTER_MANAGEMENT_KEY="m" * 64)

    assert started.returncode != 0
    assert "set IMAGEROUTER_KEY_ENCRYPTION_KEYS too" in started.stderr
    assert "m" * 64 not in started.stderr


def test_an_encryption_key_that_is_not_a_fernet_key_refuses_to_start():
    started = run_with_settings(
        IMAGEROUTER_MANAGEMENT_KEY="m" * 64,
        IMAGEROUTER_KEY_ENCRYPTION_KEYS=f"{FERNET_KEY},not-a-key",
    )

    assert started.returncode != 0
    assert "key 2 is not a Fernet key" in started.stderr
    assert FERNET_KEY not in started.stderr


def test_a_stored_secret_is_encrypted_and_survives_a_rotation_of_the_encryption_key(settings):
    settings.IMAGEROUTER_KEY_ENCRYPTION_KEYS = [FERNET_KEY]
    secret = "s" * 64
    stored = encryption.encrypt(secret)
    assert secret not in stored

    settings.IMAGEROUTER_KEY_ENCRYPTION_KEYS = [Fernet.generate_key().decode(), FERNET_KEY]
    assert encryption.decrypt(stored) == secret

    settings.IMAGEROUTER_KEY_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
    with pytest.raises(encryption.SecretUnreadableError):
        encryption.decrypt(stored)


@pytest.mark.django_db
def test_a_key_whose_secret_no_longer_decrypts_is_retired_and_replaced(
    managed, alice, design, settings
):
    old, _ = provider_keys.provider_key_for_job(job=submit(alice, "t", team=design))
    settings.IMAGEROUTER_KEY_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]

    new, secret = provider_keys.provider_key_for_job(job=submit(alice, "u", team=design))

    old.refresh_from_db()
    assert new != old and len(secret) == 64
    assert old.retired_because == "its secret could not be decrypted"


def test_the_client_mints_a_key_and_never_shows_its_secret(managed, client_for):
    minted = client_for(api_key=MANAGER).mint_key(
        name="direct", spend_limit=Decimal("1.5"), period="day", expires_at=None
    )

    assert len(minted.secret) == 64 and minted.name == "direct"
    assert minted.secret not in repr(minted)
    with pytest.raises(imagerouter.RefusedError) as refused:
        client_for(api_key="x" * 64).mint_key(
            name="no", spend_limit=None, period=None, expires_at=None
        )
    assert refused.value.status == 401


# Secrets ------------------------------------------------------------------------------------------


@pytest.fixture
def debug_logs(caplog):
    """Every logger at DEBUG, set before the worker starts: Celery decides then what to log."""
    for name in ("urllib3", "requests", "celery", "kombu", "jobs", "django"):
        caplog.set_level(logging.DEBUG, logger=name)
    return caplog


def leaked(text: str, secrets: list[str]) -> list[str]:
    return [secret[-8:] for secret in secrets if secret in text or secret[-12:] in text]


@pytest.mark.django_db(transaction=True)
def test_no_minted_secret_appears_in_a_page_the_admin_a_log_line_or_an_error(
    debug_logs, worker, managed, alice, alice_client, admin_client, design, caplog, monkeypatch
):
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="celery.task")
    monkeypatch.setattr(logging.getLogger("celery.task"), "propagate", True)
    set_team_budget(design, "0.60", "day")
    managed.inject({"kind": "http_error", "status": 401, "match": {"prompt": "disabled"}})
    jobs = [
        wait_until_finished(submit(alice, "team", team=design, model=VEO, seconds="4")),
        wait_until_finished(submit(alice, "personal", response_format="b64_json")),
        wait_until_finished(submit(alice, "disabled key"), timeout=90),
        wait_until_finished(submit(alice, "free, at the cap", team=design)),
    ]
    assert jobs[2].status == Job.Status.SUCCEEDED and jobs[2].attempt == 2
    assert ProviderKey.objects.filter(retired_at__isnull=False).exists()  # the 401's key
    assert "free ones too" in Job.objects.get(pk=jobs[-1].pk).error  # the cap refused it
    secrets = [*secrets_of_keys(), MANAGER]
    stored = list(
        ProviderKey.objects.exclude(secret_encrypted="").values_list("secret_encrypted", flat=True)
    )
    assert len(secrets) >= 4

    from django.contrib import admin

    pages = [reverse("admin:index"), reverse("costs:reconciliation")]
    for model, model_admin in admin.site._registry.items():
        info = (model._meta.app_label, model._meta.model_name)
        pages.append(reverse("admin:{}_{}_changelist".format(*info)))
        for pk in model_admin.get_queryset(None).values_list("pk", flat=True)[:20]:
            pages.append(reverse("admin:{}_{}_change".format(*info), args=[pk]))
    assert reverse("admin:jobs_providerkey_changelist") in pages
    for page in pages:
        response = admin_client.get(page)
        assert response.status_code == 200, page
        text = response.content.decode()
        assert leaked(text, secrets + stored) == [], page
    for job in jobs:
        for name in ("detail", "status"):
            text = alice_client.get(reverse(f"jobs:{name}", args=[job.pk])).content.decode()
            assert leaked(text, secrets + stored) == []
        assert leaked(Job.objects.get(pk=job.pk).error, secrets) == []
    for record in caplog.records:
        text = "\n".join([caplog.handler.format(record), repr(record.msg), repr(record.args)])
        assert leaked(text, secrets) == [], f"{record.name}: {record.getMessage()}"
    rows = [
        *Notice.objects.values_list("message", flat=True),
        *(str(e.after) + e.summary for e in AuditEvent.objects.all()),
        *(e.subject + e.text + e.html for e in OutgoingEmail.objects.all()),
    ]
    assert leaked("\n".join(rows), secrets) == []


@pytest.mark.django_db(transaction=True)
def test_a_task_message_carries_neither_the_job_nor_its_places_key(
    managed, alice, design, broker_url
):
    provider_keys.provider_key_for_job(job=submit(alice, "mint first", team=design))
    queue = redis.Redis.from_url(broker_url)
    queue.flushdb()  # no worker runs here: the message stays in Redis for us to read

    submit(alice, "queued with a key", team=design)

    (raw,) = queue.lrange("generate", 0, -1)
    envelope = json.loads(raw)
    args, kwargs, _embed = json.loads(base64.b64decode(envelope["body"]))
    # A turn in the fair queue: the worker chooses the job, and reads its key, when it claims.
    assert (args, kwargs) == ([], {})
    assert leaked(raw.decode(), [*secrets_of_keys(), MANAGER]) == []


def test_beat_runs_the_renewal_pass_every_minute(settings):
    from jobs import tasks

    schedule = {e["task"]: e["schedule"] for e in settings.CELERY_BEAT_SCHEDULE.values()}

    assert schedule["jobs.tasks.renew_provider_keys"] == 60
    assert tasks.renew_provider_keys.name in tasks.renew_provider_keys.app.tasks


@pytest.mark.django_db(transaction=True)
def test_the_renewal_task_on_a_real_worker_replaces_a_key_whose_budget_changed(
    worker, managed, alice, design
):
    from jobs import tasks

    set_team_budget(design, "20", "month")
    old = wait_until_finished(submit(alice, "before", team=design)).provider_key
    set_team_budget(design, "25", "month")

    tasks.renew_provider_keys.delay()

    new = wait_for(
        lambda: ProviderKey.objects.filter(
            retired_at__isnull=True, budget_limit=25, status=ProviderKey.Status.ACTIVE
        ).first(),
        what="the renewal task to mint the new key",
    )
    old.refresh_from_db()
    assert old.retired_because == "its budget changed"
    assert new.spend_limit == Decimal("25") and new.status == ProviderKey.Status.ACTIVE
