"""The organization's limit in shares (services/budget_shares.py): a submit whose stripe's share
has room left does not wait for the organization's budget row, and yet a submit is accepted
exactly when the organization's spend + holds + its worst case fit the limit, as with one row."""

import itertools
import threading
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.db import connection, connections, transaction
from django.db.models import Sum
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jobs import services
from jobs.models import Budget, BudgetShare, Job, VideoModel
from tests.factories import make_entry
from tests.helpers import at_once
from tests.ledger_checks import level_usage, levels_over, team_with_members

CHEAP, DEAR = "test/three-cents", "test/fifty-cents"
PRICES = {CHEAP: Decimal("0.03"), DEAR: Decimal("0.50")}


@pytest.fixture
def models(db):
    for model, price in PRICES.items():
        VideoModel.objects.update_or_create(
            id=model,
            defaults={
                "name": model,
                "pricing": "fixed",
                "price_min": price,
                "price_average": price,
                "price_max": price,
                "seconds": [5],
                "synced_at": timezone.now(),
            },
        )


@pytest.fixture(autouse=True)
def unthrottled(settings):
    """Budgets alone: the submit rate and the cap on active jobs have their own tests; personal
    spaces have no limit of their own here, so only the organization's can refuse."""
    settings.JOB_SUBMITS_PER_MINUTE = settings.JOB_ACTIVE_LIMIT = 0
    settings.DEFAULT_MONTHLY_BUDGET = None


def organization_limit(limit) -> Budget:
    return services.budget_set(
        level=Budget.Level.ORGANIZATION, limit=Decimal(limit), changed_by=None
    )


def submit(owner, *, model=CHEAP, team=None):
    """The job, or the refusal the person would read."""
    try:
        return services.job_create(
            owner=owner,
            team=team,
            prompt="a share",
            model=model,
            size="auto",
            seconds="auto",
            response_format="url",
        )
    except services.SubmitRefusedError as refusal:
        return refusal


def organization_used() -> Decimal:
    """The organization's spend this period plus its live jobs' holds, from the ledger and the
    jobs one by one."""
    return sum(level_usage(Budget.objects.get(level=Budget.Level.ORGANIZATION)))


# --- One stripe takes room, another still finds the rest --------------------------------------


def share_of(user) -> BudgetShare:
    return BudgetShare.objects.get(stripe=user.pk % BudgetShare.STRIPES)


def test_room_one_person_set_aside_but_did_not_use_goes_to_the_next_who_asks(
    models, django_user_model
):
    """A submit that tops its share up sets room aside for more jobs than its own; when someone
    else then needs that room, they get it, to the last cent, and only then is anyone
    refused."""
    ana, ben = (django_user_model.objects.create_user(name) for name in ("ana", "ben"))
    design, sound = team_with_members("Design", [ana]), team_with_members("Sound", [ben])
    organization_limit("1.50")

    first = submit(ana, model=DEAR, team=design)
    assert isinstance(first, Job)
    assert share_of(ana).room > 0  # room beyond Ana's one job, set aside for her stripe

    assert isinstance(submit(ben, model=DEAR, team=sound), Job)
    assert isinstance(submit(ben, model=DEAR, team=sound), Job)  # needs Ana's stripe's room
    assert share_of(ana).room == share_of(ben).room == 0  # taken back, all of it
    refused = submit(ana, model=CHEAP, team=design)
    assert str(refused) == (
        "The organization has $0.00 left this month; this video could cost up to $0.03."
    )
    assert organization_used() == Decimal("1.50")
    assert levels_over() == []

    # A canceled job gives its hold back, to whoever asks next.
    services.job_cancel(job=first)
    assert isinstance(submit(ben, model=CHEAP, team=sound), Job)
    assert organization_used() == Decimal("1.03")


def test_lowering_the_organizations_limit_takes_back_every_share_at_once(models, django_user_model):
    ana = django_user_model.objects.create_user("ana")
    design = team_with_members("Design", [ana])
    organization_limit("100.00")
    assert isinstance(submit(ana, model=DEAR, team=design), Job)
    assert share_of(ana).room > Decimal("1.00")

    organization_limit("0.60")

    assert not BudgetShare.objects.exists()
    assert str(submit(ana, model=DEAR, team=design)) == (
        "The organization has $0.10 left this month; this video could cost up to $0.50."
    )
    assert isinstance(submit(ana, model=CHEAP, team=design), Job)


def test_spend_recorded_outside_a_share_still_counts_against_the_organization(
    models, django_user_model
):
    """A share is a promise made from the organization's room as it was; spend recorded since
    (a settlement, a reconciliation) is read with every submit, so a share never lets the
    organization pass its limit."""
    ana, ben = (django_user_model.objects.create_user(name) for name in ("ana", "ben"))
    design = team_with_members("Design", [ana])
    organization_limit("10.00")
    assert isinstance(submit(ana, model=CHEAP, team=design), Job)
    assert share_of(ana).room >= Decimal("0.03")  # room for Ana's next one
    make_entry(ben, DEAR, "9.96", datetime.now(UTC))  # Ben's personal space spends

    refused = submit(ana, model=CHEAP, team=design)
    assert str(refused) == (
        "The organization has $0.01 left this month; this video could cost up to $0.03."
    )
    assert levels_over() == []


# --- Any sequence, compared with the one-row rule ---------------------------------------------

names = itertools.count()
step = st.one_of(
    st.tuples(st.just("submit"), st.integers(0, 11), st.integers(0, 2), st.sampled_from([*PRICES])),
    st.tuples(st.just("cancel"), st.integers(0, 40)),
    st.tuples(st.just("spend"), st.integers(0, 11), st.integers(0, 2), st.integers(1, 300)),
    st.tuples(st.just("limit"), st.integers(0, 400)),
)


