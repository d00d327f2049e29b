"""A person's own data as one .zip, streamed as it is written (views/account_data.py):

    README.txt        what is in it
    videos/…mp4       their videos, posters/…jpg their first frames, images/… their input images
    data.json         their profile, settings, teams, budgets, tokens, webhooks, emails, the
                      ledger entries in their name and every job they made

Built in the request, not by a task that emails a link: nothing of it is ever stored (no copy of
someone's videos left in a bucket, no link in a mailbox that works for whoever reads it), it
starts at once, and it holds one chunk of memory at a time whatever its size (jobs/zipstream.py),
on local disk and on S3 alike. The price is one web thread busy for as long as the download runs,
as with the gallery's zip. Which jobs are theirs: selectors/personal_data.py.
"""

import json
import logging
import os
from datetime import UTC
from decimal import Decimal

from django.conf import settings
from django.utils import timezone

from jobs.selectors import personal_data
from jobs.views.gallery import zip_entry_name
from jobs.zipstream import ZipStream

logger = logging.getLogger(__name__)

FORMAT = "videostudio-export/1"

README = """\
Everything VideoStudio holds about you, as of {exported_at} (UTC).

videos/   the videos you made that you can still see: your own, and those you made for a team
          you are still in. Named by day, prompt and the start of the job's id.
posters/  the first frame of each of those videos, as the gallery shows it.
images/   the input images you gave for image-to-video jobs.
data.json everything else, in JSON:
          profile, single_sign_on   your account, and the identity provider accounts tied to it
          notification_preferences  what you chose to be emailed about
          teams                     the teams you are in, your role, and your default team
          budgets                   the budgets that apply to you, and what is spent of them
          api_tokens                your API tokens' names, teams, dates and webhook URLs (never
                                    their keys or signing secrets)
          webhook_deliveries        what the studio sent to your tokens' webhooks
          emails                    the messages the studio sent you
          budget_notices            your budgets' 50/80/100% notices
          audit_events              changes an admin or manager made about you
          ledger                    every cost entry in your name, and their total
          jobs                      every job you made, with its files' names in this zip.
                                    A job you made for a team you have left is listed without
                                    its prompt or files: it stays with the team.
Amounts are in US dollars, as strings, to the millionth. Times are in UTC.
"""


def account_export_stream(*, user):
    """Yield the zip, chunk by chunk: the files first, one at a time, then data.json, which
    names the files that made it in (one missing from the storage is left out, and said so)."""
    exported_at = timezone.now()
    stream = ZipStream()
    jobs = personal_data.own_jobs(user=user)
    yield from stream.add_text("README.txt", [README.format(exported_at=_when(exported_at))])
    files_by_job = {}
    taken = set()
    for own in jobs:
        job = own.job
        if not own.visible:
            continue
        base = zip_entry_name(job, taken).removesuffix(".mp4")
        files = {}
        for field, folder, extension in (
            ("video", "videos", ".mp4"),
            ("poster", "posters", ".jpg"),
            ("input_image", "images", None),
        ):
            field_file = getattr(job, field)
            if not field_file:
                continue
            extension = extension or os.path.splitext(field_file.name)[1].lower()
            name = f"{folder}/{base}{extension}"
            try:
                yield from stream.add_stored_file(name, field_file, when=job.created_at)
            except FileNotFoundError:
                logger.warning("job %s: %s %s is missing from storage", job.pk, field, field_file)
                files[field] = None
                continue
            files[field] = name
        files_by_job[job.pk] = files
    pieces = _data_json(user=user, jobs=jobs, files_by_job=files_by_job, at=exported_at)
    yield from stream.add_text("data.json", pieces, when=exported_at)
    yield from stream.close()


def export_file_name(*, user) -> str:
    return f"videostudio-{user.get_username()}-{timezone.localdate().isoformat()}.zip"


# data.json ------------------------------------------------------------------------------------


