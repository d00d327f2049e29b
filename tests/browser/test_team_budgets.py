"""A team's manager sets a member's budget in real Chromium, and sees the new figure and when it
resets; a bad amount is refused in words beside the field."""

import re
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from playwright.sync_api import expect

from jobs import periods, services
from jobs.models import Budget
from tests.browser.helpers import log_in
from tests.factories import KLING, make_entry, team_with

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def design(django_user_model):
    """alice manages the Design team ($20 a month); bob, a member, has spent $1.50 in it."""
    alice = django_user_model.objects.create_user("alice", password="alice-password-1")
    bob = django_user_model.objects.create_user("bob", password="bob-password-1")
    team = team_with("Design", managers=[alice], members=[bob])
    services.budget_set(level=Budget.Level.TEAM, team=team, limit=Decimal("20"), changed_by=None)
    make_entry(bob, KLING, "1.50", datetime.now(UTC), team=team)
    return team


def test_a_manager_sets_a_members_budget_and_sees_it_with_its_reset(
    live_server, simulator, design, page, screenshot, violations
):
    log_in(page, live_server)
    page.goto(f"{live_server.url}/teams/{design.pk}/budgets/")
    page.get_by_role("heading", name="Design team: member budgets").wait_for()
    bob = page.get_by_role("row").filter(has=page.get_by_role("rowheader", name="bob"))
    expect(bob).to_contain_text("no limit of their own")

    bob.get_by_label("Budget for bob (USD)").fill("25")
    bob.get_by_role("button", name="Set bob's budget").click()
    bob = page.get_by_role("row").filter(has=page.get_by_role("rowheader", name="bob"))
    expect(bob.get_by_role("alert")).to_contain_text(
        "A member's budget must fit within the team's: Design team has $20"
    )

    bob.get_by_label("Budget for bob (USD)").fill("5")
    bob.get_by_label("Period for bob").select_option(label="ISO week")
    bob.get_by_role("button", name="Set bob's budget").click()

    resets = periods.resets_words(periods.WEEK)
    expect(page.get_by_role("list").filter(has_text="is now")).to_contain_text(
        f"bob's budget in the Design team is now $5.00 per ISO week, $3.50 left, {resets}"
    )
    bob = page.get_by_role("row").filter(has=page.get_by_role("rowheader", name="bob"))
    expect(bob).to_contain_text("$5.00 per ISO week")
    expect(bob).to_contain_text("$3.50 left")
    expect(bob).to_contain_text(re.compile(r"resets in \d+ (day|hour|minute)s?"))
    screenshot("member-budgets")

    page.get_by_role("link", name="Spend review").click()
    page.get_by_role("heading", name="Design team: spend review").wait_for()
    expect(page.get_by_text(re.compile(r"Design team: \$20\.00 per month"))).to_contain_text(
        "$18.50 left"
    )
    expect(
        page.get_by_role("cell", name=re.compile(r"budget in the Design team: no limit"))
    ).to_be_visible()
    assert violations == []
