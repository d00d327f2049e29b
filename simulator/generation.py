"""POST /v1/openai/videos/generations, answered the way the provider answers it.

1. Auth, body parsing and validation fail fast with 401 or 400 and cost nothing. A management
   key, or a minted key past its `expires_at`, is a 401.
2. A queued fault, if one applies, may answer instead (429, a 5xx, a late error, a drop...).
3. The model's maximum price is reserved; if the balance can't cover it the answer is
   "Insufficient credits" as 200 with an error body, since the provider writes that body
   before it sets a status. A key that has already spent its `spend_limit` in the current
   window is refused with 403 and nothing is reserved (see `spend_limit_refusal`).
4. The 200 and its headers go out at once. A worker thread does the work (the configured
   latency, then a real render) while the response writes a space every keep-alive interval.
5. The worker settles the real price or refunds everything, and does so whether or not the
   client is still there: a client that goes away is charged, as with the provider.
"""

import base64
import json
import re
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

from . import catalog, render
from .forms import MAX_IMAGE_BYTES, MAX_IMAGES, FormError, load_image, parse_body
from .server import AbortConnection
from .state import KeyRefused, SpendLimitReached
from .storage import Storage
from .web import Request, Response, error_body, error_response, invalid_request

SIZE = re.compile(r"^(\d+)[xX×*](\d+)$")
RESPONSE_FORMATS = ("url", "b64_json", "b64_ephemeral")
MAX_PROMPT = 10_000
MAX_BODY = MAX_IMAGES * MAX_IMAGE_BYTES + 1024 * 1024  # six full uploads and the fields
MAX_SIDE = 3840  # a simulator limit, so a typo can't ask ffmpeg for a week of work
B64_READ = 3 * 64 * 1024  # a multiple of 3, so the base64 pieces join without padding
JSON_HEADERS = [("Content-Type", "application/json")]


@dataclass
class Job:
    api_key: str
    model: dict
    prompt: str
    width: int
    height: int
    seconds: float
    response_format: str
    image: Image.Image | None
    base_url: str
    latency: float
    fault: dict = field(default_factory=dict)
    reserved: int = 0
    reservation: object = None  # state.Reservation: the epoch and day the price was reserved in
    price: int = 0
    resolved: bool = False  # settled or refunded; each happens at most once
    started: float = field(default_factory=time.monotonic)


@dataclass
class Outcome:
    """What the worker produced: the rest of the body, and a directory to delete afterwards."""

    chunks: object
    work_dir: Path | None = None


def handle(app, request: Request) -> Response:
    state = app.state
    state.count("generation_requests")
    api_key = request.bearer_token()
    if api_key is None:
        state.count("rejected")
        message = (
            "Authorization header is required"
            if not request.header("Authorization")
            else "Invalid authorization token length: 0"
        )
        return error_response(401, message, "unauthorized")
    try:
        state.check_key(api_key)
    except KeyRefused as exc:
        state.count("rejected")
        return error_response(401, str(exc), "unauthorized")
    if int(request.environ.get("CONTENT_LENGTH") or 0) > MAX_BODY:
        state.count("rejected")
        return invalid_request("File upload error: File too large")
    try:
        job = _job_from_request(app, request, api_key)
    except FormError as exc:
        state.count("rejected")
        return invalid_request(str(exc))

    job.fault = state.take_fault(job.prompt, job.model["id"]) or {}
    kind = job.fault.get("kind")
    if kind == "rate_limit":
        state.count("rejected")
        return _rate_limited(job.fault)
    if kind == "insufficient_credits":
        return _insufficient(job, status=int(job.fault.get("status", 500)))

    job.reserved = catalog.max_price_units(job.model)
    job.price = min(
        job.reserved,
        catalog.price_units(
            job.model, seconds=job.seconds, width=job.width, height=job.height, prompt=job.prompt
        ),
    )
    try:
        job.reservation = state.reserve(api_key, job.reserved)
    except SpendLimitReached as exc:
        state.count("rejected")
        return spend_limit_refusal(str(exc))
    if job.reservation is None:
        return _insufficient(job, status=200)
    if kind == "http_error":
        _refund(state, job)
        status = int(job.fault.get("status", 502))
        message = job.fault.get("message", "Upstream provider failed (simulated)")
        return error_response(status, message, job.fault.get("type", "internal_error"))
    return Response(200, _stream(app, job), JSON_HEADERS)


