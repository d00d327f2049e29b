"""The API's views: thin, as the pages' are. Each one reads the token (auth.authenticate), calls a
selector or a service, and answers in the provider's shapes (results.py, errors.py).

    POST /v1/openai/videos/generations   make a video: wait for it, or ?async=true
    GET  /v1/jobs/{id}                   a job's status, and its result once done
    GET  /v1/jobs/{id}/content           the video itself (Range requests answered)
    GET  /v1/models                      the catalog this token's owner may choose from
    GET  /v1/openapi.json                the description of all of the above (no token)
"""

import functools
import uuid

from django.core.exceptions import NON_FIELD_ERRORS
from django.http import Http404, JsonResponse, StreamingHttpResponse
from django.views.decorators.csrf import csrf_exempt

from jobs import selectors, services, webhooks
from jobs.forms import JobForm
from jobs.models import Job, VideoModel
from jobs.numbers import parse_whole_number
from jobs.serving import file_response

from . import errors, inputs, openapi, results
from .auth import authenticate
from .errors import ApiError, invalid
from .waiting import WaitingBody, wait_slots

# How long a script polling a live job should wait before asking again.
POLL_AFTER_SECONDS = 2
ASYNC_PREFERENCE = "respond-async"
IDEMPOTENCY_HEADER = "Idempotency-Key"
IDEMPOTENCY_KEY_MAX = 255
# Set on the answer to a repeated Idempotency-Key: the job is the first request's.
REPLAYED_HEADER = "Idempotent-Replayed"


def api_view(*methods: str, authenticated: bool = True):
    """CSRF-exempt (a token, never a cookie, says who is asking), with the method checked first
    (405 naming the allowed ones), then the token, and every ApiError answered in the
    provider's shape. An authenticated view receives the token after the request."""

    def decorate(view):
        @csrf_exempt
        @functools.wraps(view)
        def wrapper(request, *args, **kwargs):
            if request.method not in methods:
                allowed = ", ".join(methods)
                return ApiError(
                    405,
                    f"{request.method} is not allowed here; use {allowed}.",
                    errors.INVALID_REQUEST,
                    code="method_not_allowed",
                    headers={"Allow": allowed},
                ).response()
            try:
                if authenticated:
                    return view(request, authenticate(request), *args, **kwargs)
                return view(request, *args, **kwargs)
            except ApiError as exc:
                return exc.response()

        return wrapper

    return decorate


@api_view("POST")
def generations(request, token):
    """The provider's generation call, run as a studio job.

    1. Read the request as the provider does (inputs.py), with the studio's `webhook_url`
       (checked in step 2, with the token's default when it names none). With an Idempotency-Key that this
       person sent for the same request within a day, answer with that request's job (step 5)
       and make nothing; for another request, 422.
    2. Check it with JobForm, the web form's own rules, for the models the owner may choose
       where the token charges (its team, or the owner's personal space); check the webhook
       URL as image URLs are checked (public addresses only).
    3. Unless asked to answer at once (?async=true or Prefer: respond-async), take one of this
       process's wait slots, or refuse with 429 before making anything.
    4. services.job_create (job_create_once with a key), charged where the token charges and
       with the token, so its own budget applies too: the budget holds, the caps and the queue,
       exactly as for the form.
    5. Answer 202 with the job's id and Location, or stream the provider's answer as the job
       runs (waiting.WaitingBody).
    """
    user = token.user
    respond_async = _wants_async(request)
    key = _idempotency_key(request)
    generation = inputs.read_generation(request)
    fingerprint = None
    if key is not None:
        asked = generation.data
        if generation.webhook_url:  # the same key with another webhook is another request
            asked = {**asked, inputs.WEBHOOK_FIELD: generation.webhook_url}
        fingerprint = services.request_fingerprint(asked, generation.images)
        earlier = _earlier_job(user, key, fingerprint)
        if earlier is not None:
            _take_wait_slot(respond_async)
            return _job_answer(request, earlier, respond_async=respond_async, replayed=True)
    # The models allowed where the token charges (its team's list, for a team's token).
    models = list(selectors.catalog_models(user=user, team=token.team))
    if generation.model not in {model.id for model in models}:
        raise errors.model_not_found(generation.model)
    image = generation.first_image()
    form = JobForm(generation.data, {"image": image} if image else {}, models=models, owner=user)
    if not form.is_valid():
        raise _form_error(form)
    webhook_url = _webhook_url(generation, token)
    _take_wait_slot(respond_async)
    data = form.cleaned_data
    fields = {
        "owner": user,
        "team": token.team,
        "token": token,
        "prompt": data["prompt"].strip(),
        "model": data["model"].id,
        "size": data["size"],
        "seconds": data["seconds"],
        "response_format": data["response_format"],
        "image": data["image"],
        "webhook_url": webhook_url,
        "api_base_url": request.build_absolute_uri("/").rstrip("/"),
    }
    try:
        if key is None:
            job, created = services.job_create(**fields), True
        else:
            job, created = services.job_create_once(key=key, fingerprint=fingerprint, **fields)
    except services.SubmitRefusedError as exc:
        if not respond_async:
            wait_slots.give_back()
        raise errors.submit_refused(exc) from None
    except BaseException:
        if not respond_async:
            wait_slots.give_back()
        raise
    return _job_answer(request, job, respond_async=respond_async, replayed=not created)


