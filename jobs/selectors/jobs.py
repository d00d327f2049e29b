"""Reads of jobs for the person asking: one job (their own, or anyone's for staff), where a
queued job stands, how long a model usually takes here, and the galleries'
searches (My videos and Team videos, each a Space)."""

from dataclasses import dataclass

from django.db.models import Q
from django.shortcuts import get_object_or_404

from jobs.models import Job, Membership, Team

from .retention import expiring_before, warning_horizon


def visible_to(user) -> Q:
    """Who may see a job, the one rule every page, file, fragment, poll and API answer asks
    (DESIGN.md, Organizations): its owner while it is personal, the current members of the team
    it is charged to (its maker too, only while a member), and staff. Derived, never stored, so
    a removed member loses access everywhere at once."""
    teams = Membership.objects.filter(user=user).values("team_id")
    return Q(team__isnull=True, owner=user) | Q(team_id__in=teams)


def managed_by(user) -> Q:
    """Jobs a user may delete though another made them: those of the teams they manage."""
    teams = Membership.objects.filter(user=user, role=Membership.Role.MANAGER).values("team_id")
    return Q(team_id__in=teams)


def job_get_for_user(*, user, job_id, staff_sees_all: bool = True) -> Job:
    """The job, if `user` may see it (visible_to) or is staff; otherwise 404, so nobody learns
    it exists. Without staff_sees_all, staff see only what anyone may (an API token acts only
    as its user)."""
    jobs = Job.objects.filter(deleted_at__isnull=True)
    if not (user.is_staff and staff_sees_all):
        jobs = jobs.filter(visible_to(user))
    # Its maker and team come in the same query: the cards and the job page name them.
    return get_object_or_404(jobs.select_related("owner", "team"), pk=job_id)


def job_get_for_owner(*, user, job_id) -> Job:
    """The job, only for its owner while they may still see it: for actions that spend or
    destroy in their name (cancel, retry, share, delete). Staff may look at anyone's job, but
    not spend money or delete work in their name; a teammate may look, not act."""
    jobs = Job.objects.filter(visible_to(user), deleted_at__isnull=True, owner=user)
    return get_object_or_404(jobs, pk=job_id)


def job_get_for_delete(*, user, job_id) -> Job:
    """The job, for its owner (while they may see it) or a manager of its team."""
    jobs = Job.objects.filter(deleted_at__isnull=True).filter(
        (visible_to(user) & Q(owner=user)) | managed_by(user)
    )
    return get_object_or_404(jobs, pk=job_id)


# How many recent successes the wait estimate looks at: enough to be steady, recent enough to
# follow a provider that speeds up or slows down.
LATENCY_SAMPLE = 50


@dataclass(frozen=True)
class TypicalWait:
    seconds: float  # the median, from start to stored video
    sample: int  # how many recent successes it comes from


def typical_wait(*, model_id: str) -> TypicalWait | None:
    """The median time from start to stored video of the last LATENCY_SAMPLE successes on this
    model in this studio; None before its first success.

    Uses the job_model_succeeded index, so it reads at most LATENCY_SAMPLE rows.
    """
    rows = (
        Job.objects.filter(model=model_id, status=Job.Status.SUCCEEDED, started_at__isnull=False)
        .order_by("-finished_at")
        .values_list("started_at", "finished_at")[:LATENCY_SAMPLE]
    )
    waits = sorted((finished - started).total_seconds() for started, finished in rows)
    if not waits:
        return None
    middle = len(waits) // 2
    median = waits[middle] if len(waits) % 2 else (waits[middle - 1] + waits[middle]) / 2
    return TypicalWait(seconds=median, sample=len(waits))


@dataclass(frozen=True)
class QueuePosition:
    mine: int  # queued jobs of the same owner ahead of this one, plus one
    studio: int  # queued jobs of anyone ahead of this one, plus one


