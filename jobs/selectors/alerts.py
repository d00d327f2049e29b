"""Who hears about what, read-only: a person's alert preferences (saved or the defaults), which
choices they are offered, the people a budget notice concerns, and the figures of the weekly
digest and the daily unknown-outcome summary. The emails are queued by services/alerts.py."""

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

from django.conf import settings
from django.contrib.auth import get_user_model

from jobs.models import AlertPreferences, Budget, BudgetNotice, CostEntry, Membership, Team

from .review import ledger_for_period, spend_by_day_and_model, spend_by_user, spend_totals

TOP_SHOWN = 5  # models and members listed in a digest
UNKNOWN_LISTED = 20  # jobs listed in the daily summary; the rest are counted


def alert_preferences_for(user) -> AlertPreferences:
    """The user's saved choices, or (unsaved) the defaults: every alert on, the digest off."""
    saved = AlertPreferences.objects.filter(user=user).first()
    return saved if saved is not None else AlertPreferences(user=user)


def alert_preferences_loaded(user) -> AlertPreferences:
    """As alert_preferences_for, for a user read with select_related("alert_preferences"):
    no query."""
    try:
        return user.alert_preferences
    except AlertPreferences.DoesNotExist:
        return AlertPreferences(user=user)


def alert_preferences_of(user_ids) -> dict[int, AlertPreferences]:
    """{user id: preferences} for many people at once, the defaults for those with no row."""
    saved = {p.user_id: p for p in AlertPreferences.objects.filter(user_id__in=list(user_ids))}
    return {pk: saved.get(pk) or AlertPreferences(user_id=pk) for pk in user_ids}


def teams_managed(user) -> list[Team]:
    return list(
        Team.objects.filter(
            memberships__user=user, memberships__role=Membership.Role.MANAGER
        ).order_by("name")
    )


@dataclass(frozen=True)
class AlertOffer:
    """The choices the preferences page offers this person (the rest are not theirs to make)."""

    managed_teams: list
    is_staff: bool
    # Retention deletes videos somewhere they make them: the studio's RETENTION_DAYS, or one of
    # their teams' own retention.
    expiry_warning: bool = False

    @property
    def budget_teams(self) -> bool:
        return bool(self.managed_teams)

    @property
    def budget_organization(self) -> bool:
        return self.is_staff

    @property
    def unknown_summary(self) -> bool:
        return self.is_staff

    @property
    def weekly_digest(self) -> bool:
        return self.is_staff or bool(self.managed_teams)


def alert_offer_for(user) -> AlertOffer:
    return AlertOffer(
        managed_teams=teams_managed(user),
        is_staff=user.is_staff,
        expiry_warning=retention_applies_to(user),
    )


def retention_applies_to(user) -> bool:
    """Whether retention may delete videos the user makes: the studio's RETENTION_DAYS for
    personal videos (and teams that follow it), or a team of theirs with its own retention."""
    teams = Team.objects.filter(memberships__user=user)
    if settings.RETENTION_DAYS is not None:
        return not settings.TEAM_REQUIRED or teams.exclude(retention_days=0).exists()
    return teams.filter(retention_days__gt=0).exists()


# Budget notices ---------------------------------------------------------------------------------

OWN, MANAGER, STAFF = "own", "manager", "staff"  # why a person hears about a notice


def budget_notice_recipients(notice: BudgetNotice) -> list[tuple]:
    """[(user, why)] for one notice, each person once, active people only, per their choices:

    - personal and API-token budgets: their owner ("own");
    - a member's budget in a team: the member, while still in the team ("own"), and the team's
      managers ("manager"; a manager whose own budget it is hears it once, as theirs);
    - a team's budget: its managers ("manager");
    - the organization's: staff ("staff").
    """
    User = get_user_model()
    people: dict[int, str] = {}
    level = notice.level
    if level in (Budget.Level.PERSONAL, Budget.Level.TOKEN) and notice.user_id:
        people[notice.user_id] = OWN
    still_member = Membership.objects.filter(team_id=notice.team_id, user_id=notice.user_id)
    if level == Budget.Level.MEMBER and notice.user_id and still_member.exists():
        people[notice.user_id] = OWN
    if level in (Budget.Level.TEAM, Budget.Level.MEMBER) and notice.team_id:
        managers = Membership.objects.filter(
            team_id=notice.team_id, role=Membership.Role.MANAGER
        ).values_list("user_id", flat=True)
        for pk in managers:
            people.setdefault(pk, MANAGER)
    if level == Budget.Level.ORGANIZATION:
        for pk in User.objects.filter(is_staff=True).values_list("pk", flat=True):
            people[pk] = STAFF
    if not people:
        return []
    wants = alert_preferences_of(people)
    choice = {OWN: "budget_own", MANAGER: "budget_teams", STAFF: "budget_organization"}
    users = User.objects.filter(pk__in=list(people), is_active=True).order_by("pk")
    return [(u, people[u.pk]) for u in users if getattr(wants[u.pk], choice[people[u.pk]])]


