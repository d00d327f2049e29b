"""Groups of jobs made together (a comparison, variations, a batch): all accepted or none."""

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from django.core.files.base import ContentFile
from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from jobs.models import Job, JobGroup, VideoModel

from .budget_shares import room_ensure
from .budgets import budget_reserve
from .limits import (
    GroupSizeError,
    active_jobs_check,
    charge_check,
    model_available_check,
    owner_lock,
    storage_quota_check,
    submit_rate_check,
)
from .messages import run_message_send_on_commit
from .queue import queue_round_next


@dataclass(frozen=True)
class JobSpec:
    """One job of a group, as the person asked for it (checked already by the form or API)."""

    prompt: str
    model: str
    size: str = "auto"
    seconds: str = "auto"
    response_format: str = Job.ResponseFormat.URL


KIND_WORDS = {
    JobGroup.Kind.COMPARISON: ("A comparison", "models"),
    JobGroup.Kind.VARIATIONS: ("Variations", "runs"),
    JobGroup.Kind.BATCH: ("A batch", "prompts"),
}


def group_size_check(*, kind: str, count: int) -> None:
    """Refuse a group with fewer or more jobs than its kind allows (JobGroup.SIZES)."""
    low, high = JobGroup.SIZES[kind]
    if not low <= count <= high:
        what, unit = KIND_WORDS[kind]
        raise GroupSizeError(f"{what} takes {low} to {high} {unit}; this one has {count}.")


def estimates_for(model_ids: Sequence[str]) -> list[Decimal]:
    """The most each job can cost (the catalog's top price; 0 for an unknown model), in the
    order given: one query for the whole group, as budgets.estimate_for reads it for one."""
    tops = dict(VideoModel.objects.filter(pk__in=set(model_ids)).values_list("pk", "price_max"))
    return [tops.get(model) or Decimal(0) for model in model_ids]


def job_group_create(
    *,
    owner,
    kind: str,
    specs: Sequence[JobSpec],
    team=None,
    token=None,
    image=None,
    webhook_url: str = "",
    api_base_url: str = "",
    group: JobGroup | None = None,
    positions: Sequence[int] | None = None,
) -> JobGroup:
    """Save a group of jobs charged to `team` (None: the owner's personal space), all of them or
    none, and enqueue each once they are committed. Raises a SubmitRefusedError, and saves
    nothing, when refused. `image`, if given, is the input image of every job (each gets its
    own copy, so deleting one job's files never takes another's).

    `group`, if given, is an existing group of the same kind, owner and place that the jobs
    join instead of a new one (a batch's failed rows retried: services.batches), at
    `positions` (one per spec; by default after its last job). It counts as the same one
    submit against the active cap, whether or not it still has jobs live.

    1. Check the group's size for its kind (GroupSizeError), that the owner may charge there
       (ChargeRefusedError), may use every model there (ModelUnavailableError names the first
       that is not allowed), that the team's storage is not full (StorageQuotaError), and count
       the group as one submit against the per-minute rate (SubmitRateLimitedError).
    2. Read every job's estimate in one query.
    3. In one transaction: lock the owner's row, check the cap on active submits, where the
       group counts as one (TooManyActiveJobsError), and take the jobs' turns in the fair
       queue; then lock the budget rows that apply, in their fixed order, once, and check the
       SUM of the estimates against each level at once (OverBudgetError names the level that
       is short and by how much).
    4. Save the group and its jobs (one INSERT), each with its own estimate as its hold, its
       place in the group, its turn in the fair queue (consecutive rounds, as a person's
       separate submits would take) and, if any, its copy of the image; send a turn for each
       after commit. If
       Redis is away then, the jobs stay saved and queued, and the sweeper sends them later.
    """
    group_size_check(kind=kind, count=len(specs))
    if group is not None and (group.kind, group.owner_id, group.team_id) != (
        kind,
        owner.pk,
        getattr(team, "pk", None),
    ):
        raise ValueError("Jobs join only a group of their own kind, owner and place.")
    charge_check(user=owner, team=team)
    for model in dict.fromkeys(spec.model for spec in specs):
        model_available_check(user=owner, model=model, team=team)
    storage_quota_check(team=team)
    submit_rate_check(user=owner)
    estimates = estimates_for([spec.model for spec in specs])
    image_bytes = image_name = None
    if image is not None:
        image.seek(0)
        image_bytes, image_name = image.read(), image.name.rsplit("/", 1)[-1]
    organization = room_ensure(owner=owner, estimate=sum(estimates))
    with transaction.atomic():
        owner_lock(owner=owner)
        active_jobs_check(user=owner, counted_group=group)
        # Consecutive turns in the fair queue, taken under the owner's row lock.
        rounds = queue_round_next(owner=owner, count=len(specs))
        budget_reserve(
            owner=owner,
            team=team,
            token=token,
            estimate=sum(estimates),
            count=len(specs),
            organization=organization,
        )
        if group is None:
            group = JobGroup.objects.create(kind=kind, owner=owner, team=team, token=token)
            positions = positions or range(len(specs))
        elif positions is None:
            last = group.jobs.aggregate(last=Max("group_position"))["last"]
            positions = range(last + 1, last + 1 + len(specs))
        now = timezone.now()
        jobs = []
        for n, (spec, estimate, position) in enumerate(
            zip(specs, estimates, positions, strict=True)
        ):
            job = Job(
                owner=owner,
                team=team,
                token=token,
                group=group,
                group_position=position,
                queue_round=rounds[n],
                prompt=spec.prompt,
                model=spec.model,
                size=spec.size,
                seconds=spec.seconds,
                response_format=spec.response_format,
                hold=estimate,
                enqueued_at=now,
                webhook_url=webhook_url,
                api_base_url=api_base_url if webhook_url else "",
            )
            if image_bytes is not None:
                job.input_image.save(image_name, ContentFile(image_bytes), save=False)
                job.stored_bytes = len(image_bytes)
            jobs.append(job)
        Job.objects.bulk_create(jobs)
        for job in jobs:
            run_message_send_on_commit(job_id=job.pk, stamp=now)
    group.created_jobs = jobs
    return group


