"""Who is told about what, by email: the events of the studio turned into queued messages
(services/mail.py). Each message's key names its event and its recipient, so an event reported
twice, or by racing workers, tells each person once. Who is concerned, and what they chose, is
read in selectors/alerts.py; the choices are saved here (the notification-settings page)."""

import logging
from datetime import timedelta
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone

from jobs import periods
from jobs.models import AlertPreferences, Budget, BudgetNotice, Job, Membership, Notice
from jobs.selectors import alerts as who

from .mail import email_queue

logger = logging.getLogger(__name__)

NOTICES_BATCH = 200  # budget notices emailed per call; the sweeper takes the rest next minute
PROMPT_SHOWN = 120  # characters of a prompt quoted in a subject or a line


def _settings_path() -> str:
    return reverse("notification_settings")


def staff_alert_out_of_credit(*, notice: Notice) -> int:
    """Email every active staff member with an address: the provider says the account's credit
    is exhausted, so every generation fails until someone tops it up. Called in the notice's
    own transaction; one message per notice and person. Returns how many were queued."""
    queued = 0
    for person in who.staff_with_address():
        queued += bool(
            email_queue(
                key=f"out-of-credit:{notice.pk}:{person.pk}",
                to=person.email,
                user=person,
                subject="ImageRouter is out of credit: generations are failing",
                template="out_of_credit",
                context={
                    "person": person,
                    "notice": notice,
                    "notices_path": reverse("admin:jobs_notice_changelist"),
                },
            )
        )
    return queued


def staff_alert_provider_cap(*, notice: Notice) -> int:
    """Email every active staff member with an address: a provider key's cap refused a call the
    studio's own budget allowed, so the studio's accounting and the provider's disagree. Called
    in the notice's own transaction; one message per notice and person."""
    queued = 0
    for person in who.staff_with_address():
        queued += bool(
            email_queue(
                key=f"provider-cap:{notice.pk}:{person.pk}",
                to=person.email,
                user=person,
                subject="ImageRouter's cap refused a video the studio's budget allowed",
                template="provider_cap",
                context={
                    "person": person,
                    "notice": notice,
                    "notices_path": reverse("admin:jobs_notice_changelist"),
                    "reconciliation_path": reverse("costs:reconciliation"),
                },
            )
        )
    return queued


# The notification-settings page ------------------------------------------------------------------


def alert_preferences_save(*, user, choices: dict[str, bool]) -> AlertPreferences:
    """Save the choices the page offered `user` (the others keep their value), making the row
    the first time."""
    fields = {f.name for f in AlertPreferences._meta.get_fields()} - {"id", "user", "updated_at"}
    chosen = {name: bool(value) for name, value in choices.items() if name in fields}
    preferences, _ = AlertPreferences.objects.update_or_create(user=user, defaults=chosen)
    return preferences


# A job reached its end -----------------------------------------------------------------------------


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= PROMPT_SHOWN else text[: PROMPT_SHOWN - 1] + "…"


def job_alert_ended(*, job_id) -> bool:
    """Email a job's owner that it succeeded or failed, if they want to hear it. Called inside
    the transaction of the conditional UPDATE that ended the job, after it changed the row, so
    the message is queued with the transition or not at all; the key "job-<status>:<id>" makes
    a second report one message. A canceled job is the owner's own doing: no email. Jobs made
    through an API token are emailed as any other, by the same choices.

    1. Read the job as the transition left it, with its owner and their choices, in one
       statement (it runs inside every store's transaction).
    2. Stop if it is not SUCCEEDED or FAILED, the owner is inactive or gone, or switched this
       off.
    3. Queue the message, with a link to the job's page and to the settings.
    """
    read_with = ("owner", "owner__alert_preferences", "team", "token")
    job = Job.objects.select_related(*read_with).get(pk=job_id)
    if job.status not in (Job.Status.SUCCEEDED, Job.Status.FAILED):
        return False
    if job.owner is None or not job.owner.is_active:  # None: they deleted their account
        return False
    wants = who.alert_preferences_loaded(job.owner)
    ready = job.status == Job.Status.SUCCEEDED
    if not (wants.job_ready if ready else wants.job_failed):
        return False
    prompt = _short(job.prompt) or job.model
    subject = f"Your video is ready: {prompt}" if ready else f"Your video failed: {prompt}"
    return bool(
        email_queue(
            key=f"job-{job.status}:{job.pk}",
            to=job.owner.email,
            user=job.owner,
            subject=subject[:300],
            template="job_ready" if ready else "job_failed",
            context={
                "person": job.owner,
                "job": job,
                "prompt": prompt,
                "job_path": reverse("jobs:detail", args=[job.pk]),
                "settings_path": _settings_path(),
            },
        )
    )


