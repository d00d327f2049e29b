"""The galleries, My videos and Team videos: cards with filters, search, pages, and bulk delete
and download. Both are one gallery over a Space (selectors.Space): a person's own, or a team's."""

import logging
import uuid

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import StreamingHttpResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.cache import patch_vary_headers
from django.utils.functional import cached_property
from django.utils.http import content_disposition_header, url_has_allowed_host_and_scheme
from django.utils.text import slugify
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import HttpResponseClientRedirect, HttpResponseStopPolling

from jobs import selectors, services
from jobs.gallery_forms import GalleryFilterForm, selected_job_ids
from jobs.zipstream import ZipStream

from .jobs import may_act

logger = logging.getLogger(__name__)

PAGE_SIZE = 24
MAX_PAGE = 1_000_000
ENTRY_SLUG_CHARS = 40


@login_required
@require_GET
def job_list(request):
    """My videos: the person's own jobs (team ones too, while they are in the team)."""
    space = selectors.Space(user=request.user)
    return _gallery(request, space, {})


@login_required
@require_GET
def team_job_list(request, team_id):
    """Team videos: every member's jobs charged to the team, for its members and staff."""
    team, membership = selectors.team_get_for_member(user=request.user, team_id=team_id)
    space = selectors.Space(user=request.user, team=team)
    return _gallery(request, space, {"membership": membership})


def _gallery(request, space, context):
    """A gallery of the space's jobs. A GET form filters it, so every view of it has a URL that
    can be bookmarked and works without JavaScript; htmx asks for the #gallery fragment alone."""
    form = GalleryFilterForm(request.GET, models=selectors.job_models(space=space))
    filters = form.filters()
    # A comparison, variations or batch is one entry: its first job that matches the filters,
    # which expands to the rest of the group (_attach_groups).
    jobs = selectors.job_search(space=space, **filters)
    paginator = GalleryPaginator(jobs, PAGE_SIZE, asked=request.GET.get("page"))
    page = paginator.get_page(request.GET.get("page"))
    _attach_groups(space, page)
    context.update(_space_urls(space))
    page_range = list(paginator.get_elided_page_range(page.number, on_each_side=2, on_ends=1))
    if paginator.more:  # the last page counted is not the last one
        page_range.append(paginator.ELLIPSIS)
    context |= {
        "form": form,
        "page": page,
        "page_range": page_range,
        "is_filtered": any(filters.values()),
    }
    # A history restore (back button after the cache expired) swaps the whole body: it needs the
    # page, though htmx sent it.
    if request.htmx and not request.htmx.history_restore_request:
        response = render(request, "jobs/job_list.html#gallery", context)
    else:
        if space.team is None:
            context["total_spend"] = selectors.spend_total_for_user(user=request.user)
        context["storage"] = selectors.storage_for_space(space=space)
        context["expiring_soon"] = selectors.jobs_expiring_soon(space=space)
        context["retention_days"] = (
            space.team.effective_retention_days if space.team else settings.RETENTION_DAYS
        )
        response = render(request, "jobs/job_list.html", context)
    # One URL, two answers: caches must keep the fragment and the page apart.
    patch_vary_headers(response, ["HX-Request"])
    return response


class GalleryPaginator(Paginator):
    """Pages of a gallery's entries (selectors.gallery_entry_count and gallery_page).

    The count may stop short (`more`): then `count` is one past what the page says there are
    "more than", so the last page counted always has a next one, which counts further when
    asked for. The page asked for (`asked`) is known before counting, so it exists whenever the
    gallery has that many entries.
    """

    def __init__(self, jobs, per_page, *, asked):
        super().__init__(jobs, per_page)
        try:
            # A page number from the address bar, bounded so that the count's LIMIT stays a
            # number PostgreSQL takes; a page past the last shows the last, as Paginator does.
            self.asked = min(max(1, int(asked)), MAX_PAGE)
        except (TypeError, ValueError):
            self.asked = 1

    @cached_property
    def entries(self) -> selectors.EntryCount:
        return selectors.gallery_entry_count(
            jobs=self.object_list, at_least=self.asked * self.per_page
        )

    @cached_property
    def count(self) -> int:
        return self.entries.count

    @property
    def more(self) -> bool:
        return self.entries.more

    def page(self, number):
        number = self.validate_number(number)
        offset = (number - 1) * self.per_page
        rows = selectors.gallery_page(
            jobs=self.object_list, offset=offset, limit=self.per_page, counted=self.entries
        )
        return self._get_page(rows, number, self)


