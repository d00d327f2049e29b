"""The budget hierarchy under races, on PostgreSQL: simultaneous submits from many people at
every level, racing settlements, and the threshold notices they cross. Every submit runs on its
own thread with its own connection (tests/helpers.at_once), so the row locks are real."""

import threading
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import redis
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connections
from django.utils import timezone

from jobs import services
from jobs.models import Budget, BudgetNotice, CostEntry, Job, SpendDay, VideoModel
from jobs.services import tokens
from tests.factories import TEST_MODEL, VEO, make_entry
from tests.helpers import TEST_BROKER_URL, at_once, running_worker, wait_for
from tests.ledger_checks import (
    assert_held_totals_match_live_jobs,
    assert_rollup_matches_ledger,
    levels_over,
    team_with_members,
)
from tests.media import image_bytes

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("catalog", "broker_url", "unthrottled"),
]


@pytest.fixture
def unthrottled(settings):
    """These races are about budgets alone: the submit rate and the cap on active jobs have
    their own tests."""
    settings.JOB_SUBMITS_PER_MINUTE = settings.JOB_ACTIVE_LIMIT = 0


@pytest.fixture
def people(django_user_model):
    def make(prefix, count):
        return [django_user_model.objects.create_user(f"{prefix}{n}") for n in range(count)]

    return make


def three_cent_model() -> str:
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
    return "test/three-cents"


def budget(level, limit, period="month", **subject) -> Budget:
    return services.budget_set(
        level=level, limit=Decimal(limit), period=period, changed_by=None, **subject
    )


def attempt_submit(owner, *, model, team=None, token=None, prompt="a race"):
    """A submit as the form or the API makes it: the job, or the refusal the person would read."""
    try:
        return services.job_create(
            owner=owner,
            team=team,
            token=token,
            prompt=prompt,
            model=model,
            size="auto",
            seconds="auto",
            response_format="url",
        )
    except services.SubmitRefusedError as refusal:
        return refusal


# --- 50 submits from 10 members against a $1.00 team budget --------------------------------------


def test_fifty_submits_from_ten_members_fit_the_team_budget_exactly(people):
    model = three_cent_model()
    members = people("member", 10)
    design = team_with_members("Design", members)
    budget(Budget.Level.ORGANIZATION, "100.00")
    for member in members:  # set while the team has no limit: a member's must fit in it
        budget(Budget.Level.MEMBER, "10.00", team=design, user=member)
    budget(Budget.Level.TEAM, "1.00", team=design)

    results, _, errors = at_once(
        50,
        lambda n: attempt_submit(members[n % 10], model=model, team=design, prompt=f"race {n}"),
        refusal=(),
    )

    accepted = [r for r in results if isinstance(r, Job)]
    refused = [r for r in results if not isinstance(r, Job)]
    assert errors == []
    assert len(accepted) == 33 and len(refused) == 17  # 33 x $0.03 = $0.99 of $1.00
    assert all(isinstance(r, services.OverBudgetError) for r in refused)
    assert {r.status.budget.level for r in refused} == {Budget.Level.TEAM}
    assert {str(r) for r in refused} == {
        "Design team has $0.01 left this month; this video could cost up to $0.03."
    }
    assert sum(j.hold for j in Job.objects.filter(team=design)) == Decimal("0.99")
    assert levels_over() == []


# --- The organization's last cents, from submits charged everywhere ------------------------------


def test_racing_submits_with_images_fill_the_organization_budget_and_leave_nothing_when_refused(
    people, media_root
):
    """Every submit locks the organization's row and reads its holds from HeldTotal (the jobs
    table's trigger) rather than from the live jobs: the accepted ones must still fit the
    organization's limit exactly, whatever team or personal space each is charged to, and a
    refused one must leave no job, no hold and no file."""
    model = three_cent_model()
    members = people("member", 12)
    design = team_with_members("Design", members[:6])
    sound = team_with_members("Sound", members[6:9])
    budget(Budget.Level.ORGANIZATION, "0.60")
    places = [design] * 6 + [sound] * 3 + [None] * 3

    def attempt(n):
        owner = members[n % 12]
        image = SimpleUploadedFile(f"frame-{n}.png", image_bytes("PNG"), content_type="image/png")
        try:
            return services.job_create(
                owner=owner,
                team=places[n % 12],
                prompt=f"last cents {n}",
                model=model,
                size="auto",
                seconds="auto",
                response_format="url",
                image=image,
            )
        except services.SubmitRefusedError as refusal:
            return refusal

    results, _, errors = at_once(36, attempt, refusal=())

    accepted = [r for r in results if isinstance(r, Job)]
    refused = [r for r in results if not isinstance(r, Job)]
    assert errors == []
    assert len(accepted) == 20 and len(refused) == 16  # 20 x $0.03 = $0.60 of $0.60
    assert {str(r) for r in refused} == {
        "The organization has $0.00 left this month; this video could cost up to $0.03."
    }
    assert Job.objects.count() == 20
    assert sum(job.hold for job in Job.objects.all()) == Decimal("0.60")
    # Only the accepted jobs' images are stored: each refused one was deleted with its job.
    stored = sorted(path.name for path in media_root.rglob("*.png"))
    assert stored == sorted(job.input_image.name.rsplit("/", 1)[-1] for job in accepted)
    assert all(job.input_image.storage.exists(job.input_image.name) for job in accepted)
    assert levels_over() == []


