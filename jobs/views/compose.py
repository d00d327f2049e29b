"""The generate form around JobForm: the page and its submit (job_create), the fields that follow
the chosen model, its estimate and usual wait, prefilling from an earlier job (?from, ?frame), and
the last frame of a video to use as the next one's input image."""

import os
import subprocess
import uuid
from dataclasses import dataclass

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.files.base import ContentFile
from django.http import Http404, HttpResponse, HttpResponseNotFound
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods

from jobs import selectors, services
from jobs.forms import ChargePlaces, EarlierImage, JobForm, charge_places_for
from jobs.frames import FrameError, frame_image
from jobs.models import Job, VideoModel
from jobs.serving import CACHE_CONTROL
from jobs.wording import budget_words, first_over_budget_words, price_words, wait_words

MODEL_NOT_OFFERED = "You cannot choose this model. Reload the page to see the models you can."
PLACE_NOT_OFFERED = (
    "You cannot charge videos there. Reload the page to see the places you can charge."
)
NOWHERE_TO_CHARGE = (
    "This studio charges every video to a team, and you are not in one yet. Ask an admin to add "
    "you to a team; then you can generate videos here."
)
# What the options view reads from the model select's request (see forms.OPTIONS_INCLUDE).
CARRIED_FIELDS = ("model", "seconds", "size", "image_from_job", "frame_from_job", "charge_to")
# The form's token (a hidden field; one per rendering of the form) and the fields that make two
# submits of it the same request (_create_once).
SUBMIT_TOKEN_FIELD = "submit_token"  # noqa: S105 - a field name, not a secret
SUBMITTED_FIELDS = (
    "charge_to",
    "prompt",
    "model",
    "size",
    "seconds",
    "response_format",
    "image_from_job",
    "frame_from_job",
    "use_earlier_image",
)
ALREADY_SUBMITTED = (
    "You had already pressed Generate for this video, so no second one was started: here it is."
)


class EarlierImageUnreadableError(Exception):
    """The earlier job's image, or its video's last frame, could not be read at submit."""


@dataclass(frozen=True)
class ModelFacts:
    """What the form says beside the chosen model."""

    price: str  # "about $0.30, at most $0.50"
    # Each level the job would be checked against, with what is left and when it resets:
    # "Design team: $4.20 left this month, resets in 3 days, on 1 Jan."
    budgets: tuple[str, ...]
    warning: str  # set when the model's top price is more than a level has left (names it)
    wait: str  # "Usually ready in about 1 min 10 s (median of the last 12 here)."


@login_required
@require_http_methods(["GET", "POST"])
def job_create(request):
    """The generate form. A GET may prefill it from an earlier job (prefilled_form); a
    POST is checked for the place it is charged to and the model it names (one allowed
    there), and may reuse an earlier job's image."""
    places = charge_places_for(request.user)
    note = ""
    if request.method == "POST":
        team = places.team_or_default(request.POST.get("charge_to"))
        models = list(selectors.catalog_models(user=request.user, team=team))
        form = JobForm(
            request.POST, request.FILES, models=models, owner=request.user, places=places
        )
        if form.is_valid():
            data = form.cleaned_data
            try:
                image = data["image"] or earlier_image_file(form.image_to_reuse)
                job, created = _create_once(
                    request,
                    owner=request.user,
                    team=data.get("charge_to", form.team),
                    prompt=data["prompt"].strip(),
                    model=data["model"].id,
                    size=data["size"],
                    seconds=data["seconds"],
                    response_format=data["response_format"],
                    image=image,
                )
            except EarlierImageUnreadableError as exc:
                form.add_error("image", str(exc))
            except services.ModelUnavailableError as exc:
                form.add_error("model", str(exc))
            except services.ChargeRefusedError as exc:
                form.add_error("charge_to" if "charge_to" in form.fields else None, str(exc))
            except services.SubmitRefusedError as exc:
                form.add_error(None, str(exc))
            else:
                if not created:
                    messages.info(request, ALREADY_SUBMITTED)
                return redirect("jobs:detail", job_id=job.pk)
    else:
        form, models, note = prefilled_form(request, places)
    context = form_context(request, form, catalog_empty=not models, model_note=note)
    return render(request, "jobs/job_form.html", context)


