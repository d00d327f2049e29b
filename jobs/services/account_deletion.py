"""Deleting a person's account at their request: their personal videos and files go, the ledger
keeps every entry (so every total stays the same) without their name, and what they made for a
team stays with the team.

What points at the account, and what deleting it does (the foreign keys' on_delete):
- their jobs (Job.owner, SET_NULL): a team's job stays the team's; a personal one whose cost is
  in the ledger stays only as a deleted row (no prompt, no files), and one that never reached the
  provider (canceled) is deleted outright;
- the ledger (CostEntry.user, SET_NULL), the audit trail (AuditEvent.actor/.user, SET_NULL),
  the admin's history of changes to the account (its lines stay, without the name), the
  outbox (OutgoingEmail.user: their own messages are deleted first, since they hold their
  address): the rows stay, naming nobody;
- their tokens, memberships, budgets, budget notices, sign-in identities, address record,
  notification choices and submit keys (CASCADE): gone with them. Their tokens stop working at
  once (no row, no key), and so do their sessions: a session names a user id that no longer
  exists, which Django reads as logged out.
"""

import logging
from dataclasses import dataclass

from django.conf import settings
from django.contrib.admin.models import LogEntry
from django.contrib.auth import get_user_model
from django.contrib.contenttypes.models import ContentType
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from jobs.models import (
    AuditEvent,
    CostEntry,
    Job,
    JobGroup,
    Membership,
    OutgoingEmail,
    SpendDay,
    spend_scope,
)
from jobs.models.budgets import Budget

from .access import ACCESS_FLAGS
from .audit import audit_record
from .files import stored_files_delete, stored_files_queue
from .ledger import rollups_forget_user

logger = logging.getLogger(__name__)

BUSY = (Job.Status.RUNNING, Job.Status.STORING)
DELETED_ACCOUNT = "(deleted account)"


class AccountDeletionRefused(Exception):
    """The account cannot be deleted now. The message is for the person who asked."""


@dataclass(frozen=True)
class AccountDeletion:
    username: str
    personal_jobs: int  # personal jobs whose files and prompts went
    team_jobs: int  # team jobs they made, left with their teams
    canceled: int  # queued jobs canceled
    files: int  # files deleted from the storage


def account_deletion_refusal(*, user, own: bool = True) -> str | None:
    """Why the account cannot be deleted now, in words for the person at the keyboard (`own`:
    the account's own person; otherwise staff in the admin); None when it can. The same rules
    either way."""
    if settings.BREAK_GLASS_USERNAME and user.get_username() == settings.BREAK_GLASS_USERNAME:
        return (
            "This is the studio's break-glass account (BREAK_GLASS_USERNAME), the one that can "
            "still log in when single sign-on is down. It cannot be deleted while the studio "
            "names it: an operator must name another account first."
        )
    if user.is_superuser:
        others = get_user_model().objects.filter(is_superuser=True, is_active=True)
        if not others.exclude(pk=user.pk).exists():
            return (
                "This is the studio's last superuser account. Make someone else a superuser in "
                "the admin first, so that the studio is not left without one."
            )
    busy = Job.objects.filter(owner=user, status__in=BUSY).count()
    if busy:
        return (
            f"{_videos(busy, own)} {'is' if busy == 1 else 'are'} being made right now. The provider "
            "cannot stop a generation, and what it costs must be recorded first: try again in a "
            "few minutes, once it has finished."
        )
    return None


