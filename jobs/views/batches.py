"""Batches: the form and its preview (batch_create), Start (batch_start), the batch's page with
its progress (batch_detail, polled), retrying its failed rows (batch_retry) and its zip
(batch_download)."""

import csv
import hashlib
import io
import logging
import uuid
from http import HTTPStatus

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.http import content_disposition_header
from django.utils.text import slugify
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import HttpResponseStopPolling

from jobs import selectors, services
from jobs.batch_forms import (
    BatchForm,
    BatchInputError,
    batch_preview,
    planned_rows_from_json,
    preview_words,
)
from jobs.forms import PERSONAL, charge_places_for
from jobs.models import Job
from jobs.selectors.batches import (
    batch_get_for_owner,
    batch_get_for_user,
    batch_progress,
    batch_rows,
)
from jobs.services import batches as batch_services
from jobs.services.batches import batch_create_once
from jobs.services.groups import estimates_for
from jobs.zipstream import ZipStream

logger = logging.getLogger(__name__)

ALREADY_STARTED = "You had already pressed Start for this batch, so no second one was started."
ENTRY_SLUG_CHARS = 40


@login_required
@require_http_methods(["GET", "POST"])
def batch_create(request):
    """The batch form; a POST previews it (nothing is created): each row's estimate or why it
    would be refused, the total, and what would refuse the whole batch. The preview carries its
    rows to Start, which checks them all again."""
    places = charge_places_for(request.user)
    preview = None
    if request.method == "POST":
        team = places.team_or_default(request.POST.get("charge_to"))
        models = list(selectors.catalog_models(user=request.user, team=team))
        form = BatchForm(request.POST, request.FILES, models=models, places=places)
        if form.is_valid():
            team = form.cleaned_data.get("charge_to", form.team)
            preview = batch_preview(owner=request.user, team=team, rows=form.planned_rows())
    else:
        team = places.team_or_default(None)
        models = list(selectors.catalog_models(user=request.user, team=team))
        form = BatchForm(models=models, places=places)
    return render(request, "jobs/batch_form.html", _form_context(form, preview, team))


@login_required
@require_POST
def batch_start(request):
    """Start the previewed batch: all of its rows or none. Checked again first: a row or level
    that would refuse it now shows the preview again, with the reasons, and starts nothing."""
    places = charge_places_for(request.user)
    response_format = request.POST.get("response_format", "")
    try:
        rows = planned_rows_from_json(request.POST.get("rows", ""))
        team = places.team_for(request.POST.get("charge_to", PERSONAL))
        if response_format not in Job.ResponseFormat.values:
            raise BatchInputError("This batch could not be read. Preview it again, then start it.")
    except KeyError:
        messages.error(request, "You cannot charge videos there. Preview the batch again.")
        return redirect("jobs:batch_create")
    except BatchInputError as exc:
        messages.error(request, str(exc))
        return redirect("jobs:batch_create")
    preview = batch_preview(owner=request.user, team=team, rows=rows)
    problem = ""
    if preview.acceptable:
        try:
            token = uuid.UUID(request.POST.get("submit_token", "")).hex
        except ValueError:
            token = uuid.uuid4().hex  # a form without a token: an ordinary Start
        try:
            batch, created = batch_create_once(
                owner=request.user,
                team=team,
                rows=[
                    {key: getattr(row, key) for key in ("prompt", "model", "seconds", "size")}
                    for row in preview.rows
                ],
                response_format=response_format,
                key=f"batch:{token}",
            )
        except services.SubmitKeyReusedError as exc:
            problem = str(exc)
        except services.SubmitRefusedError as exc:
            problem = str(exc)
        else:
            if not created:
                messages.info(request, ALREADY_STARTED)
            return redirect("jobs:batch_detail", batch_id=batch.pk)
    models = list(selectors.catalog_models(user=request.user, team=team))
    initial = {"charge_to": places.value_for(team), "response_format": response_format}
    form = BatchForm(models=models, places=places, initial=initial)
    if problem:
        preview.problems.append(problem)
    context = _form_context(form, preview, team)
    context["not_started"] = True
    return render(request, "jobs/batch_form.html", context)


def _form_context(form, preview, team) -> dict:
    context = {"form": form, "preview": preview, "catalog_empty": not form.catalog}
    if preview is not None:
        context |= {
            "preview_words": preview_words(preview),
            "rows_json": preview.as_json(),
            "charge_to": PERSONAL if team is None else str(team.pk),
            "response_format": form.cleaned_data.get("response_format")
            if form.is_bound
            else form.initial.get("response_format", Job.ResponseFormat.URL),
            "submit_token": uuid.uuid4().hex,
        }
    return context


def _batch_context(request, batch) -> dict:
    rows = batch_rows(batch=batch)
    progress = batch_progress(rows)
    mine = batch.owner_id == request.user.pk
    return {
        "batch": batch,
        "rows": rows,
        "progress": progress,
        "may_act": mine,
        "may_retry": mine and progress.failed > 0,
        "version": _version(rows),
    }


def _version(rows) -> str:
    """What the progress fragment shows, in a few characters: each row's latest attempt and its
    state. The poll sends it back, and an unchanged batch gets an empty 204."""
    digest = hashlib.sha256()
    for row in rows:
        latest = row.latest
        digest.update(f"{latest.pk}:{latest.status}:{latest.attempt};".encode())
    return digest.hexdigest()[:16]


