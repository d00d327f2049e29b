"""A staff member opens the cost review from the admin, in real Chromium."""

import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from jobs import selectors
from tests.factories import KLING, VEO, make_entry

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def ledger(django_user_model):
    """This month: alice $0.75 over two days, bob $0.60 and an unknown outcome of up to $0.50."""
    alice = django_user_model.objects.create_user("alice", password="alice-password-1")
    bob = django_user_model.objects.create_user("bob", password="bob-password-1")
    start = selectors.month_start() + timedelta(minutes=1)
    today = datetime.now(UTC)
    make_entry(alice, KLING, "0.50", start)
    make_entry(alice, KLING, "0.25", today)
    make_entry(bob, VEO, "0.60", today)
    make_entry(bob, KLING, "0", today, outcome="unknown", possible=Decimal("0.50"))


def test_staff_open_the_cost_review_from_the_admin(
    live_server, simulator, ledger, page, screenshot, django_user_model
):
    django_user_model.objects.create_superuser("root", password="root-password-1")

    page.goto(live_server.url + "/admin/")
    page.get_by_label("Username").fill("root")
    page.get_by_label("Password").fill("root-password-1")
    page.get_by_role("button", name="Log in").click()
    page.get_by_role("link", name="Cost review").click()

    page.get_by_role("heading", name="Cost review").wait_for()
    chart = page.get_by_role("img", name=re.compile(r"^Spend per day"))
    assert chart.is_visible()
    assert chart.locator("rect").count() == datetime.now(UTC).day
    summary = page.get_by_text("Spent in this period:")
    assert summary.is_visible()
    assert "$1.35 on 4 jobs" in summary.inner_text()
    by_user = page.get_by_role("table").filter(has=page.get_by_role("columnheader", name="User"))
    assert by_user.get_by_role("row", name=re.compile(r"^Total \(2 users\) 4 \$1\.35")).is_visible()
    screenshot("cost-review")

    by_user.get_by_role("link", name="alice").click()
    page.get_by_text("User alice: $0.75 on 2 jobs").wait_for()

    page.get_by_role("link", name="Reconciliation").click()
    page.get_by_role("heading", name="Unknown outcomes to check in this period").wait_for()
    page.get_by_role("button", name="Mark not charged").click()
    page.get_by_text(re.compile(r"Marked job .* not charged; it now counts \$0\.00")).wait_for()
    page.get_by_role("link", name="Show the checked ones too").click()
    page.get_by_text("Checked: not charged").wait_for()
    screenshot("reconciliation")