def _job_from_request(app, request: Request, api_key: str) -> Job:
    latency = request.header("X-Sim-Latency")
    fields, images = parse_body(request.content_type, request.body())
    model_id = fields.get("model")
    if model_id is not None and not isinstance(model_id, str):
        raise FormError("'model' must be a string")
    if not model_id:
        raise FormError("'model' is a required parameter")
    prompt = fields.get("prompt") or ""
    if not isinstance(prompt, str):
        raise FormError("'prompt' must be a string")
    if len(prompt) > MAX_PROMPT:
        raise FormError(f"'prompt' must be at most {MAX_PROMPT} characters")
    response_format = fields.get("response_format") or "url"
    if response_format not in RESPONSE_FORMATS:
        raise FormError("'response_format' must be one of 'url', 'b64_json' or 'b64_ephemeral'")
    size = _size(fields.get("size") or "auto")
    seconds = _seconds(fields.get("seconds", "auto"))

    model = catalog.MODELS.get(model_id)
    if model is None:
        raise FormError(f"model '{model_id}' is not available")
    if "video" not in model["output"]:
        raise FormError(
            f"'{model_id}' is an image model. Please use the image generation endpoint."
        )
    if images and not model["supported_params"]["edit"]:
        raise FormError("This model does not support image inputs")
    loaded = [load_image(source) for source in images]

    width, height = size or map(int, model["sizes"][0].split("x"))
    if seconds is None or seconds not in model["seconds"]:
        # The provider doesn't refuse a duration the model lacks; it quietly uses the default.
        seconds = model["default_seconds"]
    try:
        latency = float(latency) if latency else app.state.latency_for(model_id)
    except ValueError:
        latency = -1
    if latency < 0:
        raise FormError("X-Sim-Latency must be a number of seconds, 0 or more")
    return Job(
        api_key=api_key,
        model=model,
        prompt=prompt,
        width=width,
        height=height,
        seconds=seconds,
        response_format=response_format,
        # Current models use only the first image, as the provider's do.
        image=loaded[0] if loaded else None,
        base_url=request.base_url(),
        latency=latency,
    )


def _size(value) -> tuple[int, int] | None:
    if value == "auto":
        return None
    match = SIZE.match(value) if isinstance(value, str) else None
    width, height = (int(match.group(1)), int(match.group(2))) if match else (0, 0)
    if not width or not height:
        raise FormError("'size' must be 'auto' or in the format 'WIDTHxHEIGHT' (e.g. '1024x768')")
    if max(width, height) > MAX_SIDE:
        raise FormError(f"'size' {value} is larger than the simulator renders ({MAX_SIDE} a side)")
    return width, height


def _seconds(value) -> float | None:
    if value == "auto" or value is None:
        return None
    try:
        seconds = float(value) if not isinstance(value, bool) else None
    except ValueError:
        seconds = None
    if seconds is None or not 1 <= seconds <= 60:
        raise FormError("'seconds' must be 'auto' or a number from 1 to 60")
    return seconds


def _rate_limited(fault: dict) -> Response:
    retry_after = str(fault.get("retry_after", 1))
    response = error_response(429, "Too many requests, please try again later.", "rate_limit_error")
    response.headers += [
        ("Retry-After", retry_after),
        ("RateLimit-Policy", "1;w=1"),
        ("RateLimit-Limit", "1"),
        ("RateLimit-Remaining", "0"),
        ("RateLimit-Reset", retry_after),
    ]
    return response


def spend_limit_refusal(message: str) -> Response:
    """What a key that has spent its limit gets. The provider does not document this answer;
    the simulator's choice is a 403 in the provider's error shape, before any work and with
    nothing reserved or charged: the auth middleware is where the provider keeps its other
    refusals that keep their status (401/403). A client should treat it as any refusal."""
    return error_response(403, message, "spend_limit_exceeded")


def _insufficient(job: Job, status: int) -> Response:
    needs = catalog.units_to_usd(catalog.max_price_units(job.model)).normalize()
    message = (
        f"Insufficient credits (this model needs minimum ${needs} credits), please topup your "
        "ImageRouter account: https://imagerouter.io/pricing"
    )
    if status != 200:
        return error_response(status, message, "internal_error")
    body = json.dumps(error_body(message, "internal_error")).encode()
    return Response(200, iter([b"", b" ", body]), JSON_HEADERS)


