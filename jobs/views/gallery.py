"""My videos: a gallery of cards with filters, search, pages, and bulk delete and download."""

import io
import logging
import zipfile

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import StreamingHttpResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.cache import patch_vary_headers
from django.utils.http import content_disposition_header, url_has_allowed_host_and_scheme
from django.utils.text import slugify
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import HttpResponseClientRedirect, HttpResponseStopPolling

from jobs import selectors, services
from jobs.gallery_forms import GalleryFilterForm, selected_job_ids

logger = logging.getLogger(__name__)

PAGE_SIZE = 24
# How much of a video is read, written to the zip and handed to the server at a time: the memory
# a download holds, whatever the size of the videos in it.
ZIP_CHUNK_BYTES = 64 * 1024
ENTRY_SLUG_CHARS = 40


@login_required
@require_GET
def job_list(request):
    """The gallery. A GET form filters it, so every view of it has a URL that can be bookmarked
    and works without JavaScript; htmx asks for the #gallery fragment alone."""
    form = GalleryFilterForm(request.GET, models=selectors.job_models_for_user(user=request.user))
    filters = form.filters()
    jobs = selectors.job_search_for_user(user=request.user, **filters)
    paginator = Paginator(jobs, PAGE_SIZE)
    page = paginator.get_page(request.GET.get("page"))
    context = {
        "form": form,
        "page": page,
        "page_range": paginator.get_elided_page_range(page.number, on_each_side=2, on_ends=1),
        "is_filtered": any(filters.values()),
    }
    # A history restore (back button after the cache expired) swaps the whole body: it needs the
    # page, though htmx sent it.
    if request.htmx and not request.htmx.history_restore_request:
        response = render(request, "jobs/job_list.html#gallery", context)
    else:
        context["total_spend"] = selectors.spend_total_for_user(user=request.user)
        response = render(request, "jobs/job_list.html", context)
    # One URL, two answers: caches must keep the fragment and the page apart.
    patch_vary_headers(response, ["HX-Request"])
    return response


@login_required
@require_GET
def job_card(request, job_id):
    """One card of the gallery, which a live card polls. Terminal answers stop the polling."""
    job = selectors.job_get_for_user(user=request.user, job_id=job_id)
    if not job.is_terminal:
        return render(request, "jobs/_job_card.html", {"job": job})
    card = render_to_string("jobs/_job_card.html", {"job": job}, request=request)
    return HttpResponseStopPolling(card)


@login_required
@require_POST
def job_delete_selected(request):
    """Delete the ticked jobs that are the person's own and finished; the live ones are skipped
    and counted. Without `confirmed` it asks first: on a page of its own, or, asked by htmx, in
    the gallery's dialog (job_list.html#confirm_delete, which gallery.js opens)."""
    back = _gallery_url(request)
    # An htmx request that ends with a message goes back to the gallery as a whole page, as the
    # form's own post would, rather than into the dialog.
    go_back = HttpResponseClientRedirect(back) if request.htmx else redirect(back)
    try:
        job_ids = selected_job_ids(request.POST)
    except ValueError as exc:
        messages.error(request, str(exc))
        return go_back
    if not job_ids:
        messages.info(request, "Select at least one video to delete.")
        return go_back

    jobs = list(selectors.jobs_selected_by_owner(user=request.user, job_ids=job_ids))
    finished = [job for job in jobs if job.is_terminal]
    live = len(jobs) - len(finished)
    confirmed = request.POST.get("confirmed")
    if request.htmx and not confirmed and (finished or live):
        context = {"finished": len(finished), "live": live}
        return render(request, "jobs/job_list.html#confirm_delete", context)
    if not finished:
        if live:
            messages.info(request, f"Nothing was deleted: {_still_running(live)}.")
        else:
            messages.info(request, "Nothing was deleted: the selected videos are gone already.")
        return go_back
    if not confirmed:
        # Every selected id goes round again, so the final message counts the skipped ones too.
        job_ids = [job.pk for job in jobs]
        context = {"jobs": finished, "job_ids": job_ids, "live": live, "back": back}
        return render(request, "jobs/_gallery_confirm_delete.html", context)

    deleted = sum(services.job_delete(job=job) for job in finished)
    skipped = len(jobs) - deleted
    if deleted == 1:
        message = "Deleted 1 video and its prompt. What it cost stays on record."
    else:
        message = f"Deleted {deleted} videos and their prompts. What they cost stays on record."
    if skipped:
        message += f" Skipped {_still_running(skipped)}."
    messages.success(request, message)
    return redirect(back)


