"""Batches: up to 100 prompts started as one group (groups.job_group_create), all of them or
none, once per press of Start; and the failed rows of a batch retried as one, into the batch."""

from django.db import IntegrityError, transaction
from django.utils import timezone

from jobs.models import Job, JobGroup, SubmitKey

from .groups import JobSpec, job_group_create
from .idempotency import SUBMIT_KEY_LIFETIME, request_fingerprint, submitted_job
from .limits import SubmitRefusedError


class NothingToRetryError(SubmitRefusedError):
    """None of the rows the person confirmed is still a failed row waiting for a retry."""

    def __init__(self):
        super().__init__(
            "Nothing was retried: those videos have been retried already, or are no longer "
            "failed. Their new attempts are on the batch's page."
        )


def batch_create_once(
    *, owner, team, rows: list[dict], response_format: str, key: str
) -> tuple[JobGroup, bool]:
    """(the batch, True) for a new Start; (the batch the first press made, False) for a repeat
    of the same preview's Start (a double click, a resend after a dropped connection).

    `rows` are the preview's rows (prompt, model, seconds, size), checked by
    batch_forms.batch_preview; job_group_create checks the place, the models, the storage, the
    rate, every budget level and the active-jobs cap again, for the whole batch.

    1. A key seen within its lifetime (the preview's token, `batch:<token>`) answers with its
       batch: nothing is counted, held or sent.
    2. Otherwise, in one transaction: claim the key (a racing repeat waits on its unique
       constraint), create the batch with job_group_create, and point the key at the batch's
       first job. A refusal rolls the key back too, so a Start after "over budget" is judged
       afresh.
    3. A racing repeat that lost the claim, or was refused because the winner's holds took the
       budget, answers with the winner's batch.
    """
    fingerprint = request_fingerprint(
        {"team": getattr(team, "pk", None), "rows": rows, "response_format": response_format}
    )
    earlier = submitted_job(owner=owner, key=key, fingerprint=fingerprint)
    if earlier is not None:
        return earlier.group, False
    specs = [
        JobSpec(
            prompt=row["prompt"],
            model=row["model"],
            size=row["size"],
            seconds=row["seconds"],
            response_format=response_format,
        )
        for row in rows
    ]
    try:
        with transaction.atomic():
            SubmitKey.objects.filter(
                owner=owner, key=key, created_at__lt=timezone.now() - SUBMIT_KEY_LIFETIME
            ).delete()
            claim = SubmitKey.objects.create(owner=owner, key=key, fingerprint=fingerprint)
            batch = job_group_create(owner=owner, kind=JobGroup.Kind.BATCH, team=team, specs=specs)
            SubmitKey.objects.filter(pk=claim.pk).update(job=batch.created_jobs[0])
    except (IntegrityError, SubmitRefusedError):
        earlier = submitted_job(owner=owner, key=key, fingerprint=fingerprint)
        if earlier is None:
            raise
        return earlier.group, False
    return batch, True


def batch_retry(*, batch: JobGroup, job_ids) -> list[Job]:
    """New attempts of the batch's failed rows whose failed jobs the person confirmed
    (`job_ids`), as one submit into the batch: all of them or none. Each new job takes its row's
    place (group_position), so the batch's page shows it as that row's latest attempt; the
    failed job keeps its own record, and its possible cost, for reconciliation.

    1. Lock the batch's row until the end, so two presses of Retry (or the batch's Retry and a
       job page's) retry a row once.
    2. Keep the confirmed jobs that are still their row's latest attempt, failed and not
       deleted; none left is NothingToRetryError. A row that failed after the person confirmed
       is not retried: its cost was not in what they confirmed.
    3. job_group_create into the batch, each job at its row: the sum of their estimates is
       checked against every budget level at once, and the batch counts as the same one
       submit against the active-jobs cap (services.limits.active_jobs_check).
    """
    from jobs.selectors.batches import batch_rows

    wanted = set(job_ids)
    with transaction.atomic():
        batch = JobGroup.objects.select_for_update().get(pk=batch.pk)
        failed = [
            row.latest
            for row in batch_rows(batch=batch)
            if row.latest.pk in wanted and row.may_retry
        ]
        if not failed:
            raise NothingToRetryError()
        group = job_group_create(
            owner=batch.owner,
            kind=batch.kind,
            team=batch.team,
            specs=[
                JobSpec(
                    prompt=job.prompt,
                    model=job.model,
                    size=job.size,
                    seconds=job.seconds,
                    response_format=job.response_format,
                )
                for job in failed
            ],
            group=batch,
            positions=[job.group_position for job in failed],
        )
    return group.created_jobs