def _attach_groups(space, page) -> None:
    """Give each group's entry on the page the group's jobs in this space (`group_jobs`, in
    order): one query for the whole page."""
    group_ids = {job.group_id for job in page if job.group_id is not None}
    if not group_ids:
        return
    members = selectors.group_members_by_group(
        jobs_base=selectors.space_jobs(space=space), group_ids=group_ids
    )
    for job in page:
        if job.group_id is not None:
            job.group_jobs = members.get(job.group_id, [job])


def _with_selected_groups(request, space, job_ids: list) -> list:
    """The ticked jobs, with every job of each ticked group entry (name="group") in the space:
    a group is selected, deleted and downloaded as one entry."""
    group_ids = []
    for value in request.POST.getlist("group"):
        try:
            group_ids.append(uuid.UUID(value))
        except ValueError:
            continue
    if not group_ids:
        return job_ids
    members = selectors.space_jobs(space=space).filter(group_id__in=group_ids)
    return list(dict.fromkeys([*job_ids, *members.values_list("pk", flat=True)]))


def _space_urls(space) -> dict:
    """Where the space's gallery and its bulk actions live, and its team (None: My videos)."""
    if space.team is None:
        return {
            "team": None,
            "gallery_url": reverse("jobs:list"),
            "delete_url": reverse("jobs:delete_selected"),
            "download_url": reverse("jobs:download_selected"),
        }
    args = [space.team.pk]
    return {
        "team": space.team,
        "gallery_url": reverse("teams:videos", args=args),
        "delete_url": reverse("teams:delete_selected", args=args),
        "download_url": reverse("teams:download_selected", args=args),
    }


@login_required
@require_GET
def job_card(request, job_id):
    """One card of the gallery, which a live card polls. Terminal answers stop the polling."""
    job = selectors.job_get_for_user(user=request.user, job_id=job_id)
    if job.group_id is not None:  # a group's entry stays one entry as it polls
        job.group_jobs = list(selectors.group_jobs(group=job.group))
    context = {"job": job, "may_star": may_act(request, job)["may_star"]}
    if not job.is_terminal:
        return render(request, "jobs/_job_card.html", context)
    card = render_to_string("jobs/_job_card.html", context, request=request)
    return HttpResponseStopPolling(card)


@login_required
@require_POST
def job_delete_selected(request):
    return _delete_selected(request, selectors.Space(user=request.user))


@login_required
@require_POST
def team_job_delete_selected(request, team_id):
    team, _ = selectors.team_get_for_member(user=request.user, team_id=team_id)
    return _delete_selected(request, selectors.Space(user=request.user, team=team))


@login_required
@require_POST
def job_download_selected(request):
    return _download_selected(request, selectors.Space(user=request.user))


@login_required
@require_POST
def team_job_download_selected(request, team_id):
    team, _ = selectors.team_get_for_member(user=request.user, team_id=team_id)
    return _download_selected(request, selectors.Space(user=request.user, team=team))


def _delete_selected(request, space):
    """Delete the ticked jobs of the space that the person may delete (their own; a team
    manager, any of the team's) and that have finished; the live ones are skipped and counted,
    and so are a teammate's. Without `confirmed` it asks first: on a page of its own, or, asked
    by htmx, in the gallery's dialog (job_list.html#confirm_delete, which gallery.js opens)."""
    back = _gallery_url(request, space)
    # An htmx request that ends with a message goes back to the gallery as a whole page, as the
    # form's own post would, rather than into the dialog.
    go_back = HttpResponseClientRedirect(back) if request.htmx else redirect(back)
    try:
        job_ids = selected_job_ids(request.POST)
    except ValueError as exc:
        messages.error(request, str(exc))
        return go_back
    job_ids = _with_selected_groups(request, space, job_ids)
    if not job_ids:
        messages.info(request, "Select at least one video to delete.")
        return go_back

    jobs = list(selectors.jobs_selected_for_delete(space=space, job_ids=job_ids))
    # Ticked videos a member may see but not delete: a teammate's, in the team's gallery.
    not_theirs = 0
    if space.team is not None:
        not_theirs = selectors.jobs_selected(space=space, job_ids=job_ids).count() - len(jobs)
    finished = [job for job in jobs if job.is_terminal]
    live = len(jobs) - len(finished)
    confirmed = request.POST.get("confirmed")
    if request.htmx and not confirmed and (finished or live):
        context = {"finished": len(finished), "live": live, "not_theirs": not_theirs}
        context.update(_space_urls(space))
        return render(request, "jobs/job_list.html#confirm_delete", context)
    if not finished:
        if live:
            messages.info(request, f"Nothing was deleted: {_still_running(live)}.")
        elif not_theirs:
            messages.info(request, f"Nothing was deleted: {_made_by_teammates(not_theirs)}.")
        else:
            messages.info(request, "Nothing was deleted: the selected videos are gone already.")
        return go_back
    if not confirmed:
        # Every selected id goes round again, so the final message counts the skipped ones too.
        job_ids = [job.pk for job in jobs]
        context = {"jobs": finished, "job_ids": job_ids, "live": live, "back": back}
        context["not_theirs"] = not_theirs
        context.update(_space_urls(space))
        return render(request, "jobs/_gallery_confirm_delete.html", context)

    deleted = sum(services.job_delete(job=job) for job in finished)
    skipped = len(jobs) - deleted
    if deleted == 1:
        message = "Deleted 1 video and its prompt. What it cost stays on record."
    else:
        message = f"Deleted {deleted} videos and their prompts. What they cost stays on record."
    if skipped:
        message += f" Skipped {_still_running(skipped)}."
    if not_theirs:
        message += f" Skipped {_made_by_teammates(not_theirs)}."
    messages.success(request, message)
    return redirect(back)


