"""Groups of jobs made together (services.job_group_create): all accepted or none, their holds
checked as one sum at every level, a group counted as one submit against the active-jobs cap.
The races run on PostgreSQL, each submit on its own thread and connection, so the locks are
real (tests/helpers.at_once)."""

from decimal import Decimal

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from jobs import services
from jobs.models import Budget, Job, JobGroup
from jobs.services import JobSpec
from tests.factories import KLING, SORA, TEST_MODEL, VEO, set_budget, team_with
from tests.helpers import at_once, running_worker, wait_for
from tests.ledger_checks import levels_over
from tests.media import image_bytes

pytestmark = pytest.mark.usefixtures("catalog", "broker_url")

COMPARISON = JobGroup.Kind.COMPARISON


@pytest.fixture
def unthrottled(settings):
    """Races about budgets alone: the rate and the active cap have their own tests."""
    settings.JOB_SUBMITS_PER_MINUTE = settings.JOB_ACTIVE_LIMIT = 0


def compare(owner, models, *, team=None, prompt="a lighthouse at dusk", **extra):
    return services.job_group_create(
        owner=owner,
        kind=COMPARISON,
        team=team,
        specs=[JobSpec(prompt=prompt, model=model) for model in models],
        **extra,
    )


def attempt(owner, models, **extra):
    """The group, or the refusal the person would read."""
    try:
        return compare(owner, models, **extra)
    except services.SubmitRefusedError as refusal:
        return refusal


def test_a_comparison_saves_every_job_charged_to_one_place_with_its_own_hold(alice):
    group = compare(alice, [VEO, KLING, TEST_MODEL])

    jobs = list(group.jobs.order_by("group_position"))
    assert [job.model for job in jobs] == [VEO, KLING, TEST_MODEL]
    assert [job.hold for job in jobs] == [Decimal("0.60"), Decimal("0.50"), Decimal(0)]
    assert {(job.owner, job.team, job.status) for job in jobs} == {(alice, None, "queued")}
    assert group.kind == COMPARISON and group.owner == alice and group.team is None


@pytest.mark.django_db(transaction=True)
def test_a_comparison_over_budget_is_refused_whole_naming_the_level_and_the_shortfall(alice):
    set_budget(alice, "1.00")

    refusal = attempt(alice, [VEO, KLING, VEO])

    assert isinstance(refusal, services.OverBudgetError)
    assert str(refusal) == (
        "Your personal budget has $1.00 left this month; these 3 videos could cost up to $1.70 "
        "together, $0.70 more than that. Nothing was started."
    )
    assert refusal.short == Decimal("0.70")
    assert not Job.objects.exists() and not JobGroup.objects.exists()


def test_a_comparison_names_the_team_level_that_is_short(alice):
    design = team_with("Design", members=[alice], limit="1.00")

    refusal = attempt(alice, [VEO, VEO], team=design)

    assert isinstance(refusal, services.OverBudgetError)
    assert refusal.status.budget.level == Budget.Level.TEAM
    assert str(refusal).startswith("Design team has $1.00 left this month; these 2 videos")
    assert "$0.20 more than that" in str(refusal)


def test_a_model_the_team_may_not_use_refuses_the_whole_comparison(alice):
    design = team_with("Design", members=[alice], models=[TEST_MODEL, VEO])

    refusal = attempt(alice, [TEST_MODEL, KLING], team=design)

    assert isinstance(refusal, services.ModelUnavailableError)
    assert refusal.model == KLING
    assert not Job.objects.exists()


@pytest.mark.parametrize(
    ("kind", "count", "message"),
    [
        (COMPARISON, 1, "A comparison takes 2 to 6 models; this one has 1."),
        (COMPARISON, 7, "A comparison takes 2 to 6 models; this one has 7."),
        (JobGroup.Kind.VARIATIONS, 9, "Variations takes 2 to 8 runs; this one has 9."),
        (JobGroup.Kind.BATCH, 101, "A batch takes 1 to 100 prompts; this one has 101."),
    ],
)
def test_a_group_of_the_wrong_size_is_refused(alice, kind, count, message):
    with pytest.raises(services.GroupSizeError, match=message):
        services.job_group_create(
            owner=alice, kind=kind, specs=[JobSpec(prompt="p", model=TEST_MODEL)] * count
        )
    assert not Job.objects.exists()


