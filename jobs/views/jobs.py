from http import HTTPStatus

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.humanize.templatetags.humanize import ordinal
from django.http import Http404, HttpResponse, HttpResponseGone
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import (
    require_GET,
    require_http_methods,
    require_POST,
    require_safe,
)
from django_htmx.http import HttpResponseStopPolling

from jobs import selectors, services
from jobs.models import Job
from jobs.numbers import parse_whole_number
from jobs.polling import fragment_version, poll_pass
from jobs.serving import file_response, image_content_type
from jobs.wording import duration_words, elapsed_words


def _waits_in_queue(job: Job) -> bool:
    """Queued and not waiting to retry: the only state with a place in the queue."""
    return job.status == Job.Status.QUEUED and job.not_before is None


def _status_context(request, job: Job) -> dict:
    """The status fragment, from the job's own row alone: the 2-s poll renders it with no query
    beyond the one that fetched the job. What needs other rows (the place in the queue, the
    typical wait) is added by _page_context, once per page, and by the queue's own slower poll.
    A live fragment's poll carries its version and the poll pass (jobs/polling.py).
    """
    context = {"job": job, **may_act(request, job)}
    if not job.is_terminal:
        context["version"] = fragment_version(job.status, job.attempt)
        context["poll_pass"] = poll_pass(request, job)
    if job.status == Job.Status.RUNNING and job.started_at is not None:
        elapsed = job.elapsed_seconds
        context["elapsed"] = elapsed_words(elapsed)
        # The timer's words for every second from now until the sweeper would fail the job, so
        # that job.js, as it ticks, shows the server's words and has none of its own.
        context["elapsed_from"] = elapsed
        context["elapsed_words"] = "|".join(
            elapsed_words(second)
            for second in range(elapsed, max(elapsed, settings.JOB_RUNNING_DEADLINE) + 1)
        )
        # ISO 8601 with milliseconds, which every browser's Date.parse reads. The server's clock
        # at render goes along, so job.js counts from it and a wrong client clock doesn't matter.
        context["started_at_iso"] = job.started_at.isoformat(timespec="milliseconds")
        context["server_now_iso"] = timezone.now().isoformat(timespec="milliseconds")
    return context


def may_act(request, job: Job) -> dict:
    """Which of the fragment's actions the person may take. Cancel, retry, re-run and share
    spend or act in the owner's name: theirs alone (staff and teammates look). Delete is the
    owner's too, and, once the job has finished, any manager's of its team: the one case that
    reads a row more, and only on a terminal team job that someone else opens. The star
    (keep from expiring) follows delete."""
    mine = job.owner_id == request.user.pk
    may_delete = mine
    if not mine and job.is_terminal and job.team_id is not None:
        membership = selectors.membership_for(user=request.user, team_id=job.team_id)
        may_delete = membership is not None and membership.is_manager
    # Taking a star off lets retention delete the video: the same power as deleting it.
    return {"may_act": mine, "may_delete": may_delete, "may_star": may_delete}


def _queue_place_context(job: Job) -> dict:
    """Its place in the owner's queue and in the studio's: two COUNTs on job_status_created."""
    place = selectors.queue_position(job=job)
    return {"queue_mine": ordinal(place.mine), "queue_studio": ordinal(place.studio)}


def _page_context(request, job: Job) -> dict:
    """The whole page: the fragment, its place in the queue, and the typical wait for its model.

    The typical wait (at most LATENCY_SAMPLE rows of the job_model_succeeded index) is read once
    per page for a live job, queued ones included: the poll's URL carries it, so the running
    fragment that a poll brings in later shows the bar without reading the history again.
    """
    context = _status_context(request, job)
    if _waits_in_queue(job):
        context.update(_queue_place_context(job))
    if not job.is_terminal:
        wait = selectors.typical_wait(model_id=job.model)
        if wait is not None:
            context.update(_typical_wait_context(job, max(1, round(wait.seconds))))
    return context