@login_required
@require_GET
def batch_detail(request, batch_id):
    """The batch's page: its progress (done, running, queued, failed), its cost so far, each
    row's latest attempt, Retry for the failed ones and the zip. With ?part=progress, the
    fragment alone, polled every 2 s while anything is queued or running: 204 while nothing
    changed (?v=), and 286 (stop polling) once every row has finished."""
    batch = batch_get_for_user(user=request.user, batch_id=batch_id)
    context = _batch_context(request, batch)
    if request.GET.get("part") != "progress":
        return render(request, "jobs/batch_detail.html", context)
    if context["progress"].finished:
        fragment = render_to_string("jobs/batch_detail.html#progress", context, request=request)
        return HttpResponseStopPolling(fragment)
    if request.GET.get("v") == context["version"]:
        return HttpResponse(status=HTTPStatus.NO_CONTENT)
    return render(request, "jobs/batch_detail.html#progress", context)


@login_required
@require_http_methods(["GET", "POST"])
def batch_retry(request, batch_id):
    """Retry the batch's failed rows: new attempts that may be charged again, so it asks first,
    listing them, what they could cost at most and which failed tries may have been charged.
    The POST names the jobs the person saw; only those are retried, all of them or none."""
    batch = batch_get_for_owner(user=request.user, batch_id=batch_id)
    failed = [row for row in batch_rows(batch=batch) if row.may_retry]
    if request.method == "POST":
        try:
            batch_services.batch_retry(
                batch=batch, job_ids=_posted_ids(request.POST.getlist("job"))
            )
        except services.SubmitRefusedError as exc:
            messages.error(request, str(exc))
        else:
            messages.success(request, "Retrying: the new attempts are queued.")
        return redirect("jobs:batch_detail", batch_id=batch.pk)
    if not failed:
        messages.info(request, "This batch has no failed video to retry.")
        return redirect("jobs:batch_detail", batch_id=batch.pk)
    estimates = estimates_for([row.latest.model for row in failed])
    charged = [row for row in failed if row.latest.outcome_unknown]
    context = {
        "batch": batch,
        "failed": failed,
        "total": sum(estimates),
        "maybe_charged": charged,
        "maybe_charged_total": sum(row.latest.possible_cost or 0 for row in charged),
    }
    return render(request, "jobs/batch_confirm_retry.html", context)


def _posted_ids(values) -> list[uuid.UUID]:
    ids = []
    for value in values:
        try:
            ids.append(uuid.UUID(value))
        except ValueError:
            continue
    return ids


@login_required
@require_GET
def batch_download(request, batch_id):
    """The batch's finished videos as one .zip, streamed as it is written: each row's video,
    named by its row and prompt, and batch.csv listing every row with its status and cost."""
    batch = batch_get_for_user(user=request.user, batch_id=batch_id)
    rows = batch_rows(batch=batch)
    with_video = [row for row in rows if row.latest.video and row.latest.deleted_at is None]
    if not with_video:
        messages.info(request, "None of this batch's videos is ready to download yet.")
        return redirect("jobs:batch_detail", batch_id=batch.pk)
    response = StreamingHttpResponse(_zip_chunks(rows), content_type="application/zip")
    day = timezone.localtime(batch.created_at).date().isoformat()
    response["Content-Disposition"] = content_disposition_header(
        True, f"videostudio-batch-{day}-{batch.pk.hex[:8]}.zip"
    )
    response["Cache-Control"] = "private, no-store"
    return response


def entry_name(row, width: int) -> str:
    """`007-a-heron-lands-on-a-pier.mp4`: sorts as the batch does, and says what it shows."""
    slug = slugify(row.latest.prompt)
    if len(slug) > ENTRY_SLUG_CHARS:
        slug = slug[: ENTRY_SLUG_CHARS + 1].rsplit("-", 1)[0][:ENTRY_SLUG_CHARS]
    slug = slug.strip("-") or "video"
    return f"{row.number:0{width}d}-{slug}.mp4"


def _zip_chunks(rows):
    stream = ZipStream()
    width = max(3, len(str(len(rows))))
    files = {}
    for row in rows:
        job = row.latest
        if not job.video or job.deleted_at is not None:
            continue
        name = entry_name(row, width)
        try:
            yield from stream.add_stored_file(name, job.video, when=job.finished_at)
        except FileNotFoundError:
            logger.warning("job %s: video %s is missing from storage", job.pk, job.video.name)
            continue
        files[row.position] = name
    yield from stream.add_text("batch.csv", _manifest(rows, files))
    yield from stream.close()


def _manifest(rows, files):
    """batch.csv: each row's prompt, model, seconds, size, status, cost and file in the zip."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["row", "prompt", "model", "seconds", "size", "status", "cost", "file"])
    for row in rows:
        job = row.latest
        cost = "" if job.cost is None else f"{job.cost:.4f}"
        writer.writerow(
            [
                row.number,
                _cell(job.prompt),
                job.model,
                job.seconds,
                job.size,
                job.status,
                cost,
                files.get(row.position, ""),
            ]
        )
    yield out.getvalue()


def _cell(text: str) -> str:
    """A spreadsheet must never read a prompt as a formula (CSV injection), as in the review's
    export."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text