@pytest.mark.django_db
@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(steps=st.lists(step, min_size=1, max_size=25), limit=st.integers(0, 400))
def test_any_sequence_is_accepted_exactly_when_the_organization_has_room(
    models, django_user_model, steps, limit
):
    """Submits from twelve people (in as many stripes) into two teams and their personal spaces, cancels, spend
    recorded elsewhere and the limit changed, in any order: each submit is accepted exactly
    when spend + holds + its worst case fit the organization's limit (the rule one locked row
    kept), and the organization is never over."""
    run = next(names)
    people = [django_user_model.objects.create_user(f"s{run}-{n}") for n in range(12)]
    teams = [team_with_members(f"T{run}-{n}", people) for n in range(2)]
    organization_limit(Decimal(limit) / 100)
    jobs, spent_outside = [], False
    for item in steps:
        if item[0] == "submit":
            _, who, where, model = item
            cap = Budget.objects.get(level=Budget.Level.ORGANIZATION).limit
            fits = organization_used() + PRICES[model] <= cap
            result = submit(people[who], model=model, team=teams[where] if where < 2 else None)
            assert isinstance(result, Job) == fits, (item, str(result))
            if fits:
                jobs.append(result)
        elif item[0] == "cancel" and jobs:
            services.job_cancel(job=jobs[item[1] % len(jobs)])
        elif item[0] == "spend":
            _, who, where, cents = item
            team = teams[where] if where < 2 else None
            make_entry(people[who], CHEAP, Decimal(cents) / 100, datetime.now(UTC), team=team)
        elif item[0] == "limit":
            organization_limit(Decimal(item[1]) / 100)
        spent_outside = spent_outside or item[0] == "spend"
        if not spent_outside:
            # What the shares promise never passes what the organization has left, so submits
            # taking from them at once cannot pass the limit either. (Spend recorded outside
            # a submit can; every submit reads the organization's figures for that.)
            cap = Budget.objects.get(level=Budget.Level.ORGANIZATION).limit
            promised = BudgetShare.objects.aggregate(total=Sum("room"))["total"] or 0
            assert promised <= max(cap - organization_used(), 0), item
    # Spend recorded outside a submit may pass the limit on its own; submits never add to it.
    if organization_used() <= Budget.objects.get(level=Budget.Level.ORGANIZATION).limit:
        assert levels_over() == []


# --- Racing submits, each on its own share ----------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_racing_submits_that_each_find_room_in_their_share_fill_the_limit_exactly(
    models, django_user_model
):
    """Twenty people, each in a stripe of their own, have room set aside by a first submit;
    then all twenty submit three more at once into their personal spaces, where no other level
    makes them take turns and none waits for the organization's row: the accepted ones fit
    the limit to the cent and the rest are refused with the organization's figures."""
    people = [django_user_model.objects.create_user(f"racer{n}") for n in range(20)]
    organization_limit("1.20")
    for person in people:
        assert isinstance(submit(person), Job)  # 20 x $0.03 = $0.60

    results, _, errors = at_once(60, lambda n: submit(people[n % 20]), refusal=())

    accepted = [r for r in results if isinstance(r, Job)]
    assert errors == []
    assert len(accepted) == 20  # $0.60 more: 40 x $0.03 = $1.20 of $1.20
    assert {str(r) for r in results if not isinstance(r, Job)} == {
        "The organization has $0.00 left this month; this video could cost up to $0.03."
    }
    assert organization_used() == Decimal("1.20")
    assert levels_over() == []


# --- Not waiting for the organization's row ---------------------------------------------------


@pytest.mark.skipif(
    connections["default"].vendor != "postgresql",
    reason="SQLite's write lock is database-wide: every submit waits for every other",
)
@pytest.mark.django_db(transaction=True)
def test_a_submit_with_room_in_its_share_goes_through_while_the_organizations_row_is_locked(
    models, django_user_model
):
    """The point of shares: a submit whose stripe's share has room left does not wait for
    whoever holds the organization's row (a submit topping its share up, staff changing the
    limit). A submit whose stripe has no room yet does wait, and then goes through."""
    ana, ben = (django_user_model.objects.create_user(name) for name in ("ana", "ben"))
    design, sound = team_with_members("Design", [ana]), team_with_members("Sound", [ben])
    organization_limit("100.00")
    assert isinstance(submit(ana, team=design), Job)  # Ana's stripe now has room

    locked, release = threading.Event(), threading.Event()

    def hold_the_organizations_row():
        try:
            with transaction.atomic():
                Budget.objects.select_for_update().get(level=Budget.Level.ORGANIZATION)
                locked.set()
                release.wait(30)
        finally:
            connections.close_all()

    holder = threading.Thread(target=hold_the_organizations_row)
    holder.start()
    assert locked.wait(10)
    waiting = {}

    def submit_into_sound():
        try:
            waiting["job"] = submit(ben, team=sound)
        finally:
            connections.close_all()

    try:
        with connection.cursor() as cursor:
            cursor.execute("SET lock_timeout = '5s'")
        assert isinstance(submit(ana, team=design), Job)  # not held up

        other = threading.Thread(target=submit_into_sound)
        other.start()
        other.join(1.0)
        assert other.is_alive()  # Ben's stripe has no room yet: he waits for the row
    finally:
        release.set()
        holder.join(10)
    other.join(10)
    assert isinstance(waiting["job"], Job)
    assert levels_over() == []