def account_delete(
    *, user, by=None, address: str | None = None, own: bool = True
) -> AccountDeletion:
    """Delete `user`'s account, or raise AccountDeletionRefused saying why not.

    1. In one transaction, lock the account's row, so two deletions (two tabs, the admin) take
       turns and the second finds nothing; check the refusals (account_deletion_refusal).
       Untie their ledger entries from their name (the ledger keeps them), waiting for any
       verdict in progress on one of them.
    2. Cancel their queued jobs, personal and team, with a conditional UPDATE naming QUEUED, so
       a worker that claimed one first keeps it; then refuse if any of theirs is running or
       storing (a claim may have won the race): a paid call in flight must reach the ledger.
    3. Their personal jobs: collect their files; delete outright those with no ledger entry
       (never sent, so nothing to count), and keep the others as deleted rows, without prompt,
       files, share link or the provider's URL, for their cost.
    4. Their team jobs stay with the team; only what they set up in their own name ends: the
       share links (which nobody else could stop) and the webhook URL of their script.
    5. Record, in each team they were in, that a member left by deleting their account,
       without their name; and the deletion itself, by whom (`by`: staff in the admin, or the
       person), naming no one else (the account's link clears as it goes).
    6. Delete their budgets' daily roll-ups (their budgets go with them; the organization's and
       the teams' stay exact); move their rows of the reviews' roll-up to the deleted
       accounts' (services.ledger.rollups_forget_user; their ledger entries lost their name
       at step 1, before their jobs were touched: the order an admin's verdict locks them in);
       delete their messages in the outbox; then the account itself, which unties the audit trail and their
       team jobs (SET_NULL) and deletes their tokens, memberships, budgets and the rest
       (CASCADE).
    7. After commit, delete the collected files from the storage.
    """
    User = get_user_model()
    with transaction.atomic():
        user = User.objects.select_for_update().filter(pk=user.pk).first()
        if user is None:
            raise AccountDeletionRefused("This account was deleted already.")
        refusal = account_deletion_refusal(user=user, own=own)
        if refusal:
            raise AccountDeletionRefused(refusal)
        # The ledger keeps their entries without their name (and the reviews' roll-ups move
        # their spend to the deleted accounts' rows, below). The entries come first, before
        # their jobs: an admin's verdict on one of them locks the entry, then its job, so a
        # deletion that took the jobs first could wait for the verdict while it waited for
        # the deletion (PostgreSQL ends one of two such transactions: "deadlock detected").
        # This waits for a verdict in progress instead, so the move below sees its addition.
        own_scopes = _own_scopes(user)  # read from their entries' teams, so before the untie
        CostEntry.objects.filter(user=user).update(user=None)
        now = timezone.now()

        canceled = Job.objects.filter(owner=user, status=Job.Status.QUEUED).update(
            status=Job.Status.CANCELED, finished_at=now, cost=0, hold=0
        )
        refusal = account_deletion_refusal(user=user, own=own)
        if refusal:
            raise AccountDeletionRefused(refusal)

        personal = Job.objects.filter(owner=user, team__isnull=True)
        names = [
            field_file.name
            for job in personal.only("pk", "video", "poster", "input_image")
            for field_file in (job.video, job.poster, job.input_image)
            if field_file
        ]
        counted = CostEntry.objects.filter(job_id__in=personal.values("pk")).values("job_id")
        personal_count = personal.count()
        personal.exclude(pk__in=counted).delete()
        personal.filter(deleted_at__isnull=True).update(deleted_at=now)
        personal.update(
            prompt="",
            video="",
            poster="",
            input_image="",
            stored_bytes=0,
            share_token=None,
            provider_url="",
            webhook_url="",
            api_base_url="",
        )

        team_jobs = Job.objects.filter(owner=user, team__isnull=False)
        team_count = team_jobs.count()
        team_jobs.update(share_token=None, webhook_url="", api_base_url="")
        # Their comparisons' and variations' share links end too; a personal group none of
        # whose jobs is left (none was ever charged) goes with them.
        JobGroup.objects.filter(owner=user).update(share_token=None)
        JobGroup.objects.filter(owner=user, team__isnull=True, jobs__isnull=True).delete()

        for membership in Membership.objects.filter(user=user).select_related("team"):
            audit_record(
                action=AuditEvent.Action.MEMBER_REMOVED,
                team=membership.team,
                summary=(
                    f"A {membership.get_role_display().lower()} of the {membership.team.label} "
                    "deleted their account; the videos they made stay with the team"
                ),
                before={"role": membership.role, "source": membership.source},
                address=address,
            )
        audit_record(
            actor=by,
            action=AuditEvent.Action.USER_DELETED,
            summary=("Deleted their own account" if own else "Deleted an account")
            + (" (it was staff)" if user.is_staff else ""),
            before={flag: bool(getattr(user, flag)) for flag in ACCESS_FLAGS},
            address=address,
        )

        # The admin's history of changes to the account names it in each line: keep the
        # lines, not the name (the account's own changes to others go with it, CASCADE).
        LogEntry.objects.filter(
            content_type=ContentType.objects.get_for_model(User), object_id=str(user.pk)
        ).update(object_repr=DELETED_ACCOUNT)
        SpendDay.objects.filter(own_scopes).delete()
        rollups_forget_user(user_id=user.pk)
        OutgoingEmail.objects.filter(user=user).delete()
        username, user_id = user.get_username(), user.pk
        user.delete()  # which clears user.pk

        # Written down with the change, deleted after it: a crash in between leaves the
        # files to the sweeper (services/files.py), never in storage for good.
        deletions = stored_files_queue(names=names)
        transaction.on_commit(lambda: stored_files_delete(deletions=deletions))
    logger.info(
        "account %s deleted: %d personal jobs, %d team jobs left with their teams, %d canceled, "
        "%d files",
        user_id,
        personal_count,
        team_count,
        canceled,
        len(names),
    )
    return AccountDeletion(
        username=username,
        personal_jobs=personal_count,
        team_jobs=team_count,
        canceled=canceled,
        files=len(names),
    )


def _own_scopes(user) -> Q:
    """The roll-up rows of the budgets that are the person's own: personal, theirs in each
    team (past teams too), and their tokens'."""
    tokens = [
        spend_scope(Budget.Level.TOKEN, token_id=pk)
        for pk in user.api_tokens.values_list("pk", flat=True)
    ]
    # Every team their entries were charged to (the member level is rolled up from those).
    teams = CostEntry.objects.filter(user=user, team__isnull=False).values_list("team_id")
    members = [
        spend_scope(Budget.Level.MEMBER, team_id=team_id, user_id=user.pk)
        for team_id in set(teams.values_list("team_id", flat=True))
    ]
    personal = spend_scope(Budget.Level.PERSONAL, user_id=user.pk)
    # The spendday_scope_day unique index answers each scope.
    return Q(scope__in=[personal, *members, *tokens])


def _videos(count: int, own: bool) -> str:
    whose = "your" if own else "its"
    return f"One of {whose} videos" if count == 1 else f"{count} of {whose} videos"