def test_an_image_is_copied_to_every_job_of_the_group(alice):
    png = image_bytes()
    image = SimpleUploadedFile("boat.png", png, content_type="image/png")

    group = compare(alice, [TEST_MODEL, KLING], image=image)

    names = [job.input_image.name for job in group.jobs.all()]
    assert len(set(names)) == 2
    for job in group.jobs.all():
        with job.input_image.open("rb") as stored:
            assert stored.read() == png
        assert job.stored_bytes == len(png)


# --- The active-jobs cap: a group counts as one ---------------------------------------------------


def test_a_hundred_row_batch_is_accepted_where_the_active_limit_is_ten(alice, settings):
    settings.JOB_ACTIVE_LIMIT = 10
    settings.JOB_SUBMITS_PER_MINUTE = 0
    for n in range(8):
        services.job_create(
            owner=alice,
            prompt=f"alone {n}",
            model=TEST_MODEL,
            size="auto",
            seconds="auto",
            response_format="url",
        )

    batch = services.job_group_create(
        owner=alice,
        kind=JobGroup.Kind.BATCH,
        specs=[JobSpec(prompt=f"row {n}", model=TEST_MODEL) for n in range(100)],
    )
    assert batch.jobs.count() == 100
    compare(alice, [TEST_MODEL, KLING])  # the tenth submit

    with pytest.raises(services.TooManyActiveJobsError, match="counts as one"):
        compare(alice, [TEST_MODEL, KLING])
    with pytest.raises(services.TooManyActiveJobsError):
        services.job_create(
            owner=alice,
            prompt="one more",
            model=TEST_MODEL,
            size="auto",
            seconds="auto",
            response_format="url",
        )
    assert Job.objects.filter(owner=alice).count() == 8 + 100 + 2


def test_a_group_stops_counting_once_none_of_its_jobs_is_queued_or_running(alice, settings):
    settings.JOB_ACTIVE_LIMIT = 1
    group = compare(alice, [TEST_MODEL, KLING])
    with pytest.raises(services.TooManyActiveJobsError):
        compare(alice, [TEST_MODEL, KLING])

    first, second = group.jobs.order_by("group_position")
    services.job_cancel(job=first)
    with pytest.raises(services.TooManyActiveJobsError):  # one of its jobs is still queued
        compare(alice, [TEST_MODEL, KLING])
    services.job_cancel(job=second)
    assert compare(alice, [TEST_MODEL, KLING]).jobs.count() == 2


def test_a_group_counts_as_one_submit_against_the_rate(alice, settings):
    settings.JOB_SUBMITS_PER_MINUTE = 2
    compare(alice, [TEST_MODEL, KLING, VEO])
    compare(alice, [TEST_MODEL, KLING, VEO])

    with pytest.raises(services.SubmitRateLimitedError):
        compare(alice, [TEST_MODEL, KLING])
    assert Job.objects.count() == 6