def _typical_wait_context(job: Job, typical: int) -> dict:
    return {
        "typical_wait": typical,
        "typical_wait_text": duration_words(typical),
        "past_typical_wait": job.elapsed_seconds >= typical,
    }


# The longest typical wait a poll may carry back: a day, in seconds.
MAX_CARRIED_WAIT = 24 * 3600


def _carried_wait_context(request, job: Job) -> dict:
    """The typical wait that the page was rendered with, carried back by the poll's URL
    (?wait=), so a fragment rendered by a poll shows the same bar without reading the history
    again. Only a whole number of seconds is taken; it is shown to the person who sent it, and
    nothing else depends on it."""
    wait = parse_whole_number(request.GET.get("wait"), minimum=1, maximum=MAX_CARRIED_WAIT)
    if wait is None:
        return {}
    return _typical_wait_context(job, wait)


@login_required
@require_GET
def job_detail(request, job_id):
    """The job page. With ?part=queue, only the queued job's place (the page polls it every 10 s,
    apart from the status): 204 once the job has left the queue, whose news the status poll
    brings."""
    job = selectors.job_get_for_user(user=request.user, job_id=job_id)
    if request.GET.get("part") == "queue":
        if not _waits_in_queue(job):
            return HttpResponse(status=HTTPStatus.NO_CONTENT)
        context = {"job": job, **may_act(request, job), **_queue_place_context(job)}
        return render(request, "jobs/job_detail.html#queue_place", context)
    return render(request, "jobs/job_detail.html", _page_context(request, job))


@login_required
@require_GET
def job_status(request, job_id):
    """The status fragment that the job page polls every 2 s. The poll's URL carries the version
    of the fragment on the page (?v=) and its poll pass (?p=). While the version is current the
    answer is 204 with no body, and htmx keeps the fragment; jobs.polling.UnchangedPollMiddleware
    gives most of those answers, for one query, before this view runs. A changed live job is
    rendered (200, with its new version, and the typical wait the URL carried); a terminal one
    answers 286, which stops the poll.
    """
    job = selectors.job_get_for_user(user=request.user, job_id=job_id)
    if job.is_terminal:
        context = _status_context(request, job)
        fragment = render_to_string("jobs/job_detail.html#status", context, request=request)
        return HttpResponseStopPolling(fragment)
    if request.GET.get("v") == fragment_version(job.status, job.attempt):
        return HttpResponse(status=HTTPStatus.NO_CONTENT)
    context = {**_status_context(request, job), **_carried_wait_context(request, job)}
    return render(request, "jobs/job_detail.html#status", context)


def expired_file_response(job: Job) -> HttpResponse:
    """410 for a file that retention deleted, saying when: a player or a script that held its
    URL gets a plain answer rather than a broken stream."""
    day = date_format(timezone.localtime(job.expired_at), "j F Y")
    return HttpResponseGone(
        f"This video expired on {day}: its files were deleted after the studio's retention "
        "period. Its prompt and cost stay on record.",
        content_type="text/plain; charset=utf-8",
    )


@login_required
@require_safe
def job_video(request, job_id):
    job = selectors.job_get_for_user(user=request.user, job_id=job_id)
    if job.expired_at is not None:
        return expired_file_response(job)
    if not job.video:
        raise Http404("This job has no video yet.")
    download_name = f"{job.pk}.mp4" if "download" in request.GET else None
    return file_response(request, job.video, content_type="video/mp4", download_name=download_name)


@login_required
@require_safe
def job_image(request, job_id):
    """The input image the owner uploaded, shown on the job page. Only PNG, JPEG and WebP are
    served, typed by the stored name's extension; anything else is 404, never served as is."""
    job = selectors.job_get_for_user(user=request.user, job_id=job_id)
    if job.expired_at is not None:
        return expired_file_response(job)
    content_type = image_content_type(job.input_image.name) if job.input_image else None
    if content_type is None:
        raise Http404("This job has no input image.")
    return file_response(request, job.input_image, content_type=content_type)