def _webhook_url(generation, token) -> str:
    """Where the job's webhook goes: the request's `webhook_url`, else the token's default, else
    nowhere (""). Checked now as image URLs are (public addresses only), and again at every
    delivery, since DNS may change; a 400 names the field."""
    url = generation.webhook_url or token.webhook_url
    if not url:
        return ""
    source = "'webhook_url'" if generation.webhook_url else "This token's default webhook URL"
    try:
        url = webhooks.url_check(url)
    except webhooks.WebhookUrlError as exc:
        raise invalid(f"Invalid {source}: {exc}.", param=inputs.WEBHOOK_FIELD) from None
    if not token.webhook_secret:
        raise invalid(
            "This token has no webhook signing secret yet (it was made before webhooks). Open "
            "the studio's API tokens page and press Rotate signing secret for it first.",
            param=inputs.WEBHOOK_FIELD,
        )
    return url


def _take_wait_slot(respond_async: bool) -> None:
    if not respond_async and not wait_slots.take():
        raise errors.rate_limited(
            "The studio is already holding as many waiting requests as it allows. Send this "
            "request with ?async=true (or the header Prefer: respond-async) and fetch the "
            "result from GET /v1/jobs/{id}.",
            code="too_many_waits",
        )


def _job_answer(request, job: Job, *, respond_async: bool, replayed: bool):
    """202 with the job's summary and Location, or the waiting answer (which gives back the
    wait slot when it ends). A repeat of an Idempotency-Key says so in a header."""
    if respond_async:
        response = JsonResponse(results.summary(job), status=202)
        response["Location"] = results.status_url(request, job)
        response["Preference-Applied"] = ASYNC_PREFERENCE
    else:
        response = StreamingHttpResponse(WaitingBody(request, job), content_type="application/json")
    if replayed:
        response[REPLAYED_HEADER] = "true"
    return response


def _idempotency_key(request) -> str | None:
    """The Idempotency-Key header as the key this person's submits are remembered by, or None.
    Like Stripe's: at most 255 visible ASCII characters (a UUID is the usual choice)."""
    value = request.headers.get(IDEMPOTENCY_HEADER)
    if value is None:
        return None
    if not 1 <= len(value) <= IDEMPOTENCY_KEY_MAX or not all(" " < c <= "~" for c in value):
        raise invalid(
            f"'{IDEMPOTENCY_HEADER}' must be 1 to {IDEMPOTENCY_KEY_MAX} visible ASCII characters, "
            "such as a UUID",
            param=IDEMPOTENCY_HEADER,
            code="invalid_idempotency_key",
        )
    return f"api:{value}"


def _earlier_job(user, key: str, fingerprint: str) -> Job | None:
    try:
        return services.submitted_job(owner=user, key=key, fingerprint=fingerprint)
    except services.SubmitKeyReusedError as exc:
        raise ApiError(
            422,
            str(exc),
            errors.INVALID_REQUEST,
            param=IDEMPOTENCY_HEADER,
            code="idempotency_key_reused",
        ) from None


@api_view("GET")
def job_detail(request, token, job_id):
    """A job's status; once it has succeeded, the same result as a synchronous answer."""
    job = _visible_job(token, job_id)
    if (
        job.status == Job.Status.SUCCEEDED
        and job.response_format != Job.ResponseFormat.URL
        and job.expired_at is None
    ):
        extra = {key: value for key, value in results.summary(job).items() if key != "created"}
        chunks = results.success_chunks(request, job, extra=extra)
        return StreamingHttpResponse(chunks, content_type="application/json")
    response = JsonResponse(results.job_body(job, absolute=request.build_absolute_uri))
    if not job.is_terminal:
        response["Retry-After"] = str(POLL_AFTER_SECONDS)
    return response


@api_view("GET", "HEAD")
def job_content(request, token, job_id):
    """The video, for whoever may see the job, as the pages serve it (Range requests, nginx or
    a signed S3 URL where configured). ?download names the file."""
    job = _visible_job(token, job_id)
    if job.expired_at is not None:
        error = results.expired(job)["error"]
        raise ApiError(410, error["message"], errors.NOT_FOUND, code="expired")
    if not job.video:
        raise ApiError(404, "This job has no video yet.", errors.NOT_FOUND, code="no_video")
    download_name = f"{job.pk}.mp4" if "download" in request.GET else None
    try:
        return file_response(
            request, job.video, content_type="video/mp4", download_name=download_name
        )
    except Http404:
        raise ApiError(
            404, "The video is missing from storage.", errors.NOT_FOUND, code="no_video"
        ) from None