@login_required
@require_GET
def job_create_options(request):
    """The form's fields that follow the model (seconds, size, the image field), and out of band
    its estimate, budgets and usual wait: what the model select fetches when it changes. Seconds
    and size carry over when the new model takes them.

    The Charge to select fetches it too (refresh_models): then the model select comes out of band
    as well, with the models allowed where the job is now charged, keeping the chosen model
    where it is allowed there and falling back to the place's default where it is not."""
    places = charge_places_for(request.user)
    charge_to = request.GET.get("charge_to")
    if charge_to is None:
        team = places.team_or_default(None)
    else:
        try:
            team = places.team_for(charge_to)
        except KeyError:
            return HttpResponseNotFound(PLACE_NOT_OFFERED, content_type="text/plain; charset=utf-8")
    models = list(selectors.catalog_models(user=request.user, team=team))
    refresh_models = request.GET.get("refresh_models") == "true"
    initial = {name: request.GET[name] for name in CARRIED_FIELDS if name in request.GET}
    if request.GET.get("model") not in {model.id for model in models}:
        if not refresh_models:
            return HttpResponseNotFound(MODEL_NOT_OFFERED, content_type="text/plain; charset=utf-8")
        initial.pop("model", None)  # not allowed here: the place's default model instead
    initial["use_earlier_image"] = "use_earlier_image" in request.GET
    form = JobForm(models=models, owner=request.user, initial=initial, places=places)
    context = form_context(request, form, facts_oob=True, model_oob=refresh_models)
    return render(request, "jobs/_form_options.html", context)


@login_required
@require_GET
def job_last_frame(request, job_id):
    """The last frame of the owner's finished video, as a lossless PNG: the preview on the form
    when that frame is to start the next video. Made afresh each time; ffmpeg reads only the
    video's last second, and the browser keeps the answer for an hour."""
    job = selectors.job_get_for_owner(user=request.user, job_id=job_id)
    if job.status != Job.Status.SUCCEEDED or not job.video:
        raise Http404("This job has no finished video.")
    try:
        png = frame_image(job.video, last=True, image_format="png")
    except (FrameError, OSError, subprocess.SubprocessError):
        raise Http404("The last frame of this video could not be read.") from None
    response = HttpResponse(png, content_type="image/png")
    response["Cache-Control"] = CACHE_CONTROL
    response["X-Content-Type-Options"] = "nosniff"
    return response


def prefilled_form(request, places: ChargePlaces) -> tuple[JobForm, list[VideoModel], str]:
    """(the form for a GET of /jobs/new/, the models it offers, a note for the model field).
    Empty, or prefilled from an earlier job of the same person (anyone else's is 404), charged
    where that job was (if the person may still charge there):

    - ?from=<id>: its prompt, model, size, seconds and response format, and its input image
      offered again; &edit=1 also puts the cursor in the prompt. A model no longer offered
      gets the note, and the rest is prefilled.
    - ?frame=<id>: a finished video's last frame as the input image, with a model that takes
      one: the video's own if it can, else the cheapest offered.
    """
    initial, note = {}, ""
    earlier = [
        _owned_job_or_404(request.user, request.GET[name])
        for name in ("from", "frame")
        if name in request.GET
    ]
    if earlier and places.offered:
        initial["charge_to"] = places.value_for(earlier[0].team)
    team = places.team_or_default(initial.get("charge_to", places.initial))
    models = list(selectors.catalog_models(user=request.user, team=team))
    catalog = {model.id: model for model in models}
    if "from" in request.GET:
        job = earlier[0]
        initial.update(
            prompt=job.prompt,
            model=job.model,
            size=job.size,
            seconds=job.seconds,
            response_format=job.response_format,
        )
        if job.input_image:
            initial.update(image_from_job=job.pk, use_earlier_image=True)
        if job.model not in catalog:
            note = (
                f"{job.model}, the model of your earlier video, is no longer offered. "
                "Choose another; everything else is as you had it."
            )
    if "frame" in request.GET:
        job = earlier[-1]
        if job.status != Job.Status.SUCCEEDED or not job.video:
            raise Http404("This job has no finished video.")
        candidates = [catalog.get(initial.get("model")), catalog.get(job.model), *models]
        model = next((m for m in candidates if m is not None and m.accepts_image), None)
        if model is None:
            note = (
                "None of the models you can choose takes an input image, so the frame is not used."
            )
        else:
            initial.update(
                model=model.id, frame_from_job=job.pk, image_from_job=None, use_earlier_image=True
            )
    form = JobForm(models=models, owner=request.user, initial=initial, places=places)
    if request.GET.get("edit"):
        form.fields["prompt"].widget.attrs["autofocus"] = True
    return form, models, note


