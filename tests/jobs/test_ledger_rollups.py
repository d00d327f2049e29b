"""The cost reviews' roll-ups (LedgerDay, LedgerUserSpan) equal the ledger's own sums: after real
jobs through a real worker and the simulator's faults, verdicts on unknown outcomes and an
account deletion; after any sequence of ledger writes (Hypothesis); and the review pages read
from them show what the ledger itself adds up to, for any period of whole UTC days."""

import itertools
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

import pytest
import redis
from django.urls import reverse
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jobs import selectors, services
from jobs.models import CostEntry, Job, LedgerUserSpan
from tests.factories import KLING, SORA, VEO, make_entry
from tests.helpers import running_worker, wait_until_finished
from tests.ledger_checks import assert_review_rollups_match_ledger, team_with_members


def ledger_figures(*, first_day: date, last_day: date, team=None) -> dict:
    """The review's figures computed the old way, by aggregating the ledger's entries: the
    oracle the roll-ups must match."""
    start = datetime.combine(first_day, time.min, tzinfo=UTC)
    end = datetime.combine(last_day + timedelta(days=1), time.min, tzinfo=UTC)
    entries = selectors.ledger_for_period(start=start, end=end, team=team)
    days, models = selectors.spend_by_day_and_model(entries, first_day=first_day, last_day=last_day)
    return {
        "users": _by(selectors.spend_by_user(entries), "user_id"),
        "models": _by(models, "model"),
        "days": days,
        "totals": selectors.spend_totals(entries),
    }


def rollup_figures(*, first_day: date, last_day: date, team=None) -> dict:
    days, models = selectors.review_by_day_and_model(
        first_day=first_day, last_day=last_day, team=team
    )
    users = selectors.review_by_user(first_day=first_day, last_day=last_day, team=team)
    totals = selectors.review_totals(
        first_day=first_day, last_day=last_day, within=team, by_user=False
    )
    return {
        "users": _by(users, "user_id"),
        "models": _by(models, "model"),
        "days": days,
        "totals": totals,
    }


def _by(rows, key) -> dict:
    return {row[key]: (row["total"], row["count"], row["pending"]) for row in rows}


# --- Real jobs, faults, verdicts and a deletion -------------------------------------------------


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("catalog")
def test_the_rollups_equal_the_ledger_after_faults_verdicts_and_a_deleted_account(
    alice, bob, admin_user, admin_client, simulator, broker_url, settings
):
    settings.JOB_SUBMITS_PER_MINUTE = settings.JOB_ACTIVE_LIMIT = 0
    design = team_with_members("Design", [alice, bob])
    simulator.inject(
        {"kind": "http_error", "status": 502, "match": {"prompt": "refused"}},
        {"kind": "error_after", "seconds": 0.1, "match": {"prompt": "error body"}},
        # A fault applies once: one for each job whose outcome will be unknown.
        *[{"kind": "drop", "after_seconds": 0.1, "match": {"prompt": "unknown"}}] * 3,
        {"kind": "rate_limit", "retry_after": 1, "match": {"prompt": "not processed"}},
    )
    redis.Redis.from_url(broker_url).flushdb()

    def submit(owner, prompt, team=None):
        return services.job_create(
            owner=owner,
            team=team,
            prompt=prompt,
            model=KLING,
            size="1280x720",
            seconds="5",
            response_format="url",
        )

    jobs = [
        submit(alice, "alice team success", design),
        submit(alice, "alice own success"),
        submit(alice, "alice unknown, to be charged", design),
        submit(alice, "refused", design),
        submit(bob, "bob team success", design),
        submit(bob, "bob own success"),
        submit(bob, "bob unknown, left to check"),
        submit(bob, "bob unknown, not charged", design),
        submit(bob, "error body"),
        submit(bob, "not processed", design),
    ]
    # Its last try: the provider's 429 then ends it as not processed.
    Job.objects.filter(prompt="not processed").update(attempt=4)
    with running_worker(broker_url):
        for job in jobs:
            wait_until_finished(job)

    outcomes = sorted(CostEntry.objects.values_list("outcome", flat=True))
    assert outcomes == sorted(
        ["charged"] * 4 + ["unknown"] * 3 + ["refunded"] * 2 + ["not_processed"]
    )
    assert_review_rollups_match_ledger()

    def verdict(prompt, **how):
        entry = CostEntry.objects.get(job__prompt=prompt)
        assert services.ledger_reconcile(entry=entry, by=admin_user, **how)

    verdict("alice unknown, to be charged", charged=True, amount=Decimal("0.3"))
    verdict("bob unknown, not charged", charged=False)
    assert_review_rollups_match_ledger()

    today = datetime.now(UTC).date()
    period = {"first_day": today.replace(day=1), "last_day": today}
    before = rollup_figures(**period)
    bobs = before["users"][bob.pk]
    assert bobs[1] == 6 and bobs[2] == Decimal("0.50")  # one still to check, at Kling's top

    services.account_delete(user=bob, by=bob)

    assert_review_rollups_match_ledger()
    assert not LedgerUserSpan.objects.filter(user_id=bob.pk).exists()
    after = rollup_figures(**period)
    assert after == ledger_figures(**period)
    # Bob's spend stays, now as the deleted accounts'; every other figure is unchanged.
    assert after["users"] == {alice.pk: before["users"][alice.pk], None: bobs}
    assert (after["models"], after["days"], after["totals"]) == (
        before["models"],
        before["days"],
        before["totals"],
    )
    assert rollup_figures(**period, team=design) == ledger_figures(**period, team=design)

    # The pages show the same: staff's review and the reconciliation's counts.
    page = admin_client.get(reverse("costs:review")).context
    assert page["totals"] == {k: after["totals"][k] for k in ("total", "count", "pending")}
    assert {row["username"]: row["count"] for row in page["users"]} == {
        "alice": 4,
        "(deleted accounts)": 6,
    }
    reconciliation = admin_client.get(reverse("costs:reconciliation")).context
    assert reconciliation["in_period"]["unknown"] == 3
    assert reconciliation["in_period"]["to_check"] == 1
    assert reconciliation["all_time"]["total"] == after["totals"]["total"]