def group_share_create(*, group: JobGroup) -> str:
    """Give a group one share link (for all its finished videos), and return its token.

    1. Refuse (NotShareableError) a group with no finished video that still exists.
    2. Set a new random token in one conditional UPDATE, only if the group has none.
    3. If no row changed, it is shared already (a second click, another tab): return that link.
    A revoked token is gone, so sharing again makes a new one and an old link never works.
    """
    from .sharing import TOKEN_BYTES, NotShareableError

    finished = Job.objects.filter(
        group=group,
        status=Job.Status.SUCCEEDED,
        deleted_at__isnull=True,
        expired_at__isnull=True,
    )
    if not finished.exists():
        raise NotShareableError("Only finished videos can be shared: none of these is yet.")
    token = secrets.token_urlsafe(TOKEN_BYTES)
    if JobGroup.objects.filter(pk=group.pk, share_token__isnull=True).update(share_token=token):
        return token
    return JobGroup.objects.filter(pk=group.pk).values_list("share_token", flat=True).first()


def group_share_revoke(*, group: JobGroup) -> bool:
    """End a group's share link at once. False if it was not shared."""
    return bool(
        JobGroup.objects.filter(pk=group.pk, share_token__isnull=False).update(share_token=None)
    )


def group_keep_one(*, keep: Job, others) -> tuple[bool, int, int]:
    """ "Keep this one": star `keep` (retention keeps it for ever) and delete `others` (the
    group's other jobs that the person may delete) in one step. Live ones are skipped: a job is
    deleted once it has finished. Returns (kept, deleted, skipped); kept is False when `keep`
    expired or was deleted meanwhile, and then nothing else is deleted either."""
    from .lifecycle import job_delete
    from .retention import job_star_set

    if not job_star_set(job=keep, starred=True):
        return False, 0, 0
    deleted = skipped = 0
    for job in others:
        if job.pk == keep.pk:
            continue
        if job_delete(job=job):
            deleted += 1
        else:
            skipped += 1
    return True, deleted, skipped


def group_create_once(*, owner, key: str, fingerprint: str, **fields) -> tuple[JobGroup, bool]:
    """(the group, True) for a new submit; (the first submit's group, False) for a repeat of the
    same form (its token and fields): idempotency.job_create_once's rules, with the key
    pointing at the group's first job.

    1. A key seen within its lifetime answers with its job's group (or SubmitKeyReusedError).
    2. Otherwise, in one transaction: claim the key (a racing repeat waits on the unique
       constraint), job_group_create, and point the key at the group's first job.
    3. A racing repeat that lost the claim, or was refused because the winner's holds took the
       budget, answers with the winner's group.
    """
    from django.db import IntegrityError

    from jobs.models import SubmitKey

    from .idempotency import SUBMIT_KEY_LIFETIME, submitted_job
    from .limits import SubmitRefusedError

    earlier = submitted_job(owner=owner, key=key, fingerprint=fingerprint)
    if earlier is not None and earlier.group_id is not None:
        return earlier.group, False
    try:
        with transaction.atomic():
            SubmitKey.objects.filter(
                owner=owner, key=key, created_at__lt=timezone.now() - SUBMIT_KEY_LIFETIME
            ).delete()
            claim = SubmitKey.objects.create(owner=owner, key=key, fingerprint=fingerprint)
            group = job_group_create(owner=owner, **fields)
            SubmitKey.objects.filter(pk=claim.pk).update(job=group.created_jobs[0])
    except (IntegrityError, SubmitRefusedError):
        earlier = submitted_job(owner=owner, key=key, fingerprint=fingerprint)
        if earlier is None or earlier.group_id is None:
            raise
        return earlier.group, False
    return group, True