def _download_selected(request, space):
    """The ticked videos of the space, as one .zip streamed as it is written."""
    back = _gallery_url(request, space)
    try:
        job_ids = selected_job_ids(request.POST)
    except ValueError as exc:
        messages.error(request, str(exc))
        return redirect(back)
    job_ids = _with_selected_groups(request, space, job_ids)
    if not job_ids:
        messages.info(request, "Select at least one video to download.")
        return redirect(back)
    jobs = [job for job in selectors.jobs_selected(space=space, job_ids=job_ids) if job.video]
    if not jobs:
        messages.info(request, "None of the selected jobs has a video to download yet.")
        return redirect(back)

    response = StreamingHttpResponse(zip_stream(jobs), content_type="application/zip")
    today = timezone.localdate().isoformat()
    name = f"videostudio-{slugify(space.team.name)}-{today}.zip" if space.team else None
    response["Content-Disposition"] = content_disposition_header(
        True, name or f"videostudio-{today}.zip"
    )
    response["Cache-Control"] = "private, no-store"
    return response


def _still_running(count: int) -> str:
    return (
        f"{count} {'is' if count == 1 else 'are'} still in progress, and a job can be deleted "
        "once it has finished"
    )


def _made_by_teammates(count: int) -> str:
    return (
        f"{count} {'was' if count == 1 else 'were'} made by a teammate, and only its maker or "
        "a manager of the team can delete it"
    )


def _gallery_url(request, space) -> str:
    """Where a bulk action goes back to: the gallery page it came from, with its filters and
    page, when `next` is such a path on this site; otherwise the first page."""
    url = request.POST.get("next", "")
    gallery = _space_urls(space)["gallery_url"]
    safe = url_has_allowed_host_and_scheme(
        url, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    )
    return url if safe and url.startswith(gallery) else gallery


# The zip ---------------------------------------------------------------------------------------


def zip_entry_name(job, taken: set[str]) -> str:
    """`2026-11-24-a-heron-lands-on-a-pier-1a2b3c4d.mp4`: sorts by day, says what it shows, and
    the short id tells apart two videos of one prompt on one day (the whole id if even that
    clashes)."""
    day = timezone.localtime(job.created_at).date().isoformat()
    slug = slugify(job.prompt)
    if len(slug) > ENTRY_SLUG_CHARS:
        slug = slug[: ENTRY_SLUG_CHARS + 1].rsplit("-", 1)[0][:ENTRY_SLUG_CHARS]
    slug = slug.strip("-") or ("video" if job.prompt else "image-only")
    name = f"{day}-{slug}-{job.pk.hex[:8]}.mp4"
    if name in taken:
        name = f"{day}-{slug}-{job.pk.hex}.mp4"
    taken.add(name)
    return name


def zip_stream(jobs):
    """Yield a zip of the jobs' videos, chunk by chunk (jobs/zipstream.py, which the export of a
    person's data writes with too: on S3 each video is read straight from the bucket's answer).
    A video missing from storage is left out."""
    archive = ZipStream()
    taken = set()
    for job in jobs:
        try:
            yield from archive.add_stored_file(
                zip_entry_name(job, taken), job.video, when=job.created_at
            )
        except FileNotFoundError:
            logger.warning("job %s: video %s is missing from storage", job.pk, job.video.name)
    yield from archive.close()