# --- Any sequence of ledger writes --------------------------------------------------------------

FIRST = date(2025, 1, 20)  # the writes fall on 80 days from here: four calendar months
MODELS = [KLING, VEO, SORA]
names = itertools.count()

write = st.one_of(
    st.tuples(
        st.just("record"),
        st.integers(0, 2),  # whose
        st.integers(0, 2),  # where: a team, the other, or the personal space
        st.sampled_from(MODELS),
        st.integers(0, 79),  # the day
        st.integers(0, 23),  # the hour
        st.sampled_from(["charged", "refunded", "not_processed", "unknown"]),
        st.integers(0, 500),  # cents
    ),
    st.tuples(st.just("verdict"), st.integers(0, 50), st.booleans(), st.integers(0, 100)),
    st.tuples(st.just("delete"), st.integers(0, 2)),
)


@pytest.mark.django_db
@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    writes=st.lists(write, min_size=1, max_size=14),
    first=st.integers(0, 79),
    length=st.integers(0, 79),
)
def test_any_sequence_of_ledger_writes_keeps_the_rollups_exact(
    django_user_model, admin_user, writes, first, length
):
    """Entries recorded on any day and hour, verdicts (charged at any amount up to the possible
    cost, or not), and people deleting their accounts, in any order: the roll-ups equal the
    ledger's sums, and every review figure for any period of whole days equals the ledger's."""
    run = next(names)
    people = [django_user_model.objects.create(username=f"p{run}-{n}") for n in range(3)]
    teams = [team_with_members(f"T{run}-{n}", []) for n in range(2)]
    entries, gone = [], set()
    for step in writes:
        if step[0] == "record":
            _, who, where, model, day, hour, outcome, cents = step
            if who in gone:
                continue
            unknown = outcome == "unknown"
            entries.append(
                make_entry(
                    people[who],
                    model,
                    "0" if outcome != "charged" else Decimal(cents) / 100,
                    datetime.combine(FIRST + timedelta(days=day), time(hour), tzinfo=UTC),
                    outcome=outcome,
                    possible=Decimal(cents) / 100 if unknown else None,
                    team=teams[where] if where < 2 else None,
                )
            )
        elif step[0] == "verdict":
            _, index, charged, percent = step
            # An unknown outcome, checked or not: a second verdict must change nothing.
            unknowns = [e for e in entries if e.outcome == CostEntry.Outcome.UNKNOWN]
            if not unknowns:
                continue
            entry = unknowns[index % len(unknowns)]
            amount = (entry.possible_cost or Decimal(0)) * percent / 100
            services.ledger_reconcile(
                entry=entry, charged=charged, by=admin_user, amount=amount.quantize(Decimal("0.01"))
            )
        else:
            who = step[1]
            if who not in gone:
                services.account_delete(user=people[who], by=admin_user, own=False)
                gone.add(who)
        assert_review_rollups_match_ledger()

    period = {
        "first_day": FIRST + timedelta(days=first),
        "last_day": FIRST + timedelta(days=min(first + length, 79)),
    }
    assert rollup_figures(**period) == ledger_figures(**period)
    for team in teams:
        assert rollup_figures(**period, team=team) == ledger_figures(**period, team=team)


# --- Periods that start or end anywhere in a month ----------------------------------------------


@pytest.mark.django_db
def test_every_period_adds_up_whole_months_and_the_days_around_them_exactly(
    django_user_model, alice, bob
):
    """An entry on every day of four months, by two people, in a team and not: any period, from
    a month's first or last day or between, within one month or across several, shows what the
    ledger adds up to (the by-user table reads month rows for whole months, day rows around)."""
    team = team_with_members("Design", [alice])
    for day in range(80):
        when = datetime.combine(FIRST + timedelta(days=day), time(day % 24), tzinfo=UTC)
        make_entry(alice, MODELS[day % 3], Decimal(day) / 10, when, team=team if day % 2 else None)
        make_entry(bob, MODELS[(day + 1) % 3], "0.05", when)
    assert_review_rollups_match_ledger()
    edges = [date(2025, *d) for d in [(1, 20), (1, 31), (2, 1), (2, 2), (2, 28), (3, 1), (3, 31),
                                     (4, 1), (4, 9)]]  # fmt: skip
    for first_day, last_day in itertools.combinations_with_replacement(edges, 2):
        period = {"first_day": first_day, "last_day": last_day}
        assert rollup_figures(**period) == ledger_figures(**period), period
        assert rollup_figures(**period, team=team) == ledger_figures(**period, team=team), period