# Budget threshold notices --------------------------------------------------------------------------

PERIOD_ADJECTIVES = {periods.DAY: "daily", periods.WEEK: "weekly", periods.MONTH: "monthly"}


def budget_notice_words(notice: BudgetNotice, *, reader, why: str, today=None) -> dict:
    """The notice as `reader` reads it: {"subject", "sentence", "link_path", "why", "refused"}.
    For example "Design team has used 80% of its $20.00 monthly budget ($16.40 spent); resets
    in 3 days, on 1 Jan."."""
    budget = notice.budget
    adjective = PERIOD_ADJECTIVES[notice.period]
    level = notice.level
    if level == Budget.Level.ORGANIZATION:
        name, whose, what = "The organization", "its", f"{adjective} organization budget"
    elif level == Budget.Level.TEAM:
        name, whose, what = notice.team.label, "its", f"{adjective} budget"
    elif level == Budget.Level.MEMBER and reader.pk == notice.user_id:
        name, whose, what = "You", "your", f"{adjective} budget in the {notice.team.label}"
    elif level == Budget.Level.MEMBER:
        name, whose = budget.user.get_username(), "their"
        what = f"{adjective} budget in the {notice.team.label}"
    elif level == Budget.Level.TOKEN:
        name, whose, what = f"Your API token “{budget.token.name}”", "its", f"{adjective} budget"
    else:
        name, whose, what = "You", "your", f"{adjective} personal budget"
    has = "have" if name == "You" else "has"
    share = "all" if notice.threshold >= 100 else f"{notice.threshold}%"
    today = today or periods.utc_today()
    ends = periods.period_end(notice.period, notice.period_start)
    if ends > today:
        resets = periods.resets_words(notice.period)
    else:
        resets = f"that {notice.get_period_display()} ended on {ends.day} {ends:%b}"
    sentence = (
        f"{name} {has} used {share} of {whose} ${notice.limit:.2f} {what} "
        f"(${Decimal(notice.spent):.2f} spent); {resets}."
    )
    if level == Budget.Level.ORGANIZATION:
        link_path = reverse("costs:review")
    elif why == who.MANAGER:
        link_path = reverse("teams:review", args=[notice.team.pk])
    elif level == Budget.Level.TOKEN:
        link_path = reverse("api_tokens")
    else:
        link_path = reverse("spending")
    reasons = {
        who.OWN: "it is about your own budget",
        who.MANAGER: f"you manage the {notice.team.label}" if notice.team_id else "",
        who.STAFF: "you are staff and it is about the organization's budget",
    }
    return {
        "subject": f"{name} {has} used {share} of {whose} {what}",
        "sentence": sentence,
        "link_path": link_path,
        "why": reasons[why],
        "refused": notice.threshold >= 100,
    }


def budget_notices_email(*, limit: int = NOTICES_BATCH) -> int:
    """Queue the emails of every budget notice not emailed yet: one message per notice and
    person ("budget-notice:<notice>:<user>"), except for a notice a higher threshold of the
    same budget and period has already overtaken (crossed at once, or before this one was
    emailed), which would only repeat it. Called on commit after notices_record inserted
    rows, and by the sweeper for rows whose hook was lost (a worker died between the commit
    and the hook). Returns how many messages were queued.

    1. Take the notices with no `emailed_at`, oldest first.
    2. For each, in one transaction: claim it (a conditional UPDATE of `emailed_at`; only the
       caller that changed the row goes on), then queue a message to each person concerned who
       wants it. A failure rolls the claim back, for the next sweep.
    """
    queued = 0
    for pk in who.budget_notices_not_emailed(limit=limit):
        try:
            with transaction.atomic():
                claimed = BudgetNotice.objects.filter(pk=pk, emailed_at__isnull=True).update(
                    emailed_at=timezone.now()
                )
                if not claimed:
                    continue
                notice = BudgetNotice.objects.select_related(
                    "budget__user", "budget__token", "team"
                ).get(pk=pk)
                queued += _budget_notice_queue(notice)
        except Exception:
            logger.exception("budget notice %s: emails not queued; the sweeper tries again", pk)
    return queued


