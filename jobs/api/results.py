"""A job as the provider would answer for it: `{"created", "data": [{"url"} | {"b64_json"}],
"latency", "cost"}` on success, `{"error": {...}}` on failure, plus the job's `id`.

- `url` is the studio's own, token-checked URL for the video (GET /v1/jobs/{id}/content),
  never the provider's, which is public to anyone holding it.
- `b64_json` (for jobs asked with b64_json or b64_ephemeral) is the stored video, base64-encoded
  as it is read, in chunks: the video is never in memory whole.
- `latency` is milliseconds from the request to the stored video, as the caller waited for it
  (queue and store included); `cost` is the provider's cost in USD, as recorded in the ledger.
"""

import base64
import json
from collections.abc import Iterator
from decimal import Decimal

from django.urls import reverse

from jobs.models import Job

from .errors import INTERNAL, NOT_FOUND, error_body

# A multiple of 3 bytes, so the base64 of each chunk joins the next with no padding between.
B64_READ_BYTES = 3 * 64 * 1024


def content_url(request, job: Job) -> str:
    return request.build_absolute_uri(reverse("api:job_content", args=[job.pk]))


def status_url(request, job: Job) -> str:
    return request.build_absolute_uri(reverse("api:job", args=[job.pk]))


def created(job: Job) -> int:
    """Unix seconds, as the provider's test model stamps it."""
    return int(job.created_at.timestamp())


def usd_number(amount: Decimal | None) -> int | float | None:
    """A JSON number as the provider writes one: 0 and 0.6, never 0.0."""
    if amount is None:
        return None
    return int(amount) if amount == amount.to_integral_value() else float(amount)


def latency_ms(job: Job) -> int | None:
    if job.finished_at is None:
        return None
    return max(0, round((job.finished_at - job.created_at).total_seconds() * 1000))


def summary(job: Job) -> dict:
    """What every answer about a job carries: which job, which model, what it is doing, and
    where it is charged (its team, or null for the owner's personal space)."""
    return {
        "id": str(job.pk),
        "status": job.status,
        "model": job.model,
        "created": created(job),
        "team": team_of(job),
    }


def team_of(job: Job) -> dict | None:
    if job.team_id is None:
        return None
    return {"id": str(job.team_id), "name": job.team.name}


def failure(job: Job) -> dict:
    """Why a job ended without a video, in the provider's error shape."""
    if job.status == Job.Status.CANCELED:
        return error_body("The job was canceled before it started. Nothing was charged.",
                          INTERNAL, code="canceled")  # fmt: skip
    if job.outcome_unknown:
        return error_body(job.error or "The outcome is unknown; the provider may have charged.",
                          INTERNAL, code="outcome_unknown")  # fmt: skip
    return error_body(job.error or "The video could not be made.", INTERNAL,
                      code="generation_failed")  # fmt: skip


def expired(job: Job) -> dict:
    """Why an expired job has no video any more (retention deleted its files)."""
    day = f"{job.expired_at:%Y-%m-%d}"
    return error_body(
        f"The video expired on {day} (UTC): the studio's retention deleted its files. Its "
        "prompt and cost stay on record.",
        NOT_FOUND,
        code="expired",
    )


def job_body(job: Job, *, absolute) -> dict:
    """What GET /v1/jobs/{id} answers about a job, and what its webhook carries: the summary;
    once succeeded, the provider's result with the video as the studio's own URL (`absolute`
    makes a path a full URL); once failed or canceled, the error and the cost; once expired
    (retention deleted its files), `expired_at` and an error saying so. (A succeeded
    b64_json job's GET answer carries the video inline instead: success_chunks.)"""
    body = summary(job)
    if job.expired_at is not None:
        body["expired_at"] = int(job.expired_at.timestamp())
        body["error"] = expired(job)["error"]
        body["cost"] = usd_number(job.cost)
        return body
    if job.status == Job.Status.SUCCEEDED:
        item = {"url": absolute(reverse("api:job_content", args=[job.pk])), "revised_prompt": None}
        extra = {key: value for key, value in body.items() if key != "created"}
        return {"created": created(job), "data": [item], **_tail(job), **extra}
    if job.is_terminal:
        body["error"] = failure(job)["error"]
        body["cost"] = usd_number(job.cost)
    return body


def _tail(job: Job) -> dict:
    return {"latency": latency_ms(job), "cost": usd_number(job.cost)}


def success_chunks(request, job: Job, *, extra: dict | None = None) -> Iterator[bytes]:
    """A succeeded job's answer, as bytes to stream. `extra` adds top-level keys."""
    tail = {**_tail(job), **(extra or {})}
    if job.response_format == Job.ResponseFormat.URL:
        item = {"url": content_url(request, job), "revised_prompt": None}
        yield json.dumps({"created": created(job), "data": [item], **tail}).encode()
        return
    yield b'{"created": %d, "data": [{"revised_prompt": null, "b64_json": "' % created(job)
    with job.video.open("rb") as video:
        while chunk := video.read(B64_READ_BYTES):
            yield base64.b64encode(chunk)
    yield b'"}], ' + json.dumps(tail).encode()[1:]