@login_required
@require_safe
def job_poster(request, job_id):
    """The poster frame (a JPEG made when the video was stored), for the player and the cards."""
    job = selectors.job_get_for_user(user=request.user, job_id=job_id)
    if job.expired_at is not None:
        return expired_file_response(job)
    if not job.poster:
        raise Http404("This job has no poster.")
    return file_response(request, job.poster, content_type="image/jpeg")


@login_required
@require_POST
def job_cancel(request, job_id):
    job = selectors.job_get_for_owner(user=request.user, job_id=job_id)
    if services.job_cancel(job=job):
        messages.success(request, "Canceled. Nothing was charged.")
    else:
        job.refresh_from_db()
        if job.is_terminal:
            messages.info(request, f"This job has already finished ({job.get_status_display()}).")
        else:
            messages.info(
                request,
                "Too late to cancel: the generation has started, and the provider cannot stop it.",
            )
    return redirect("jobs:detail", job_id=job.pk)


@login_required
@require_http_methods(["GET", "POST"])
def job_retry(request, job_id):
    """Retrying may cost money again, so it asks first, saying what the failed try may have cost."""
    job = selectors.job_get_for_owner(user=request.user, job_id=job_id)
    if job.status != Job.Status.FAILED:
        messages.info(request, "Only a failed job can be retried.")
        return redirect("jobs:detail", job_id=job.pk)
    if request.method == "POST":
        try:
            retry = services.job_retry(job=job)
        except services.SubmitRefusedError as exc:
            messages.error(request, str(exc))
            return redirect("jobs:detail", job_id=job.pk)
        return redirect("jobs:detail", job_id=retry.pk)
    return render(request, "jobs/job_confirm.html", {"job": job, "action": "retry"})


@login_required
@require_http_methods(["GET", "POST"])
def job_delete(request, job_id):
    """Its owner deletes a finished job; so may a manager of its team. Back to the gallery it
    was in: the team's for a team job (the manager's way in), My videos for a personal one."""
    job = selectors.job_get_for_delete(user=request.user, job_id=job_id)
    if not job.is_terminal:
        messages.info(request, "A job can be deleted once it has finished.")
        return redirect("jobs:detail", job_id=job.pk)
    if request.method == "POST":
        services.job_delete(job=job)
        messages.success(request, "Deleted the video and its prompt. Its cost stays on record.")
        if job.team_id is not None:
            return redirect("teams:videos", team_id=job.team_id)
        return redirect("jobs:list")
    return render(request, "jobs/job_confirm.html", {"job": job, "action": "delete"})


@login_required
@require_POST
def job_star(request, job_id):
    """Star a video so that retention keeps it (starred=1), or take the star off (starred=0).
    Its owner may, and a manager of its team: taking a star off lets the video be deleted, so it
    is the same power as deleting it (job_get_for_delete); other members look, and get 404.
    With htmx the answer is the star control alone; without, back to the page it came from."""
    job = selectors.job_get_for_delete(user=request.user, job_id=job_id)
    starred = request.POST.get("starred") == "1"
    kept = services.job_star_set(job=job, starred=starred)
    job = selectors.job_get_for_user(user=request.user, job_id=job_id)
    if request.htmx:
        context = {"job": job, "may_star": True, "star_id": request.POST.get("star_id", "")}
        return render(request, "jobs/_star.html", context)
    if not kept:
        messages.info(request, "Too late: this video has expired, and its files are deleted.")
    elif starred:
        messages.success(request, "Starred: this video is kept, whatever the retention.")
    else:
        messages.success(request, _unstarred_words(job))
    back = request.POST.get("next", "")
    if url_has_allowed_host_and_scheme(
        back, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return redirect(back)
    return redirect("jobs:detail", job_id=job.pk)


def _unstarred_words(job: Job) -> str:
    expires = job.expires_at
    if expires is None:
        return "Star taken off."
    day = date_format(timezone.localtime(expires), "j F Y")
    return f"Star taken off. This video will be deleted on {day}."