def _data_json(*, user, jobs, files_by_job, at):
    """data.json in pieces: the small sections at once, the ledger and the jobs one item at a
    time, so a person with a hundred thousand jobs never has them all as text in memory."""
    own_settings = personal_data.settings_of(user=user)
    head = {
        "format": FORMAT,
        "exported_at": _when(at),
        "studio": settings.STUDIO_URL,
        "profile": _profile(user, own_settings),
        "single_sign_on": [
            {
                "issuer": identity.issuer,
                "subject": identity.subject,
                "linked_at": _when(identity.created_at),
                "last_sign_in_at": _when(identity.last_sign_in_at),
            }
            for identity in personal_data.identities_of(user=user)
        ],
        "notification_preferences": _preferences(own_settings["preferences"]),
        "teams": [
            {
                "team": membership.team.name,
                "role": membership.role,
                "added_by": membership.get_source_display(),
                "default": membership.is_default,
                "since": _when(membership.created_at),
            }
            for membership in own_settings["memberships"]
        ],
        "budgets": [_budget(status) for status in own_settings["budgets"]]
        + [_budget(status) for status in own_settings["token_budgets"].values()],
        "api_tokens": [
            {
                "name": token.name,
                "team": token.team.name if token.team else None,
                "created_at": _when(token.created_at),
                "last_used_at": _when(token.last_used_at),
                "revoked_at": _when(token.revoked_at),
                "webhook_url": token.webhook_url or None,
            }
            for token in own_settings["tokens"]
        ],
        "webhook_deliveries": [
            {
                "token": delivery.token.name,
                "event": delivery.event,
                "job": _id(delivery.job_id),
                "url": delivery.url,
                "status": delivery.status,
                "attempts": delivery.attempts,
                "created_at": _when(delivery.created_at),
                "delivered_at": _when(delivery.delivered_at),
            }
            for delivery in personal_data.deliveries_of(user=user)
        ],
        "emails": [
            {
                "to": email.to,
                "subject": email.subject,
                "status": email.status,
                "created_at": _when(email.created_at),
                "sent_at": _when(email.sent_at),
            }
            for email in personal_data.emails_to(user=user)
        ],
        "budget_notices": [
            {
                "budget": notice.get_level_display(),
                "team": notice.team.name if notice.team else None,
                "threshold_percent": notice.threshold,
                "limit": _usd(notice.limit),
                "spent": _usd(notice.spent),
                "period_start": notice.period_start.isoformat(),
                "created_at": _when(notice.created_at),
            }
            for notice in personal_data.budget_notices_for(user=user)
        ],
        "audit_events": [
            {
                "action": event.action,
                "team": event.team.name if event.team else None,
                "summary": _event_text(event),
                "before": event.before,
                "after": event.after,
                "created_at": _when(event.created_at),
            }
            for event in personal_data.audit_events_about(user=user)
        ],
    }
    text = json.dumps(head, indent=1, ensure_ascii=False)
    yield text[:-2]  # the object without its closing "\n}", to go on with the long sections
    yield ',\n "ledger": {\n  "total_cost": '
    yield json.dumps(_usd(personal_data.ledger_total_naming(user=user)))
    yield ',\n  "entries": ['
    entries = personal_data.ledger_entries_naming(user=user).iterator(chunk_size=2000)
    for count, entry in enumerate(entries):
        yield ("," if count else "") + "\n   " + json.dumps(_entry(entry), ensure_ascii=False)
    yield '\n  ]\n },\n "jobs": ['
    for count, own in enumerate(jobs):
        record = _job(own, files_by_job.get(own.job.pk))
        yield ("," if count else "") + "\n  " + json.dumps(record, ensure_ascii=False)
    yield "\n ]\n}\n"


def _profile(user, own_settings) -> dict:
    return {
        "username": user.get_username(),
        "email": user.email or None,
        "email_confirmed": own_settings["email_verified"],
        "first_name": user.first_name,
        "last_name": user.last_name,
        "joined_at": _when(user.date_joined),
        "last_login_at": _when(user.last_login),
        "active": user.is_active,
        "staff": user.is_staff,
        "superuser": user.is_superuser,
        "has_password": user.has_usable_password(),
    }


def _preferences(preferences) -> dict:
    names = (
        "job_ready",
        "job_failed",
        "budget_own",
        "budget_teams",
        "budget_organization",
        "unknown_summary",
        "weekly_digest",
    )
    chosen = {name: getattr(preferences, name) for name in names}
    chosen["saved_at"] = _when(preferences.updated_at) if preferences.pk else None
    return chosen


def _budget(status) -> dict:
    return {
        "budget": status.label,
        "limit": _usd(status.limit),
        "period": status.period,
        "spent_this_period": _usd(status.spent),
        "held_by_jobs_in_flight": _usd(status.held),
    }


def _entry(entry) -> dict:
    return {
        "job": _id(entry.job_id),
        "created_at": _when(entry.created_at),
        "model": entry.model,
        "team": entry.team.name if entry.team else None,
        "outcome": entry.outcome,
        "cost": _usd(entry.cost),
        "possible_cost": _usd(entry.possible_cost),
        "reconciliation": entry.reconciliation or None,
        "reconciled_at": _when(entry.reconciled_at),
    }


def _job(own, files) -> dict:
    job = own.job
    record = {
        "id": _id(job.pk),
        "created_at": _when(job.created_at),
        "started_at": _when(job.started_at),
        "finished_at": _when(job.finished_at),
        "status": job.status,
        "model": job.model,
        "size": job.size,
        "seconds": job.seconds,
        "response_format": job.response_format,
        "team": job.team.name if job.team else None,
        "api_token": job.token.name if job.token else None,
        "cost": _usd(job.cost),
        "possible_cost": _usd(job.possible_cost),
        "outcome_unknown": job.outcome_unknown,
        "error": job.error or None,
        "latency_ms": job.latency_ms,
        "shared_by_link": bool(job.share_token),
        "deleted_at": _when(job.deleted_at),
    }
    if own.visible:
        record["prompt"] = job.prompt
        record["files"] = files or {}
    else:
        record["note"] = (
            "Deleted: its files and prompt are gone; its cost stays counted."
            if job.deleted_at
            else f"Made for the {job.team.label}, which you have left: the video stays with the "
            "team, and its prompt and files are not part of your export."
        )
    return record


def _when(moment) -> str | None:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ") if moment else None


def _usd(amount) -> str | None:
    return None if amount is None else str(Decimal(amount).quantize(Decimal("0.000001")))


def _id(value) -> str | None:
    return str(value) if value is not None else None


def _event_text(event) -> str:
    """An audit event's summary with the person's own name in it, and whoever made the change
    left unnamed: that is another person."""
    try:
        return event.summary.format_map({"user": event.user_name, "actor": "someone"})
    except (KeyError, ValueError, IndexError, AttributeError):
        return event.summary  # a row from before the placeholders, with a brace of its own