@api_view("GET")
def models(request, token):
    """The catalog in the provider's shape (an object keyed by model id), with the models the
    token's owner may choose where the token charges, as the form offers them: hidden ones for
    nobody, staff-only ones for staff, and for a team's token only the models the team may use.
    The provider's filters work: type, provider, free, name, sort, limit."""
    query = request.GET
    chosen = list(selectors.catalog_models(user=token.user, team=token.team))
    if query.get("type", "video") != "video":
        chosen = []
    if provider := query.get("provider", "").lower():
        chosen = [model for model in chosen if provider in _provider_of(model).lower()]
    free = query.get("free")
    if free is not None:
        if free not in ("true", "false"):
            raise invalid("'free' must be 'true' or 'false'", param="free")
        chosen = [model for model in chosen if model.is_free == (free == "true")]
    if name := query.get("name", "").lower():
        chosen = [model for model in chosen if name in model.id.lower()]
    sort = query.get("sort")
    if sort is not None:
        if sort not in ("name", "provider", "price", "date"):
            raise invalid("'sort' must be one of name, provider, price or date", param="sort")
        chosen.sort(key=SORT_KEYS[sort])
    limit = query.get("limit")
    if limit is not None:
        number = parse_whole_number(limit)
        if number is None:
            raise invalid("'limit' must be a whole number", param="limit")
        chosen = chosen[:number]
    return JsonResponse({model.id: _model_entry(model) for model in chosen})


@api_view("GET", authenticated=False)
def openapi_document(request):
    """The OpenAPI description, with this studio's own address as its server."""
    document = openapi.document(server_url=request.build_absolute_uri("/").rstrip("/"))
    return JsonResponse(document)


@api_view("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", authenticated=False)
def not_found(request, path=""):
    """Any other path under /v1/: 404 in the provider's shape, not an HTML page."""
    raise ApiError(404, f"Cannot {request.method} {request.path}", errors.NOT_FOUND)


def _wants_async(request) -> bool:
    value = request.GET.get("async")
    if value is not None and value not in ("true", "false"):
        raise invalid("'async' must be 'true' or 'false'", param="async")
    if value is not None:
        return value == "true"
    preferences = request.headers.get("Prefer", "").lower().split(",")
    return any(preference.split(";")[0].strip() == ASYNC_PREFERENCE for preference in preferences)


def _form_error(form) -> ApiError:
    """The form's first error, naming the field, as the provider's 400."""
    for name in [*form.fields, NON_FIELD_ERRORS]:
        if name in form.errors:
            message = form.errors[name][0]
            if name == NON_FIELD_ERRORS:
                return invalid(message)
            return invalid(f"Invalid '{name}': {message}", param=name)
    return invalid("The request is not valid.")


def _visible_job(token, job_id) -> Job:
    """A job the token's user may see (selectors.visible_to: their own personal jobs, and the
    jobs of the teams they are in now, teammates' too), or 404. Staff tokens act only as their
    user: nobody else's personal job is there for them."""
    try:
        job_id = uuid.UUID(str(job_id))
    except ValueError:
        raise errors.job_not_found() from None
    try:
        return selectors.job_get_for_user(user=token.user, job_id=job_id, staff_sees_all=False)
    except Http404:
        raise errors.job_not_found() from None


def _provider_of(model: VideoModel) -> str:
    """The catalog keeps no upstream provider, so the id's first part stands in for it."""
    return model.id.split("/", 1)[0]


SORT_KEYS = {
    "name": lambda model: model.id.lower(),
    "provider": lambda model: (_provider_of(model).lower(), model.id.lower()),
    "price": lambda model: model.price_average,
    # The catalog keeps no release dates: the order stays by id.
    "date": lambda model: model.id.lower(),
}


def _model_entry(model: VideoModel) -> dict:
    if model.pricing == VideoModel.Pricing.FIXED:
        pricing = {"type": "fixed", "value": results.usd_number(model.price_max)}
    else:
        band = (model.price_min, model.price_average, model.price_max)
        pricing = {
            "type": model.pricing,
            "range": dict(
                zip(("min", "average", "max"), map(results.usd_number, band), strict=True)
            ),
        }
    return {
        "id": model.id,
        "providers": [{"id": _provider_of(model), "model_name": model.name, "pricing": pricing}],
        "seconds": model.seconds,
        "default_seconds": model.default_seconds,
        "sizes": model.sizes,
        "output": ["video"],
        "supported_params": {"edit": model.accepts_image, "mask": False, "quality": False},
    }
