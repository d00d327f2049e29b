"""Retention: the sweeper deletes the files of videos older than their retention (RETENTION_DAYS,
or their team's), keeping the job, its prompt and its cost; a star keeps a video for ever;
owners are warned seven days before. Also the sizes of files stored before sizes were recorded.

Which jobs expire, and when, is read in selectors/retention.py.
"""

import logging
from itertools import groupby

from django.core.files.storage import default_storage
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from jobs.models import Job
from jobs.selectors import alerts as who
from jobs.selectors import retention

from .files import job_files_delete
from .mail import email_queue

logger = logging.getLogger(__name__)

# Jobs whose files one sweep deletes (three files each at most): a backlog, such as the first
# sweep after RETENTION_DAYS is set on a studio with years of videos, drains over several
# minutes instead of holding one sweep for an hour.
EXPIRE_BATCH = 200


def jobs_expire(*, now=None, limit: int = EXPIRE_BATCH) -> int:
    """The sweeper's retention step: delete the files of up to `limit` jobs past their expiry,
    oldest first. Returns how many jobs expired.

    1. Read the due jobs' ids (selectors.retention.jobs_due_to_expire).
    2. For each, files.job_files_delete with the same rule as its condition: the row is locked
       and read again, so a job starred, deleted or already expired by another sweeper a moment
       ago is left alone, and each job's files are deleted by one sweeper only. It sets
       expired_at and ends the job's share link.
    3. A job whose deletion fails is logged and left for the next sweep: one bad file never
       stops the run, and the other jobs go on.
    """
    now = now or timezone.now()
    due = retention.expiring_before(now)
    expired = 0
    for pk in retention.jobs_due_to_expire(now=now, limit=limit):
        try:
            expired += job_files_delete(job_id=pk, condition=due, expired_at=now, share_token=None)
        except Exception:
            logger.exception("job %s: its files were not expired; the next sweep tries again", pk)
    if expired:
        logger.info("retention: the files of %d jobs expired", expired)
    return expired


def job_star_set(*, job: Job, starred: bool) -> bool:
    """Star a job (retention keeps it for ever) or take the star off (it expires as any other,
    and its owner is warned again if that is within seven days). Asks for a state rather than
    toggling, so a double click changes nothing. Returns False when the job's files expired or
    it was deleted meanwhile: the sweeper holds the row's lock while it expires a job, so a
    star pressed at that moment waits and then finds it expired."""
    rows = Job.objects.filter(pk=job.pk, deleted_at__isnull=True, expired_at__isnull=True)
    if starred:
        rows.filter(starred_at__isnull=True).update(starred_at=timezone.now())
    else:
        rows.filter(starred_at__isnull=False).update(starred_at=None, expiry_warned_days=None)
    return rows.exists()


def expiry_warnings_send(*, now=None) -> int:
    """Email each owner the videos of theirs that expire within EXPIRY_WARNING_DAYS, once: one
    message a day per person ("expiry-warning:<date>:<user>"), listing the videos not warned
    about yet. Runs daily from beat. Returns how many messages were queued.

    1. Read the jobs to warn, by owner (selectors.retention.jobs_to_warn): expiring soon, not
       warned for the retention now in force, and still visible to their owner.
    2. Skip owners who are inactive, have no address, or turned the warning off.
    3. In one transaction per owner: claim each job (a conditional UPDATE of
       expiry_warned_days; a job claimed by a racing run is left to it), then queue the
       message. If today's message exists already (a second run the same day found videos that
       entered the window since), roll the claims back: they are in tomorrow's message.
    """
    now = now or timezone.now()
    day = now.date().isoformat()
    queued = 0
    for _, owned in groupby(retention.jobs_to_warn(now=now), key=lambda job: job.owner_id):
        jobs = list(owned)
        owner = jobs[0].owner
        if not owner.is_active or not owner.email:
            continue
        if not who.alert_preferences_for(owner).expiry_warning:
            continue
        with transaction.atomic():
            claimed = [
                job
                for job in jobs
                if Job.objects.filter(retention.still_to_warn(job), pk=job.pk).update(
                    expiry_warned_days=job.retention_days
                )
            ]
            if not claimed:
                continue
            email = email_queue(
                key=f"expiry-warning:{day}:{owner.pk}",
                to=owner.email,
                user=owner,
                subject=_warning_subject(claimed),
                template="expiry_warning",
                context={
                    "person": owner,
                    "videos": [_warning_line(job) for job in claimed],
                    "gallery_path": reverse("jobs:list") + "?keep=expiring",
                    "settings_path": reverse("notification_settings"),
                },
            )
            if email is None:
                transaction.set_rollback(True)
                continue
            queued += 1
    return queued


def _warning_subject(jobs) -> str:
    first = jobs[0].expires_at
    count = len(jobs)
    videos = "1 of your videos" if count == 1 else f"{count} of your videos"
    return f"{videos} will be deleted from {first.day} {first:%b}: star what you want to keep"


def _warning_line(job: Job) -> dict:
    prompt = " ".join(job.prompt.split()) or "(image only)"
    if len(prompt) > 80:
        prompt = prompt[:79] + "…"
    return {
        "prompt": prompt,
        "model": job.model,
        "team": job.team.label if job.team_id else "",
        "expires_at": job.expires_at,
        "path": reverse("jobs:detail", args=[job.pk]),
    }


def job_storage_measure(*, job: Job) -> bool:
    """Measure in storage the files of a job stored before sizes were recorded (stored_bytes
    None) and record their sum, if its files are still the ones measured. A file missing from
    storage counts 0. Raises the storage's own error when it cannot answer (S3 away): the job
    stays unmeasured. Returns whether it recorded a size (manage.py record_storage_sizes)."""
    files = (job.video, job.poster, job.input_image)
    total = sum(_size(f.name) for f in files if f)
    return bool(
        Job.objects.filter(
            pk=job.pk,
            stored_bytes__isnull=True,
            video=job.video.name,
            poster=job.poster.name,
            input_image=job.input_image.name,
        ).update(stored_bytes=total)
    )


def _size(name: str) -> int:
    if not default_storage.exists(name):
        logger.warning("file %s is missing from storage: counted as 0 bytes", name)
        return 0
    return default_storage.size(name)