def _budget_notice_queue(notice: BudgetNotice) -> int:
    if who.budget_notice_superseded(notice):
        return 0  # one settlement crossed 50% and 80% at once: the 80% email says it all
    queued = 0
    for person, why in who.budget_notice_recipients(notice):
        words = budget_notice_words(notice, reader=person, why=why)
        queued += bool(
            email_queue(
                key=f"budget-notice:{notice.pk}:{person.pk}",
                to=person.email,
                user=person,
                subject=words["subject"],
                template="budget_notice",
                context={"person": person, **words, "settings_path": _settings_path()},
            )
        )
    return queued


# Scheduled: the daily summary for staff and the weekly digest -------------------------------------


def staff_unknown_summary_send(*, day=None) -> int:
    """The daily email to staff (who keep it on) listing the unknown-outcome jobs still to
    check. None to check: no email. One per day and person ("unknown-summary:<date>:<user>"),
    so a beat that fires twice sends once. Returns how many were queued."""
    day = day or periods.utc_today()
    count, possible, entries = who.unknown_outcomes_to_check()
    if not count:
        return 0
    queued = 0
    for person in who.staff_for("unknown_summary"):
        queued += bool(
            email_queue(
                key=f"unknown-summary:{day.isoformat()}:{person.pk}",
                to=person.email,
                user=person,
                subject=(
                    f"{count} job{'s' if count != 1 else ''} may have been charged: "
                    "please check with ImageRouter"
                ),
                template="unknown_summary",
                context={
                    "person": person,
                    "count": count,
                    "possible": possible,
                    "entries": entries,
                    "more": count - len(entries),
                    "reconciliation_path": reverse("costs:reconciliation"),
                    "settings_path": _settings_path(),
                },
            )
        )
    return queued


def weekly_digests_send(*, today=None) -> int:
    """The weekly spend digest of the last whole ISO week (Monday to Sunday, UTC), to each
    manager and staff member who opted in: a section for the organization (staff) and one for
    each team they manage. One per week and person ("digest:<iso week>:<user>"), so a beat that
    fires twice sends once. Returns how many were queued."""
    monday, week = who.iso_week_before(today or periods.utc_today())
    User = get_user_model()
    managers = Membership.objects.filter(role=Membership.Role.MANAGER).values("user_id")
    people = list(
        User.objects.filter(is_active=True)
        .exclude(email="")
        .filter(Q(is_staff=True) | Q(pk__in=managers))
        .order_by("pk")
    )
    # The reviews open on the same week (their period chooser's GET parameters).
    the_week = f"?from={monday.isoformat()}&to={(monday + timedelta(days=6)).isoformat()}"
    wants = who.alert_preferences_of([p.pk for p in people])
    sections_of_teams: dict = {}
    organization = None
    queued = 0
    for person in people:
        if not wants[person.pk].weekly_digest:
            continue
        sections = []
        if person.is_staff:
            organization = organization or who.digest_section(
                monday=monday,
                team=None,
                title="The organization",
                link_path=reverse("costs:review") + the_week,
            )
            sections.append(organization)
        for team in who.teams_managed(person):
            if team.pk not in sections_of_teams:
                sections_of_teams[team.pk] = who.digest_section(
                    monday=monday,
                    team=team,
                    title=team.label,
                    link_path=reverse("teams:review", args=[team.pk]) + the_week,
                )
            sections.append(sections_of_teams[team.pk])
        if not sections:
            continue
        queued += bool(
            email_queue(
                key=f"digest:{week}:{person.pk}",
                to=person.email,
                user=person,
                subject=f"Spend in the week of {monday.day} {monday:%b %Y}: "
                + ", ".join(f"{s.title} ${s.total:.2f}" for s in sections)[:200],
                template="weekly_digest",
                context={
                    "person": person,
                    "week": week,
                    "monday": monday,
                    "sunday": monday + timedelta(days=6),
                    "sections": sections,
                    "settings_path": _settings_path(),
                },
            )
        )
    return queued