def budget_notice_superseded(notice: BudgetNotice) -> bool:
    """Whether a higher threshold of the same budget and period is recorded already (the
    budgetnotice_once constraint's index)."""
    return BudgetNotice.objects.filter(
        budget_id=notice.budget_id,
        period_start=notice.period_start,
        threshold__gt=notice.threshold,
    ).exists()


def budget_notices_not_emailed(*, limit: int):
    """The ids of notices whose emails are not queued yet, oldest first (the partial index
    budgetnotice_not_emailed)."""
    return list(
        BudgetNotice.objects.filter(emailed_at__isnull=True)
        .order_by("created_at", "pk")
        .values_list("pk", flat=True)[:limit]
    )


# The daily summary and the weekly digest ---------------------------------------------------------


def staff_with_address() -> list:
    """Active staff with an email address, in a fixed order."""
    staff = get_user_model().objects.filter(is_staff=True, is_active=True).exclude(email="")
    return list(staff.order_by("pk"))


def staff_for(choice: str) -> list:
    """Active staff with an address who keep `choice` on."""
    staff = staff_with_address()
    wants = alert_preferences_of([u.pk for u in staff])
    return [u for u in staff if getattr(wants[u.pk], choice)]


def unknown_outcomes_to_check() -> tuple[int, Decimal, list[CostEntry]]:
    """(count, possible cost in all, the newest UNKNOWN_LISTED) of the unknown-outcome entries
    no admin has marked yet (the cost_pending partial index)."""
    from django.db.models import Count, Sum

    from .review import unknown_outcomes

    pending = unknown_outcomes(CostEntry.objects.all(), pending_only=True)
    figures = pending.order_by().aggregate(count=Count("id"), total=Sum("possible_cost"))
    return figures["count"], figures["total"] or Decimal(0), list(pending[:UNKNOWN_LISTED])


def iso_week_before(today: date) -> tuple[date, str]:
    """The Monday of the last whole ISO week before `today`, and its name ("2026-W48")."""
    monday = today - timedelta(days=today.weekday() + 7)
    year, week, _ = monday.isocalendar()
    return monday, f"{year}-W{week:02d}"


@dataclass(frozen=True)
class DigestSection:
    """One scope's week: the organization, or one team."""

    title: str
    total: Decimal
    count: int
    pending: Decimal
    previous: Decimal
    models: list[dict]
    members: list[dict]
    link_path: str

    @property
    def change(self) -> Decimal:
        return self.total - self.previous

    @property
    def change_words(self) -> str:
        """ "up $1.20 (+25%) on the week before", "down $0.40 (-10%)...", "the same as..." """
        if self.change == 0:
            return "the same as the week before"
        direction = "up" if self.change > 0 else "down"
        words = f"{direction} ${abs(self.change):.2f}"
        if self.previous:
            words += f" ({self.change * 100 / self.previous:+.0f}%)"
        return f"{words} on the week before (${self.previous:.2f})"


def digest_section(*, monday: date, team: Team | None, title: str, link_path: str):
    """The week from `monday` (UTC) for the whole studio or for one team, and the week before,
    from the review's own selectors (one aggregate query each)."""
    start = datetime.combine(monday, time.min, tzinfo=UTC)
    end = start + timedelta(days=7)
    entries = ledger_for_period(start=start, end=end, team=team)
    totals = spend_totals(entries)
    previous = spend_totals(
        ledger_for_period(start=start - timedelta(days=7), end=start, team=team)
    )
    _, models = spend_by_day_and_model(entries, first_day=monday, last_day=monday + timedelta(6))
    members = spend_by_user(entries)

    def top(rows):
        return sorted(rows, key=lambda r: (-r["total"], -r["count"]))[:TOP_SHOWN]

    return DigestSection(
        title=title,
        total=totals["total"],
        count=totals["count"],
        pending=totals["pending"],
        previous=previous["total"],
        models=top(models),
        members=top(members),
        link_path=link_path,
    )
