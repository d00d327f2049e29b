"""The notification-settings form: one checkbox per alert the person is offered. Kept apart
from forms.py, as the gallery's forms are, so each page's form reads on its own."""

from django import forms

from jobs.selectors.alerts import AlertOffer

LABELS = {
    "job_ready": "Email me when a video of mine is ready",
    "job_failed": "Email me when a video of mine fails",
    "expiry_warning": "Email me before videos of mine expire",
    "budget_own": "My own budgets: personal, in my teams, and my API tokens'",
    "budget_teams": "The teams I manage: the team's budget and each member's",
    "budget_organization": "The organization's budget",
    "unknown_summary": "A daily list of jobs that may have been charged, when there are any",
    "weekly_digest": "A weekly spend digest, on Mondays",
}
HELP = {
    "job_ready": "Videos made here and through your API tokens alike. Never for one you cancel.",
    "expiry_warning": "Seven days before the studio deletes them (retention), unless they are "
    "starred. One email a day at most, at 08:00 UTC.",
    "budget_own": "When one reaches 50%, 80% and 100% of its limit.",
    "unknown_summary": "Jobs whose outcome is unknown, to check against ImageRouter's logs. "
    "Sent at 08:00 UTC.",
    "weekly_digest": "Total, top models, top members and the change from the week before, "
    "for the week just ended. Sent at 08:00 UTC.",
}
VIDEOS = ("job_ready", "job_failed", "expiry_warning")
BUDGETS = ("budget_own", "budget_teams", "budget_organization")
REPORTS = ("unknown_summary", "weekly_digest")


class AlertPreferencesForm(forms.Form):
    """The person's choices; only the fields `offer` allows are on the form (and saved)."""

    def __init__(self, *args, offer: AlertOffer, **kwargs):
        super().__init__(*args, **kwargs)
        offered = [*VIDEOS, "budget_own"] + [
            name
            for name in ("budget_teams", "budget_organization", *REPORTS)
            if getattr(offer, name)
        ]
        if not offer.expiry_warning:  # nothing of theirs ever expires
            offered.remove("expiry_warning")
        for name in offered:
            self.fields[name] = forms.BooleanField(
                label=LABELS[name], required=False, help_text=HELP.get(name, "")
            )
        if offer.budget_teams:
            teams = ", ".join(team.label for team in offer.managed_teams)
            self.fields["budget_teams"].help_text = f"You manage: {teams}."

    def groups(self):
        """(heading, [bound fields]) for each part of the page that has fields."""
        parts = (("Videos", VIDEOS), ("Budget alerts", BUDGETS), ("Reports", REPORTS))
        for heading, names in parts:
            fields = [self[name] for name in names if name in self.fields]
            if fields:
                yield heading, fields
