"""Every level of the budget hierarchy at every terminal state, through a real worker and the
simulator's faults, and the calendar periods the levels reset on (UTC)."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
import redis

from jobs import periods, selectors, services
from jobs.models import Budget, CostEntry, Job, SpendDay
from jobs.services import tokens
from tests.factories import KLING, make_entry, new_job
from tests.helpers import running_worker, wait_until_finished
from tests.ledger_checks import assert_rollup_matches_ledger, level_usage, team_with_members

HALF = Decimal("0.50")  # Kling's top price: the hold of each job below


def set_level(level, limit, period="month", **subject) -> Budget:
    return services.budget_set(
        level=level, limit=Decimal(limit), period=period, changed_by=None, **subject
    )


def usage(budget: Budget, now=None) -> tuple[Decimal, Decimal]:
    """(spent, held) as the app shows them, checked against the ledger's own sums."""
    budget.refresh_from_db()
    (status,) = selectors.budget_statuses([budget], now=now)
    assert (status.spent, status.held) == level_usage(budget, now), budget
    return status.spent, status.held


# --- Settlement at every level ------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("catalog")
def test_every_terminal_state_settles_at_every_level(
    alice, admin_user, simulator, broker_url, settings
):
    """One person, a team and two tokens; six jobs ending six ways. Each level ends with no
    hold, the costs of the jobs charged there, and unknown outcomes' possible costs until an
    admin gives the verdict."""
    settings.JOB_SUBMITS_PER_MINUTE = settings.JOB_ACTIVE_LIMIT = 0
    design = team_with_members("Design", [alice])
    team_token, _ = tokens.token_create(user=alice, name="team script", team=design)
    own_token, _ = tokens.token_create(user=alice, name="own script")
    levels = {
        "org": set_level(Budget.Level.ORGANIZATION, "50"),
        "team": set_level(Budget.Level.TEAM, "20", team=design),
        "member": set_level(Budget.Level.MEMBER, "10", team=design, user=alice),
        "personal": set_level(Budget.Level.PERSONAL, "10", user=alice),
        "team token": set_level(Budget.Level.TOKEN, "5", token=team_token),
        "own token": set_level(Budget.Level.TOKEN, "5", token=own_token),
    }
    simulator.inject(
        {"kind": "http_error", "status": 502, "match": {"prompt": "refused"}},
        {"kind": "drop", "after_seconds": 0.1, "match": {"prompt": "unknown"}},
        {"kind": "rate_limit", "retry_after": 1, "match": {"prompt": "not processed"}},
    )
    redis.Redis.from_url(broker_url).flushdb()

    def submit(prompt, team=None, token=None):
        return services.job_create(
            owner=alice,
            team=team,
            token=token,
            prompt=prompt,
            model=KLING,
            size="1280x720",
            seconds="5",
            response_format="url",
        )

    jobs = {
        "team success": submit("team success", design, team_token),
        "own success": submit("own success", None, own_token),
        "refused": submit("refused", design),
        "unknown": submit("unknown", design, team_token),
        "canceled": submit("canceled", design),
        "not processed": submit("not processed", None),
    }
    # Before any worker: every job holds its top price where it is charged.
    assert {name: usage(b) for name, b in levels.items()} == {
        "org": (0, 6 * HALF),
        "team": (0, 4 * HALF),
        "member": (0, 4 * HALF),
        "personal": (0, 2 * HALF),
        "team token": (0, 2 * HALF),
        "own token": (0, HALF),
    }
    assert services.job_cancel(job=jobs["canceled"])
    assert usage(levels["team"]) == (0, 3 * HALF)
    # Its last try: the provider's 429 then ends it as not processed.
    Job.objects.filter(pk=jobs["not processed"].pk).update(attempt=4)

    with running_worker(broker_url):
        done = {name: wait_until_finished(job) for name, job in jobs.items()}

    assert {name: (job.status, job.hold) for name, job in done.items()} == {
        "team success": (Job.Status.SUCCEEDED, 0),
        "own success": (Job.Status.SUCCEEDED, 0),
        "refused": (Job.Status.FAILED, 0),
        "unknown": (Job.Status.FAILED, 0),
        "canceled": (Job.Status.CANCELED, 0),
        "not processed": (Job.Status.FAILED, 0),
    }
    outcomes = dict(CostEntry.objects.values_list("job__prompt", "outcome"))
    assert outcomes == {
        "team success": "charged",
        "own success": "charged",
        "refused": "refunded",
        "unknown": "unknown",
        "not processed": "not_processed",
    }
    team_cost, own_cost = done["team success"].cost, done["own success"].cost
    assert team_cost > 0 and own_cost > 0
    # The simulator did charge for the dropped call: what the admin will find in its logs.
    unknown_cost = Decimal(simulator.stats()["charged_usd"]) - team_cost - own_cost
    assert 0 < unknown_cost <= HALF
    expected = {
        "org": (team_cost + own_cost + HALF, 0),
        "team": (team_cost + HALF, 0),
        "member": (team_cost + HALF, 0),
        "personal": (own_cost, 0),
        "team token": (team_cost + HALF, 0),
        "own token": (own_cost, 0),
    }
    assert {name: usage(b) for name, b in levels.items()} == expected
    assert_rollup_matches_ledger()

    # The admin checks the provider's logs: it charged $0.30 for the unknown one.
    entry = CostEntry.objects.get(job=done["unknown"])
    assert services.ledger_reconcile(
        entry=entry, charged=True, by=admin_user, amount=Decimal("0.3")
    )

    verdict = Decimal("0.30") - HALF
    for name in ("org", "team", "member", "team token"):
        expected[name] = (expected[name][0] + verdict, 0)
    assert {name: usage(b) for name, b in levels.items()} == expected
    assert_rollup_matches_ledger()


