"""Charge to in real Chromium: choosing where a video is charged changes the models offered and
the budgets shown (with when each resets) without a reload, the video lands in the team chosen,
and a refusal names the level that is short."""

import re
from decimal import Decimal

import pytest
from playwright.sync_api import expect

from jobs import services
from jobs.models import Budget, Job
from tests.browser.helpers import log_in
from tests.factories import KLING, TEST_MODEL, VEO, set_budget, team_with

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def design(alice):
    """Alice's default team: the free test model and Kling only, $5.00 a month."""
    team = team_with("Design", members=[alice], models=[TEST_MODEL, KLING], limit="5.00")
    set_budget(alice, "3.00")
    return team


def models_offered(page):
    return page.get_by_label("Model").locator("option")


def test_choosing_where_to_charge_changes_the_models_and_budgets_and_the_video_lands_there(
    live_server, simulator, catalog, alice, design, page, screenshot, violations
):
    log_in(page, live_server)
    charge_to = page.get_by_label("Charge to")
    expect(charge_to).to_have_value(str(design.pk))
    expect(models_offered(page)).to_have_count(2)
    expect(
        page.get_by_text(re.compile(r"^Design team: \$5\.00 left this month, resets in \d+ day"))
    ).to_be_visible()
    page.evaluate("() => { window.notReloaded = true }")

    charge_to.select_option(label="Personal")
    expect(page.get_by_label("Model").locator(f'option[value="{VEO}"]')).to_have_count(1)
    expect(
        page.get_by_text(re.compile(r"^You have \$3\.00 left this month, resets in "))
    ).to_be_visible()
    expect(page.get_by_text("Design team:")).to_have_count(0)
    page.get_by_label("Model").select_option(VEO)
    screenshot("personal")

    charge_to.select_option(label="Design")
    # Veo is not on the team's list: the model falls back to the team's first, the free one.
    expect(models_offered(page)).to_have_count(2)
    expect(page.get_by_label("Model")).to_have_value(TEST_MODEL)
    expect(page.get_by_text(re.compile(r"^Design team: \$5\.00 left"))).to_be_visible()
    assert page.evaluate("() => window.notReloaded") is True

    page.get_by_label("Prompt").fill("a lighthouse in a storm")
    page.get_by_role("button", name="Generate").click()
    page.wait_for_url("**/jobs/*-*/")
    job = Job.objects.get(owner=alice)
    assert job.team == design and job.model == TEST_MODEL
    assert violations == []


def test_a_refusal_names_the_level_that_is_short(
    live_server, simulator, catalog, alice, design, page, violations
):
    services.budget_set(
        level=Budget.Level.TEAM, team=design, limit=Decimal("0.40"), changed_by=None
    )
    log_in(page, live_server)

    page.get_by_label("Model").select_option(KLING)
    warning = page.get_by_role("alert")
    expect(warning).to_contain_text(
        "This model can cost up to $0.50, more than Design team has left this month"
    )
    page.get_by_label("Prompt").fill("a lighthouse in a storm")
    page.get_by_role("button", name="Generate").click()

    expect(
        page.get_by_text(
            "Design team has $0.40 left this month; this video could cost up to $0.50."
        )
    ).to_be_visible()
    assert not Job.objects.exists()
    assert violations == []
