"""Share links: the owner turns one on or off; anyone holding it watches the video.

The public views need no login. The token is the only key, so every answer that carries it in
its URL tells the browser not to send that URL on (no-referrer) and search engines not to list
it, and nothing is cached where a revoked link could outlive its revocation.
"""

from functools import wraps

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST, require_safe

from jobs import selectors, services
from jobs.serving import file_response

# Revalidated on every use, so a revoked link stops playing at once even where it was cached.
SHARED_CACHE_CONTROL = "private, no-cache"


@login_required
@require_POST
def job_share(request, job_id):
    job = selectors.job_get_for_owner(user=request.user, job_id=job_id)
    try:
        services.share_create(job=job)
    except services.NotShareableError as exc:
        messages.info(request, str(exc))
    else:
        messages.success(request, "Share link ready. Anyone with it can watch this video.")
    return redirect("jobs:detail", job_id=job.pk)


@login_required
@require_POST
def job_unshare(request, job_id):
    job = selectors.job_get_for_owner(user=request.user, job_id=job_id)
    if services.share_revoke(job=job):
        messages.success(request, "Stopped sharing. The link no longer works.")
    return redirect("jobs:detail", job_id=job.pk)


def shared_headers(view):
    @wraps(view)
    def wrapper(request, *args, **kwargs):
        response = view(request, *args, **kwargs)
        response["Referrer-Policy"] = "no-referrer"
        response["X-Robots-Tag"] = "noindex, nofollow"
        if "no-store" not in response.get("Cache-Control", ""):  # a presigned redirect (S3)
            response["Cache-Control"] = SHARED_CACHE_CONTROL
        return response

    return wrapper


@require_safe
@shared_headers
def shared(request, token):
    """The public page: the video, its prompt and its model. Nothing else of the owner's."""
    job = selectors.job_get_shared(token=token)
    return render(request, "jobs/shared.html", {"job": job, "token": token})


@require_safe
@shared_headers
def shared_video(request, token):
    job = selectors.job_get_shared(token=token)
    if not job.video:
        raise Http404("This video is missing.")
    return file_response(request, job.video, content_type="video/mp4")


@require_safe
@shared_headers
def shared_poster(request, token):
    job = selectors.job_get_shared(token=token)
    if not job.poster:
        raise Http404("This video has no poster.")
    return file_response(request, job.poster, content_type="image/jpeg")


@require_safe
@shared_headers
def shared_group(request, token):
    """The public page of a shared comparison or variations: its finished videos side by side,
    played together, with their prompt and models. Nothing of the owner's (no name, no cost)."""
    group = selectors.group_get_shared(token=token)
    jobs = list(selectors.group_shared_jobs(group=group))
    context = {"group": group, "jobs": jobs, "token": token}
    return render(request, "jobs/shared_group.html", context)


@require_safe
@shared_headers
def shared_group_video(request, token, job_id):
    group = selectors.group_get_shared(token=token)
    job = get_object_or_404(selectors.group_shared_jobs(group=group), pk=job_id)
    return file_response(request, job.video, content_type="video/mp4")


@require_safe
@shared_headers
def shared_group_poster(request, token, job_id):
    group = selectors.group_get_shared(token=token)
    job = get_object_or_404(selectors.group_shared_jobs(group=group), pk=job_id)
    if not job.poster:
        raise Http404("This video has no poster.")
    return file_response(request, job.poster, content_type="image/jpeg")