def form_context(request, form: JobForm, **extra) -> dict:
    """The form page's context. Each rendering of the form carries a new submit token."""
    model = form.chosen_model
    facts = None
    if model is not None:
        facts = model_facts(user=request.user, model=model, team=form.team)
    return {
        "form": form,
        "facts": facts,
        "nowhere_to_charge": NOWHERE_TO_CHARGE if form.places and form.places.nowhere else "",
        "submit_token": uuid.uuid4().hex,
        **extra,
    }


def _create_once(request, **job_fields) -> tuple[Job, bool]:
    """services.job_create_once under the form's submit token, so that pressing Generate twice,
    or sending the same form again after an error, lands on the first job: the key is the
    token and what was submitted, and the same token with other fields (the form edited after
    Back) is a new video. A form without a token (a page rendered before tokens) is an ordinary
    submit: (job, True)."""
    try:
        token = uuid.UUID(request.POST.get(SUBMIT_TOKEN_FIELD, "")).hex
    except ValueError:
        return services.job_create(**job_fields), True
    posted = {name: request.POST.getlist(name) for name in SUBMITTED_FIELDS}
    fingerprint = services.request_fingerprint(posted, request.FILES.getlist("image"))
    return services.job_create_once(
        key=f"form:{token}:{fingerprint}", fingerprint=fingerprint, **job_fields
    )


def model_facts(*, user, model: VideoModel, team=None) -> ModelFacts:
    """The estimate, each budget level that applies where the job is charged (`team`, None for
    personal) with what is left and when it resets, a warning naming the first level the
    model's top price does not fit, and the usual wait."""
    statuses = selectors.budget_statuses_for_charge(user=user, team=team)
    lines = tuple(budget_words(status) for status in statuses)
    if not lines:
        lines = (f"No budget limit applies to the {team.label}.",)
    typical = selectors.typical_wait(model_id=model.id)
    median, sample = (typical.seconds, typical.sample) if typical else (None, 0)
    return ModelFacts(
        price=price_words(model),
        budgets=lines,
        warning=first_over_budget_words(model, statuses),
        wait=wait_words(median, sample),
    )


def earlier_image_file(earlier: EarlierImage | None) -> ContentFile | None:
    """The bytes to send as the new job's input image: a copy of the earlier job's input image,
    or its video's last frame extracted again (input.png). None when there is none."""
    if earlier is None:
        return None
    try:
        if earlier.is_frame:
            png = frame_image(earlier.job.video, last=True, image_format="png")
            return ContentFile(png, name="input.png")
        stored = earlier.job.input_image
        extension = os.path.splitext(stored.name)[1].lower() or ".png"
        with stored.open("rb") as original:
            return ContentFile(original.read(), name=f"input{extension}")
    except (FrameError, OSError, subprocess.SubprocessError):
        raise EarlierImageUnreadableError(
            f"We could not read {earlier.description}. Choose an image, or none."
        ) from None


def _owned_job_or_404(user, raw: str) -> Job:
    try:
        job_id = uuid.UUID(raw)
    except ValueError:
        raise Http404("No such job.") from None
    return selectors.job_get_for_owner(user=user, job_id=job_id)