# --- The holds' totals against the live jobs -------------------------------------------------


@pytest.mark.skipif(
    connections["default"].vendor != "postgresql",
    reason="HeldTotal is kept by a PostgreSQL trigger; SQLite's check sums the live jobs itself",
)
def test_held_totals_follow_every_change_of_a_live_job(people, simulator):
    """A submit reads each level's holds from HeldTotal, which a trigger on the jobs table keeps:
    whatever changes a job (a submit, a group, a cancel, a failure, a move to another team, a
    deleted row, settlement by a worker, an account's deletion), the totals stay equal to the
    holds of the live jobs, and a limit filled by holds refuses exactly as the live jobs say."""
    alice, bob, carol = people("held", 3)
    design = team_with_members("Design", [alice, bob])
    sound = team_with_members("Sound", [carol])
    token, _ = tokens.token_create(user=alice, name="design script", team=design)
    redis.Redis.from_url(TEST_BROKER_URL).flushdb()

    personal = attempt_submit(alice, model=VEO)
    through_token = attempt_submit(alice, model=VEO, team=design, token=token)
    bobs = attempt_submit(bob, model=VEO, team=design)
    compared = services.job_group_create(
        owner=bob,
        kind="comparison",
        specs=[services.JobSpec(prompt="a kite", model=m) for m in (VEO, TEST_MODEL)],
    )
    assert_held_totals_match_live_jobs()
    assert all(isinstance(job, Job) for job in (personal, through_token, bobs))

    services.job_cancel(job=personal)
    assert_held_totals_match_live_jobs()
    Job.objects.filter(pk=bobs.pk).update(team=sound, owner=carol)  # moved by hand, still live
    assert_held_totals_match_live_jobs()
    Job.objects.filter(pk=through_token.pk).update(status=Job.Status.FAILED, hold=0)
    assert_held_totals_match_live_jobs()
    compared.jobs.filter(model=VEO).delete()
    assert_held_totals_match_live_jobs()

    # The organization's limit is now full of holds: exactly what the live jobs say is left.
    held = sum(job.hold for job in Job.objects.filter(status__in=Job.LIVE))
    budget(Budget.Level.ORGANIZATION, str(held + Decimal("0.59")))
    refusal = attempt_submit(carol, model=VEO, team=sound)
    assert isinstance(refusal, services.OverBudgetError), refusal
    assert refusal.status.budget.level == Budget.Level.ORGANIZATION
    Budget.objects.filter(level=Budget.Level.ORGANIZATION).delete()

    with running_worker(TEST_BROKER_URL):
        wait_for(
            lambda: not Job.objects.filter(status__in=Job.LIVE).exists(),
            timeout=60,
            what="every job to settle",
        )
    assert_held_totals_match_live_jobs()
    queued_for_bob = attempt_submit(bob, model=VEO, team=design)  # no worker: it stays queued
    assert isinstance(queued_for_bob, Job), queued_for_bob
    assert_held_totals_match_live_jobs()
    services.account_delete(user=bob)  # cancels his queued team job; the row loses its owner
    assert_held_totals_match_live_jobs()
    assert not Job.objects.filter(status__in=Job.LIVE).exists()
    assert_rollup_matches_ledger()


# --- A mix of teams, personal spaces and tokens under a tight organization cap --------------------