# --- Period boundaries --------------------------------------------------------------------------


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


@pytest.mark.django_db
def test_a_hold_placed_on_the_31st_that_settles_after_midnight_counts_in_the_new_month(alice):
    personal = set_level(Budget.Level.PERSONAL, "1", user=alice)
    job = new_job(alice, model=KLING, hold=HALF)  # submitted on 31 Jan at 23:59:59
    last_second = utc(2027, 1, 31, 23, 59, 59)
    assert usage(personal, now=last_second) == (0, HALF)

    Job.objects.filter(pk=job.pk).update(status=Job.Status.SUCCEEDED, hold=0, cost=Decimal("0.4"))
    services.ledger_record(
        job=job, outcome=CostEntry.Outcome.CHARGED, cost=Decimal("0.4"), at=utc(2027, 2, 1, 0, 0, 1)
    )

    assert SpendDay.objects.get(scope=personal.scope).day == utc(2027, 2, 1).date()
    assert usage(personal, now=last_second) == (0, 0)  # January kept none of it
    assert usage(personal, now=utc(2027, 2, 1, 0, 0, 2)) == (Decimal("0.4"), 0)
    assert usage(personal, now=utc(2027, 3, 1)) == (0, 0)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("period", "last_second", "first_second"),
    [
        ("day", utc(2027, 3, 3, 23, 59, 59), utc(2027, 3, 4)),
        ("week", utc(2027, 3, 7, 23, 59, 59), utc(2027, 3, 8)),  # Sunday, then Monday
        ("month", utc(2027, 2, 28, 23, 59, 59), utc(2027, 3, 1)),
    ],
)
def test_a_budget_resets_at_midnight_utc_at_the_end_of_its_period(
    alice, period, last_second, first_second
):
    personal = set_level(Budget.Level.PERSONAL, "1", period=period, user=alice)
    make_entry(alice, KLING, "0.25", last_second - timedelta(seconds=1))

    assert usage(personal, now=last_second) == (Decimal("0.25"), 0)
    assert usage(personal, now=first_second) == (0, 0)
    (status,) = selectors.budget_statuses([personal], now=first_second)
    assert status.left == 1


@pytest.mark.django_db
def test_an_iso_week_budget_counts_monday_to_sunday(alice):
    weekly = set_level(Budget.Level.PERSONAL, "5", period="week", user=alice)
    for day in range(1, 10):  # Monday 1 March 2027 to Tuesday 9 March, a dollar a day
        make_entry(alice, KLING, "1", utc(2027, 3, day, 12))

    assert usage(weekly, now=utc(2027, 3, 7, 23)) == (7, 0)  # Monday to Sunday
    assert usage(weekly, now=utc(2027, 3, 9, 13)) == (2, 0)  # the new week's Monday and Tuesday


@pytest.mark.parametrize(
    ("period", "now", "words"),
    [
        ("month", utc(2027, 1, 1), "resets in 31 days, on 1 Feb"),
        ("month", utc(2027, 1, 29, 0, 0, 1), "resets in 3 days, on 1 Feb"),
        ("month", utc(2027, 1, 31, 23, 0), "resets in 1 hour, at 00:00 UTC"),
        ("month", utc(2027, 1, 31, 23, 59, 59), "resets in 1 minute, at 00:00 UTC"),
        ("month", utc(2026, 12, 31, 12), "resets in 12 hours, at 00:00 UTC"),
        ("month", utc(2028, 2, 28, 0), "resets in 2 days, on 1 Mar"),  # a leap year
        ("week", utc(2027, 3, 7, 23, 59, 59), "resets in 1 minute, at 00:00 UTC"),  # Sunday
        ("week", utc(2027, 3, 8), "resets in 7 days, on 15 Mar"),  # Monday, 00:00
        ("week", utc(2027, 3, 8, 0, 0, 1), "resets in 7 days, on 15 Mar"),
        ("day", utc(2027, 3, 8), "resets in 1 day, on 9 Mar"),
        ("day", utc(2027, 3, 8, 0, 0, 1), "resets in 23 hours, at 00:00 UTC"),
        ("day", utc(2027, 3, 8, 23, 30), "resets in 30 minutes, at 00:00 UTC"),
        # 20:00 in New York on 31 January is 01:00 UTC on 1 February: February's budget.
        (
            "month",
            datetime(2027, 1, 31, 20, tzinfo=ZoneInfo("America/New_York")),
            "resets in 28 days, on 1 Mar",
        ),
    ],
)
def test_resets_words_at_the_edges(period, now, words):
    assert periods.resets_words(period, now) == words
