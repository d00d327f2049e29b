"""Team videos in real Chromium: a teammate finds a colleague's video from the Teams menu,
searches for it and plays it; once removed from the team, they find nothing. All under the CSP."""

import pytest
from playwright.sync_api import expect

from jobs import services
from tests.browser.helpers import log_in
from tests.factories import filed_job, stored_job, team_with

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def card_titles(page):
    return page.get_by_role("region", name="Videos").get_by_role("heading", level=2)


def test_a_teammate_finds_searches_and_plays_a_colleagues_video_until_removed(
    live_server, simulator, catalog, page, screenshot, violations, alice, bob
):
    design = team_with("Design", members=[alice, bob])
    heron = stored_job(alice, "a heron lands on the harbour wall", team=design)
    filed_job(bob, "a fox crossing a snowy road", team=design)
    log_in(page, live_server, "bob", "bob-password-1")

    page.get_by_text("Teams", exact=True).click()
    page.get_by_role("link", name="Design team videos").click()
    page.wait_for_url(f"**/teams/{design.pk}/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Design team videos")
    expect(card_titles(page)).to_have_count(2)
    screenshot("team-videos")

    page.get_by_label("Search prompts").fill("heron")
    expect(card_titles(page)).to_have_text(["a heron lands on the harbour wall"])
    card = page.locator(f"#card-{heron.pk}")
    expect(card).to_contain_text("Made by alice")

    card.get_by_role("link", name="a heron lands on the harbour wall", exact=True).click()
    page.wait_for_url(f"**/jobs/{heron.pk}/")
    expect(page.get_by_role("heading", level=1)).to_have_text("A video by alice")
    page.wait_for_function(
        "() => { const v = document.querySelector('video'); return v && v.duration > 0 }"
    )
    page.evaluate("() => { const v = document.querySelector('video'); v.muted = true; v.play() }")
    page.wait_for_function("() => document.querySelector('video').currentTime > 0")
    # A teammate looks; deleting and re-running are alice's.
    expect(page.get_by_role("link", name="Delete…")).to_have_count(0)
    expect(page.get_by_role("link", name="Generate again")).to_have_count(0)

    services.membership_remove(team=design, user=bob, by=None)

    page.reload()
    expect(page.get_by_role("heading", level=1)).to_have_text("Not found")
    page.goto(f"{live_server.url}/teams/{design.pk}/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Not found")
    expect(page.get_by_text("Teams", exact=True)).to_have_count(0)  # no team left in the menu
    screenshot("removed")
    assert violations == []