# --- Racing submits on PostgreSQL ------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("unthrottled")
def test_racing_comparisons_are_each_accepted_or_refused_whole(django_user_model):
    """Ten members at once each compare Veo and Kling ($1.10 worst case) on a $3.00 team
    budget: exactly two fit, each whole; the eight others get the team's shortfall and leave
    no job behind."""
    members = [django_user_model.objects.create_user(f"member{n}") for n in range(10)]
    design = team_with("Design", members=members, limit="3.00")

    results, _, errors = at_once(
        10, lambda n: attempt(members[n], [VEO, KLING], team=design), refusal=()
    )

    assert errors == []
    accepted = [r for r in results if isinstance(r, JobGroup)]
    refused = [r for r in results if not isinstance(r, JobGroup)]
    assert len(accepted) == 2 and len(refused) == 8
    assert all(isinstance(r, services.OverBudgetError) for r in refused), refused
    assert {str(r) for r in refused} == {
        "Design team has $0.80 left this month; these 2 videos could cost up to $1.10 "
        "together, $0.30 more than that. Nothing was started."
    }
    assert JobGroup.objects.count() == 2
    assert Job.objects.filter(group__isnull=True).count() == 0
    for group in JobGroup.objects.all():
        assert sorted(group.jobs.values_list("model", flat=True)) == sorted([VEO, KLING])
    assert sum(job.hold for job in Job.objects.all()) == Decimal("2.20")
    assert levels_over() == []


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("unthrottled")
def test_racing_comparisons_and_single_jobs_never_pass_a_level_nor_split_a_group(
    django_user_model,
):
    """Comparisons ($1.20 + $0.60) and single jobs ($0.60) from people in two teams and their
    personal spaces race under a $4.20 organization cap: whatever wins, no level is passed and
    no group is left with part of its jobs."""
    people = [django_user_model.objects.create_user(f"user{n}") for n in range(6)]
    alpha = team_with("Alpha", members=people[:3], limit="2.40")
    beta = team_with("Beta", members=people[3:], limit="3.00")
    services.budget_set(level=Budget.Level.ORGANIZATION, limit=Decimal("4.20"), changed_by=None)
    places = [alpha, alpha, alpha, beta, beta, None]

    def submit(n):
        owner, team = people[n % 6], places[n % 6]
        if n % 2:
            try:
                return services.job_create(
                    owner=owner,
                    team=team,
                    prompt=f"single {n}",
                    model=VEO,
                    size="auto",
                    seconds="auto",
                    response_format="url",
                )
            except services.SubmitRefusedError as refusal:
                return refusal
        return attempt(owner, [SORA, VEO], team=team, prompt=f"compare {n}")

    results, _, errors = at_once(24, submit, refusal=())

    assert errors == []
    refused = [r for r in results if isinstance(r, Exception)]
    assert refused and all(isinstance(r, services.OverBudgetError) for r in refused), refused
    assert levels_over() == []
    held = sum(job.hold for job in Job.objects.all())
    assert held <= Decimal("4.20")
    # Every $0.60 single was refused only once less than $0.60 was left somewhere it applies,
    # and every group is whole: two jobs, $1.80 held.
    for group in JobGroup.objects.all():
        assert group.jobs.count() == 2
        assert sum(job.hold for job in group.jobs.all()) == Decimal("1.80")
    accepted_groups = [r for r in results if isinstance(r, JobGroup)]
    assert JobGroup.objects.count() == len(accepted_groups)


@pytest.mark.django_db(transaction=True)
def test_racing_comparisons_from_one_person_fit_the_active_limit(alice, settings):
    settings.JOB_ACTIVE_LIMIT = 2
    settings.JOB_SUBMITS_PER_MINUTE = 0

    results, _, errors = at_once(8, lambda n: attempt(alice, [TEST_MODEL, KLING]), refusal=())

    assert errors == []
    assert len([r for r in results if isinstance(r, JobGroup)]) == 2
    refused = [r for r in results if not isinstance(r, JobGroup)]
    assert len(refused) == 6
    assert all(isinstance(r, services.TooManyActiveJobsError) for r in refused)
    assert Job.objects.count() == 4


@pytest.mark.django_db(transaction=True)
def test_a_comparisons_jobs_all_run_on_a_real_worker(alice, simulator, broker_url):
    with running_worker(broker_url):
        group = compare(alice, [TEST_MODEL, TEST_MODEL, KLING])
        wait_for(
            lambda: not group.jobs.filter(status__in=Job.LIVE).exists(),
            timeout=60,
            what="the comparison's jobs to finish",
        )
    assert set(group.jobs.values_list("status", flat=True)) == {Job.Status.SUCCEEDED}
    assert all(job.hold == 0 for job in group.jobs.all())