def queue_position(*, job: Job) -> QueuePosition:
    """Where a QUEUED job stands now: 1 means next. The fair queue's order (services/queue.py):
    the earlier round first, the older job first within a round; two counts on the
    job_queue_turn index. A job submitted later by someone with nothing queued may still join
    ahead of it: the place is today's, not a promise."""
    ahead = Job.objects.filter(status=Job.Status.QUEUED).filter(
        Q(queue_round__lt=job.queue_round)
        | Q(queue_round=job.queue_round, created_at__lt=job.created_at)
    )
    return QueuePosition(
        mine=ahead.filter(owner_id=job.owner_id).count() + 1, studio=ahead.count() + 1
    )


@dataclass(frozen=True)
class Space:
    """Whose videos a gallery shows, as seen by `user`: their own (team None: My videos) or one
    team's (Team videos). Every gallery read goes through space_jobs, so both galleries share
    one search, one set of filters and one bulk selection."""

    user: object
    team: Team | None = None


def space_jobs(*, space: Space):
    """The space's jobs that its user may see, not deleted.

    My videos: the user's personal jobs, and the team jobs they made while they are still a
    member of that team (what they made for a team they have left stays with the team). Rides
    the job_owner_created index.

    Team videos: the team's jobs, from every member, for its current members and staff (the
    view has checked the membership with team_get_for_member; visible_to checks again here, so
    this read is safe on its own). Rides the job_team_created index.
    """
    user = space.user
    jobs = Job.objects.filter(deleted_at__isnull=True)
    if space.team is None:
        return jobs.filter(visible_to(user), owner=user)
    jobs = jobs.filter(team=space.team)
    return jobs if user.is_staff else jobs.filter(visible_to(user))


# The gallery's "Keeping" filter: what retention does to the space's videos.
KEEP_FILTERS = {
    "starred": "Starred (kept)",
    "expiring": "Expiring within 7 days",
    "expired": "Expired",
}


def _keep_filter(keep: str) -> Q:
    if keep == "starred":
        return Q(starred_at__isnull=False)
    if keep == "expired":
        return Q(expired_at__isnull=False)
    return expiring_before(warning_horizon())


def job_search(*, space: Space, status: str = "", model: str = "", query: str = "", keep: str = ""):
    """The space's jobs, newest first, narrowed by status, model, words in the prompt and what
    retention does to them (`keep`: starred, expiring soon, expired), with their maker and team
    (the cards name them).

    The prompt search is a plain icontains, a scan of the space's rows: fine for the thousands
    of jobs a person or a team makes, but at scale it would want a trigram (pg_trgm GIN) or
    full-text index on the prompt.
    """
    jobs = space_jobs(space=space)
    if status:
        jobs = jobs.filter(status=status)
    if model:
        jobs = jobs.filter(model=model)
    if query:
        jobs = jobs.filter(prompt__icontains=query)
    if keep in KEEP_FILTERS:
        jobs = jobs.filter(_keep_filter(keep))
    return jobs.select_related("owner", "team").order_by("-created_at", "-pk")


def jobs_expiring_soon(*, space: Space) -> int:
    """How many of the space's videos retention deletes within EXPIRY_WARNING_DAYS: the
    gallery's banner."""
    return space_jobs(space=space).filter(expiring_before(warning_horizon())).count()


def job_models(*, space: Space) -> list[str]:
    """The models the space's jobs used, for the gallery's model filter: it offers what they
    can find, including models since dropped from the catalog."""
    models = space_jobs(space=space).values_list("model", flat=True)
    return list(models.distinct().order_by("model"))


def jobs_selected(*, space: Space, job_ids):
    """The space's jobs among `job_ids`, for the zip: anything its user may see there. Another
    space's ids, deleted and unknown ones are simply not there."""
    jobs = space_jobs(space=space).filter(pk__in=job_ids)
    return jobs.order_by("-created_at", "-pk")


def jobs_selected_for_delete(*, space: Space, job_ids):
    """The space's jobs among `job_ids` that its user may delete, as job_get_for_delete rules:
    their own, and, for a team's managers, every one of the team's. Staff may look, not delete."""
    user = space.user
    jobs = space_jobs(space=space).filter(Q(owner=user) | managed_by(user), pk__in=job_ids)
    return jobs.order_by("-created_at", "-pk")
