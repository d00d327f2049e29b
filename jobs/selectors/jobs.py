"""Reads of jobs for the person asking: one job (their own, or anyone's for staff), where a
queued job stands, how long a model usually takes here, and the galleries'
searches (My videos and Team videos, each a Space)."""

import re
from dataclasses import dataclass

from django.db import connection
from django.db.models import Exists, Q
from django.db.models.expressions import RawSQL
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
    view has checked the membership with team_get_for_member; this read checks again, so it is
    safe on its own). Rides the job_team_created index. The check is visible_to's rule for one
    team: the user's membership of it, asked once for the query (an EXISTS PostgreSQL runs as a
    one-time filter), not once per job: per job it was half the time of reading a team's
    100,000 jobs from the job_gallery_team index (bench/gallery.py).
    """
    user = space.user
    jobs = Job.objects.filter(deleted_at__isnull=True)
    if space.team is None:
        return jobs.filter(visible_to(user), owner=user)
    jobs = jobs.filter(team=space.team)
    if user.is_staff:
        return jobs
    return jobs.filter(Exists(Membership.objects.filter(user=user, team=space.team)))


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


# A prompt search's terms: each "quoted phrase" whole, every other word on its own.
SEARCH_TERM = re.compile(r'"([^"]*)"|([^\s"]+)')
# A bound on the conditions one search adds (the form already bounds it to 200 characters).
MAX_SEARCH_TERMS = 10


def prompt_terms(query: str) -> list[str]:
    """The terms of a prompt search, each matched anywhere in the prompt whatever its case:
    `heron pier` finds "A heron lands on a wooden pier", `"golden hour"` only those words
    together, `boa` finds "boat". Repeats are dropped; an unclosed quote is ignored."""
    terms = {}
    for phrase, word in SEARCH_TERM.findall(query):
        term = " ".join((phrase or word).split())
        if term:
            terms.setdefault(term.casefold(), term)
    return list(terms.values())[:MAX_SEARCH_TERMS]


def job_search(*, space: Space, status: str = "", model: str = "", query: str = "", keep: str = ""):
    """The space's jobs, newest first, narrowed by status, model, words in the prompt
    (prompt_terms: every term must be in it) and what retention does to them (`keep`:
    starred, expiring soon, expired).

    Each term is an icontains. On PostgreSQL that is `UPPER(prompt) LIKE UPPER('%term%')`,
    which the space's trigram index (job_prompt_owner or job_prompt_team: pg_trgm and
    btree_gin, migration 0025) answers without reading the space's rows or anyone else's
    matches; SQLite scans them, as it always has.
    """
    jobs = space_jobs(space=space)
    if status:
        jobs = jobs.filter(status=status)
    if model:
        jobs = jobs.filter(model=model)
    for term in prompt_terms(query):
        jobs = jobs.filter(prompt__icontains=term)
    if keep in KEEP_FILTERS:
        jobs = jobs.filter(_keep_filter(keep))
    return jobs.order_by("-created_at", "-pk")


# A gallery counts its entries up to this many past the page asked for, and says "more than"
# beyond: counting all of a team's 100,000 jobs on every page read them all, 20 to 60 ms, and
# as much again for a common word's matches (bench/gallery.py), where finding the page itself
# reads a few hundred.
COUNT_LIMIT = 1_000
# The first read of a gallery's count takes up to this many rows per entry it must count: a
# group's jobs (a comparison, variations, a batch) are one entry, so entries are fewer than rows.
# Up to half of the rows grouped in threes (1.5 rows an entry), a common search is settled by
# that read alone; more grouped than that, it counts as before (gallery_entry_count).
ROWS_PER_ENTRY = 1.5


@dataclass(frozen=True)
class EntryCount:
    count: int  # the entries; when `more`, one past the bound counted to
    more: bool = False  # there are more than count - 1, perhaps many more
    # Every entry's job id, newest first, when the count read all of them (a filter or search
    # that matches fewer than the bound): the page is then a slice of it.
    ids: tuple | None = None


def gallery_entry_count(*, jobs, at_least: int = 0) -> EntryCount:
    """How many gallery entries `jobs` (job_search's) make: a job made alone is one, and so is
    each group (a comparison, variations, a batch) with a job among them, as group_leads_only
    shows them. It counts up to COUNT_LIMIT entries, or `at_least` (the last entry of the page
    asked for) if that is more, and one more to tell whether there are more.

    Up to COUNT_LIMIT, it first reads up to ROWS_PER_ENTRY matching rows an entry
    (_entries_read), one statement that finds the matches once. A search or a filter that
    matches fewer is then known whole, its count and every page's ids with it, so gallery_page
    needs no statement of its own to find them: for My videos' `boat` with status failed (475
    entries) the trigram and status bitmaps were built three times, once for each count and
    once for the page: 167 ms of SQL and Python for the count and the page's rows, then 49 ms
    (bench/gallery.py's database, before the index per space of migration 0025, with which it
    is 52 -> 28 ms under load). A common term fills the read, and more entries than the
    bound among its rows say "more than" at once. Only a page further along, or rows so grouped
    that they hold fewer entries than the bound, count through the index as before
    (_entries_counted)."""
    limit = max(COUNT_LIMIT, at_least)
    if limit == COUNT_LIMIT:
        read = _entries_read(jobs=jobs, rows=int((limit + 1) * ROWS_PER_ENTRY))
        if read is not None:
            return read
    return _entries_counted(jobs=jobs, limit=limit)


def _entries_read(*, jobs, rows: int) -> EntryCount | None:
    """The entries among the first `rows` matches of `jobs`, in one statement: all of them, with
    their ids newest first, when fewer rows match; "more" when the rows hold more than
    COUNT_LIMIT entries; None when there may be more rows and those read are too grouped to
    tell.

    The rows are read once (a CTE, which PostgreSQL materializes as it is read more than once),
    in whatever order is cheapest, stopping at `rows`, as the count of entries made alone did.
    Only when they are all the matches does the statement send their entries (group_leads_only's
    rule over them: no match of the same group at an earlier place); otherwise it sends one
    figure, the entries among the rows read: sending a common term's 1,500 rows to Python cost
    more than counting them (bench/gallery.py)."""
    window_sql, window_params = (
        jobs.order_by()
        .values_list("pk", "group_id", "group_position", "created_at")[:rows]
        .query.sql_with_params()
    )
    sql = (
        f"WITH w(id, group_id, group_position, created_at) AS ({window_sql}),"  # noqa: S608
        " n(found) AS (SELECT COUNT(*) FROM w)"
        " SELECT w.id, w.created_at, NULL FROM w, n"
        " WHERE n.found < %s AND (w.group_id IS NULL OR NOT EXISTS ("
        "  SELECT 1 FROM w AS e WHERE e.group_id = w.group_id"
        "  AND (e.group_position < w.group_position"
        "  OR (e.group_position = w.group_position AND e.created_at < w.created_at))))"
        " UNION ALL"
        " SELECT NULL, NULL, (SELECT COUNT(*) FROM w WHERE group_id IS NULL)"
        " + (SELECT COUNT(DISTINCT group_id) FROM w) FROM n WHERE n.found >= %s"
        " ORDER BY 2 DESC, 1 DESC"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [*window_params, rows, rows])
        found = cursor.fetchall()
    if found and found[0][0] is None:  # the rows read are not all the matches
        entries = found[0][2]
        return EntryCount(COUNT_LIMIT + 1, more=True) if entries > COUNT_LIMIT else None
    to_pk = Job._meta.pk.to_python  # SQLite sends the ids as text
    ids = tuple(to_pk(pk) for pk, _, _ in found)
    if len(ids) > COUNT_LIMIT:  # said as any count past the bound is; its pages are all here
        return EntryCount(COUNT_LIMIT + 1, more=True, ids=ids)
    return EntryCount(len(ids), ids=ids)


def _entries_counted(*, jobs, limit: int) -> EntryCount:
    """gallery_entry_count through the space's job_gallery_owner or job_gallery_team index,
    whose columns hold the status, model, starred and expired filters: up to `limit` + 1."""
    from .groups import group_leads_only  # groups.py imports this module

    # Most entries are jobs made alone, which need no group check: counted first, PostgreSQL
    # reads a common word's or phrase's matches and stops at limit + 1, where with the group
    # check (a subquery per row, in its estimate) it built the search's whole trigram bitmap
    # first: 55-70 ms for "golden hour" in a team of 100,000 (bench/gallery.py).
    alone = jobs.order_by().filter(group__isnull=True)[: limit + 1].count()
    if alone > limit:
        return EntryCount(alone, more=True)
    found = group_leads_only(jobs.order_by())[: limit + 1].count()
    return EntryCount(found, more=found > limit)


def gallery_page(*, jobs, offset: int, limit: int, counted: EntryCount | None = None) -> list[Job]:
    """One page of the gallery's entries (job_search's jobs, group_leads_only), newest first,
    with their maker, team and group (the cards name them).

    In two steps: the page's ids, then those rows by primary key. The ids are a slice of
    `counted` (gallery_entry_count's) when it read them all; otherwise they come from the
    space's gallery index alone. In one step, a filter that matches little (a status no job has
    now, a rare model) read every row of the space before finding its page."""
    from .groups import group_leads_only  # groups.py imports this module

    if counted is not None and counted.ids is not None:
        ids = list(counted.ids[offset : offset + limit])
    else:
        ids = list(group_leads_only(jobs).values_list("pk", flat=True)[offset : offset + limit])
    rows = Job.objects.filter(pk__in=ids).select_related("owner", "team", "group")
    by_id = {job.pk: job for job in rows}
    return [by_id[pk] for pk in ids if pk in by_id]


def jobs_expiring_soon(*, space: Space) -> int:
    """How many of the space's videos retention deletes within EXPIRY_WARNING_DAYS: the
    gallery's banner."""
    return space_jobs(space=space).filter(expiring_before(warning_horizon())).count()


def job_models(*, space: Space) -> list[str]:
    """The models the space's jobs used, for the gallery's model filter: it offers what they
    can find, including models since dropped from the catalog.

    A skip scan, in one query: the space's first model, then the first one after it, and so on
    (a recursive CTE). Each step is one probe of the job_models_owner or job_models_team index,
    so it reads a few entries per model instead of every job of the space: a DISTINCT read a
    team's 100,000 on every gallery page, 35 to 110 ms (bench/gallery.py)."""
    jobs = space_jobs(space=space).order_by("model").values("model")
    first_sql, first_params = jobs[:1].query.sql_with_params()
    after = jobs.filter(model__gt=RawSQL("seen.model", ()))[:1]
    next_sql, next_params = after.query.sql_with_params()
    sql = (
        f"WITH RECURSIVE seen(model) AS (SELECT ({first_sql})"  # noqa: S608 (Django's own SQL)
        f" UNION ALL SELECT ({next_sql}) FROM seen WHERE seen.model IS NOT NULL)"
        " SELECT model FROM seen WHERE model IS NOT NULL"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [*first_params, *next_params])
        return [model for (model,) in cursor.fetchall()]


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