def test_a_mix_of_teams_people_and_tokens_never_passes_any_level_nor_errors(people, simulator):
    """Veo costs exactly its $0.60 hold, so the $3.00 organization cap fits 5 of them whatever
    the worker settles meanwhile; free jobs (hold 0) always fit."""
    a1, a2, a3, b1, b2, p1, p2 = people("user", 7)
    team_a = team_with_members("Alpha", [a1, a2, a3])
    team_b = team_with_members("Beta", [b1, b2])
    team_token, _ = tokens.token_create(user=a1, name="alpha script", team=team_a)
    own_token, _ = tokens.token_create(user=p1, name="p1 script")
    budget(Budget.Level.ORGANIZATION, "3.00")
    budget(Budget.Level.TEAM, "1.80", team=team_a)
    budget(Budget.Level.TEAM, "1.20", team=team_b)
    budget(Budget.Level.MEMBER, "0.60", team=team_a, user=a2)
    budget(Budget.Level.TOKEN, "0.60", token=team_token)
    budget(Budget.Level.TOKEN, "1.20", token=own_token)
    budget(Budget.Level.PERSONAL, "0.60", user=p2)
    budget(Budget.Level.PERSONAL, "0.60", user=a1)
    charges = [
        (a1, team_a, team_token),
        (a2, team_a, None),
        (a3, team_a, None),
        (b1, team_b, None),
        (b2, team_b, None),
        (p1, None, own_token),
        (p2, None, None),
        (a1, None, None),
    ]
    redis.Redis.from_url(TEST_BROKER_URL).flushdb()

    def attempt(n):
        owner, team, token = charges[n % len(charges)]
        model = TEST_MODEL if n % 5 == 4 else VEO
        return attempt_submit(owner, model=model, team=team, token=token, prompt=f"mix {n}")

    with running_worker(TEST_BROKER_URL):  # settling while the others submit
        results, _, errors = at_once(48, attempt, refusal=())
        assert levels_over() == []
        assert_held_totals_match_live_jobs()
        wait_for(
            lambda: not Job.objects.filter(status__in=Job.LIVE).exists(),
            timeout=90,
            what="every accepted job to finish",
        )

    assert errors == []  # no deadlock nor serialization failure reached anyone
    refused = [r for r in results if not isinstance(r, Job)]
    assert all(isinstance(r, services.SubmitRefusedError) for r in refused)
    assert all(isinstance(r, services.OverBudgetError) for r in refused), refused
    assert levels_over() == []
    assert_rollup_matches_ledger()
    # A check that read a job's hold and then its settled cost counts it twice (the safe side),
    # so fewer than 5 may have got in during the race; what was held is never lost, though:
    # once all is settled, exactly what is left of the cap fits.
    paid = Job.objects.filter(model=VEO, status=Job.Status.SUCCEEDED).count()
    assert 1 <= paid <= 5
    topped_up = 0
    for _ in range(6):
        more = attempt_submit(p1, model=VEO)
        if not isinstance(more, Job):
            assert isinstance(more, services.OverBudgetError), more
            break
        topped_up += 1
    assert paid + topped_up == 5
    assert Job.objects.filter(model=TEST_MODEL).count() == len(
        [r for r in results if isinstance(r, Job) and r.model == TEST_MODEL]
    )
    assert levels_over() == []
    assert_held_totals_match_live_jobs()


# --- Threshold notices under racing settlements ---------------------------------------------------


def test_racing_settlements_record_each_threshold_once_per_level_and_period(people, simulator):
    """Ten $0.60 jobs of one team settle at once (real calls to the simulator, on ten threads):
    the team, each member and the organization cross 50%, 80% and 100% once each. Next month's
    spend crosses them again, once each."""
    members = people("settler", 2)
    design = team_with_members("Design", members)
    org = budget(Budget.Level.ORGANIZATION, "6.00")
    for member in members:
        budget(Budget.Level.MEMBER, "3.00", team=design, user=member)
    team = budget(Budget.Level.TEAM, "6.00", team=design)
    jobs = [
        attempt_submit(members[n % 2], model=VEO, team=design, prompt=f"settle {n}")
        for n in range(10)
    ]
    assert all(isinstance(job, Job) for job in jobs), jobs

    _, _, errors = at_once(10, lambda n: services.job_run(job_id=jobs[n].pk), refusal=())

    assert errors == []
    assert CostEntry.objects.filter(cost=Decimal("0.60")).count() == 10
    budgets = [org, team, *Budget.objects.filter(level=Budget.Level.MEMBER)]
    month = datetime.now(UTC).date().replace(day=1)
    for each in budgets:
        notices = BudgetNotice.objects.filter(budget=each).order_by("threshold")
        assert [(n.threshold, n.period_start) for n in notices] == [
            (50, month),
            (80, month),
            (100, month),
        ], each
    assert_rollup_matches_ledger()

    # Racing threads settling next month's spend: one new notice per level and threshold.
    next_month = (month.replace(day=28) + timedelta(days=4)).replace(day=1)
    when = datetime(next_month.year, next_month.month, 1, 12, tzinfo=UTC)
    at_once(
        6,
        lambda n: make_entry(members[n % 2], VEO, "1.00", when, team=design),
        refusal=(),
    )
    for each in budgets:
        periods_noticed = BudgetNotice.objects.filter(budget=each).values_list(
            "period_start", "threshold"
        )
        assert sorted(periods_noticed) == [
            (month, 50),
            (month, 80),
            (month, 100),
            (next_month, 50),
            (next_month, 80),
            (next_month, 100),
        ], each