def _stream(app, job: Job):
    """The response body: headers at once, spaces while the worker runs, then its outcome."""
    future: Future = Future()
    threading.Thread(target=_work, args=(app, job, future), daemon=True).start()
    keepalive = job.fault.get("keepalive", True)
    try:
        yield b""
        while True:
            try:
                outcome = future.result(timeout=app.state.keepalive_interval())
                break
            except TimeoutError:
                if keepalive:
                    yield b" "
        yield from outcome.chunks
    finally:
        future.add_done_callback(_discard_work_dir)


def _discard_work_dir(future: Future):
    if future.result().work_dir:
        Storage.discard(future.result().work_dir)


def _work(app, job: Job, future: Future):
    try:
        future.set_result(_perform(app, job))
    except BaseException as exc:
        # A bug, not a simulated failure: answer as the provider would and give the money back.
        _refund(app.state, job)
        message = f"Video generation failed: {exc}"
        future.set_result(Outcome([json.dumps(error_body(message, "internal_error")).encode()]))
        raise


def _settle(state, job: Job):
    if not job.resolved:
        job.resolved = True
        state.settle(job.reservation, job.api_key, job.reserved, job.price)


def _refund(state, job: Job):
    if not job.resolved:
        job.resolved = True
        state.refund(job.reservation, job.api_key, job.reserved)


def _perform(app, job: Job) -> Outcome:
    state, fault, kind = app.state, job.fault, job.fault.get("kind")
    if kind == "error_after":
        time.sleep(float(fault.get("seconds", 1.0)))
        _refund(state, job)
        message = fault.get("message", "Video generation failed (simulated provider error)")
        body = error_body(message, fault.get("type", "internal_error"))
        return Outcome([json.dumps(body).encode()])
    if kind == "drop":
        time.sleep(float(fault.get("after_seconds", 0.5)))
        # The provider carries on without the client and charges for the video.
        _settle(state, job)
        return Outcome(_abort())
    if kind == "malformed":
        time.sleep(job.latency)
        _settle(state, job)
        cut_short = f'{{"created": {_created(job)}, "data": [{{"url": "{job.base_url}/storage/'
        return Outcome([cut_short.encode()])

    time.sleep(float(fault.get("seconds", 10)) if kind == "slow" else job.latency)
    work_dir = app.storage.work_dir()
    video = work_dir / "video.mp4"
    try:
        if job.image is not None:
            render.render_image_video(job.image, job.width, job.height, job.seconds, video)
        else:
            render.render_text_video(job.prompt, job.width, job.height, job.seconds, video)
        if kind == "large_result":
            render.pad_with_free_box(video, int(fault.get("bytes", 20_000_000)))
        video_id = None if job.response_format == "b64_ephemeral" else app.storage.keep(video)
    except (render.RenderError, OSError) as exc:
        _refund(state, job)
        body = error_body(f"Video generation failed: {exc}", "internal_error")
        return Outcome([json.dumps(body).encode()], work_dir)

    if video_id and kind == "download_fail":
        state.fail_downloads(job.reservation.epoch, video_id, fault)
    _settle(state, job)
    tail = {"latency": round((time.monotonic() - job.started) * 1000), "cost": _cost(job)}
    if job.response_format == "url":
        item = {"url": f"{job.base_url}/storage/{video_id}.mp4", "revised_prompt": None}
        body = {"created": _created(job), "data": [item], **tail}
        return Outcome([json.dumps(body).encode()], work_dir)
    path = app.storage.path(video_id) if video_id else video
    return Outcome(_b64_body(job, path, tail), work_dir)


def _b64_body(job: Job, path: Path, tail: dict):
    """The JSON with the video inline, streamed so the base64 never sits in memory whole."""
    yield b'{"created": %d, "data": [{"revised_prompt": null, "b64_json": "' % _created(job)
    with path.open("rb") as f:
        while chunk := f.read(B64_READ):
            yield base64.b64encode(chunk)
    yield b'"}], ' + json.dumps(tail).encode()[1:]


def _abort():
    raise AbortConnection()
    yield  # a generator, so the abort happens while the body is being written


def _created(job: Job) -> int:
    # The test model's code stamps seconds; the documentation shows milliseconds.
    now = time.time()
    return int(now) if job.model["id"] == "ir/test-video" else int(now * 1000)


def _cost(job: Job) -> float | int:
    # The provider's JavaScript writes 0.6 as 0.6 and 0 as 0; json.dumps would write 0.0.
    cost = float(catalog.units_to_usd(job.price))
    return int(cost) if cost.is_integer() else cost