@login_required
@require_POST
def job_download_selected(request):
    """The ticked videos that are the person's own, as one .zip streamed as it is written."""
    back = _gallery_url(request)
    try:
        job_ids = selected_job_ids(request.POST)
    except ValueError as exc:
        messages.error(request, str(exc))
        return redirect(back)
    if not job_ids:
        messages.info(request, "Select at least one video to download.")
        return redirect(back)
    jobs = [
        job
        for job in selectors.jobs_selected_by_owner(user=request.user, job_ids=job_ids)
        if job.video
    ]
    if not jobs:
        messages.info(request, "None of the selected jobs has a video to download yet.")
        return redirect(back)

    response = StreamingHttpResponse(zip_stream(jobs), content_type="application/zip")
    today = timezone.localdate().isoformat()
    response["Content-Disposition"] = content_disposition_header(True, f"videostudio-{today}.zip")
    response["Cache-Control"] = "private, no-store"
    return response


def _still_running(count: int) -> str:
    return (
        f"{count} {'is' if count == 1 else 'are'} still in progress, and a job can be deleted "
        "once it has finished"
    )


def _gallery_url(request) -> str:
    """Where a bulk action goes back to: the gallery page it came from, with its filters and
    page, when `next` is such a path on this site; otherwise the first page."""
    url = request.POST.get("next", "")
    gallery = reverse("jobs:list")
    safe = url_has_allowed_host_and_scheme(
        url, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    )
    return url if safe and url.startswith(gallery) else gallery


# The zip ---------------------------------------------------------------------------------------


class _ZipSink(io.RawIOBase):
    """Where zipfile writes the archive. It cannot seek, so zipfile writes each entry's sizes and
    CRC after its data (a data descriptor) instead of going back to the header; the response
    takes what piled up after every chunk, so at most one chunk is held at a time."""

    def __init__(self):
        super().__init__()
        self._pending = bytearray()

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        self._pending += data
        return len(data)

    def take(self) -> bytes:
        data = bytes(self._pending)
        self._pending.clear()
        return data


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
    """Yield a zip of the jobs' videos, chunk by chunk. Entries are stored, not deflated: MP4 is
    compressed already, and storing costs no CPU. A video missing from storage is left out."""
    sink = _ZipSink()
    taken = set()
    with zipfile.ZipFile(sink, mode="w", compression=zipfile.ZIP_STORED) as archive:
        for job in jobs:
            try:
                size = job.video.size
                source = job.video.open("rb")
            except FileNotFoundError:
                logger.warning("job %s: video %s is missing from storage", job.pk, job.video.name)
                continue
            with source:
                created = timezone.localtime(job.created_at)
                info = zipfile.ZipInfo(
                    zip_entry_name(job, taken), date_time=created.timetuple()[:6]
                )
                info.compress_type = zipfile.ZIP_STORED
                info.external_attr = 0o644 << 16  # rw-r--r-- when unzipped on a Unix
                info.file_size = size  # lets zipfile choose ZIP64 up front for a file over 4 GB
                with archive.open(info, mode="w") as entry:
                    while chunk := source.read(ZIP_CHUNK_BYTES):
                        entry.write(chunk)
                        if data := sink.take():
                            yield data
    if data := sink.take():
        yield data