@pytest.mark.skipif(
    connections["default"].vendor != "postgresql",
    reason="SQLite's write lock is the whole database's: a settlement always waits for a write",
)
def test_a_settlement_is_not_held_up_by_a_budget_change_in_progress(people):
    """A manager's budget change holds its budget's row until it commits; a settlement that
    crosses a threshold of that budget writes a notice pointing at the row meanwhile. Its
    foreign-key check must not wait for the change (with FOR UPDATE it did, and when the change
    then recorded the same notice, each waited for the other: a deadlock)."""
    (member,) = people("member", 1)
    design = team_with_members("Design", [member])
    budget(Budget.Level.TEAM, "1.00", team=design)
    changing, release = threading.Event(), threading.Event()

    def change_budget():
        from django.db import transaction

        try:
            with transaction.atomic():
                budget(Budget.Level.TEAM, "2.00", team=design)
                changing.set()
                release.wait(timeout=30)
        finally:
            connections.close_all()

    changer = threading.Thread(target=change_budget)
    changer.start()
    try:
        assert changing.wait(timeout=10)
        settled = []
        settler = threading.Thread(
            target=lambda: (
                settled.append(make_entry(member, VEO, "0.90", timezone.now(), team=design)),
                connections.close_all(),
            )
        )
        settler.start()
        settler.join(timeout=5)
        assert settled, "the settlement waited for the budget change to commit"
    finally:
        release.set()
        changer.join()
        settler.join()
    assert BudgetNotice.objects.filter(threshold=80).exists()


def lock_waits() -> int:
    """How many of this database's connections are waiting for a row lock now."""
    with connections["default"].cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        return cursor.fetchone()[0]


@pytest.mark.skipif(
    connections["default"].vendor != "postgresql",
    reason="SQLite's write lock is the whole database's: the two take turns from the start",
)
def test_a_verdict_on_someones_unknown_outcome_while_they_delete_their_account_both_finish(
    people, admin_user
):
    """An admin marks a person's unknown outcome while that person deletes their account. The
    verdict locks the entry, then the job; the deletion used to change the person's jobs first
    and the entries last, so each could wait for the other: PostgreSQL then ends one with
    "deadlock detected", an error page for the admin or the person. The deletion is held at
    its last steps here (another transaction holds the person's spend row) while the verdict
    starts, which is exactly that interleaving."""
    (person,) = people("leaving", 1)
    entry = make_entry(
        person, VEO, "0", timezone.now(), outcome=CostEntry.Outcome.UNKNOWN,
        possible=Decimal("0.50"),
    )  # fmt: skip
    holding, release = threading.Event(), threading.Event()
    errors = []

    def hold_their_spend_row():
        from django.db import transaction

        try:
            with transaction.atomic():
                spend = SpendDay.objects.select_for_update().filter(scope=f"user:{person.pk}")
                assert list(spend), "the person's spend row, for the deletion to wait on"
                holding.set()
                release.wait(timeout=30)
        finally:
            connections.close_all()

    def run(action):
        try:
            action()
        except Exception as exc:  # the test reports it: a deadlock is an OperationalError
            errors.append(exc)
        finally:
            connections.close_all()

    holder = threading.Thread(target=hold_their_spend_row)
    holder.start()
    deletion = threading.Thread(target=run, args=(lambda: services.account_delete(user=person),))
    verdict = threading.Thread(
        target=run,
        args=(lambda: services.ledger_reconcile(entry=entry, charged=False, by=admin_user),),
    )
    try:
        assert holding.wait(timeout=10)
        deletion.start()
        wait_for(lambda: lock_waits() >= 1, timeout=10, what="the deletion to wait")
        verdict.start()
        wait_for(lambda: lock_waits() >= 2, timeout=10, what="the verdict to wait")
    finally:
        release.set()
        holder.join()
        deletion.join(timeout=30)
        verdict.join(timeout=30)
    assert errors == []
    entry.refresh_from_db()
    assert entry.user_id is None
    assert entry.reconciliation == CostEntry.Reconciliation.NOT_CHARGED
    assert not type(person).objects.filter(pk=person.pk).exists()
    assert_rollup_matches_ledger()
