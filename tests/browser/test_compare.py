"""Comparisons and variations in real Chromium: the compare form's estimates and worst-case
total as models are ticked, the grid filling in as the videos arrive, Play, Pause and seeking
acting on every player at once, "Keep this one", a phone's single column, and the plain players
without JavaScript. No CSP violation anywhere."""

import pytest
from playwright.sync_api import expect

from jobs import services
from jobs.models import Job, JobGroup
from tests.browser.helpers import DESKTOP, PHONE, log_in
from tests.factories import KLING, SORA, TEST_MODEL, VEO, set_budget
from tests.helpers import run_job_now, wait_for

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def fits_a_phone(page) -> bool:
    return page.evaluate(
        "() => document.documentElement.scrollWidth <= window.innerWidth"
        " && document.body.scrollWidth <= window.innerWidth"
    )


def made_group(owner, models, kind=JobGroup.Kind.COMPARISON):
    return services.job_group_create(
        owner=owner,
        kind=kind,
        specs=[services.JobSpec(prompt="a paper boat on a river", model=m) for m in models],
    )


def players(page):
    return page.locator("[data-sync-group] video")


def player_states(page) -> list[dict]:
    return page.evaluate(
        "() => Array.from(document.querySelectorAll('[data-sync-group] video'))"
        ".map(v => ({paused: v.paused, time: v.currentTime}))"
    )


def all_at(page, seconds: float) -> bool:
    """Whether every player of the grid is paused at `seconds` (within 0.3 s)."""
    return all(p["paused"] and abs(p["time"] - seconds) < 0.3 for p in player_states(page))


def test_the_compare_form_shows_each_estimate_and_the_total_and_compares_as_one(
    live_server, simulator, catalog, alice, page, screenshot, violations, broker_url
):
    set_budget(alice, "2.00")
    log_in(page, live_server)
    page.get_by_role("link", name="Compare models").click()
    page.wait_for_url("**/jobs/compare/")
    page.get_by_label("Prompt").fill("a lighthouse in a storm")
    facts = page.locator("#group-facts")
    expect(facts).to_contain_text("Tick the models to compare")

    page.get_by_role("checkbox", name="google/veo-3.1-fast (simulated)").check()
    page.get_by_role("checkbox", name="kling/kling-2.1-standard (simulated)").check()
    expect(facts).to_contain_text("Worst-case total: $1.10 for 2 videos")
    expect(facts).to_contain_text("google/veo-3.1-fast (simulated): $0.60")
    expect(facts).to_contain_text(
        "kling/kling-2.1-standard (simulated): about $0.30, at most $0.50"
    )
    expect(facts).to_contain_text("You have $2.00 left this month")

    page.get_by_role("checkbox", name="openai/sora-2 (simulated)").check()
    expect(facts).to_contain_text("Worst-case total: $2.30 for 3 videos")
    expect(facts.get_by_role("alert")).to_contain_text(
        "These 3 videos could cost up to $2.30 together, $0.30 more than your personal budget"
    )
    screenshot("over-budget")
    page.get_by_role("checkbox", name="openai/sora-2 (simulated)").uncheck()
    expect(facts).to_contain_text("Worst-case total: $1.10 for 2 videos")
    expect(facts.get_by_role("alert")).to_have_count(0)

    page.get_by_label("Seconds for google/veo-3.1-fast (simulated)").select_option("8")
    page.get_by_label("Size for kling/kling-2.1-standard (simulated)").select_option("960x960")
    page.set_viewport_size(PHONE)
    assert fits_a_phone(page), "the compare form scrolls sideways on a phone"
    screenshot("form-phone")
    page.set_viewport_size(DESKTOP)
    page.get_by_role("button", name="Compare").click()

    page.wait_for_url("**/jobs/groups/*/")
    group = JobGroup.objects.get()
    assert sorted(group.jobs.values_list("model", "seconds", "size")) == sorted(
        [(VEO, "8", "auto"), (KLING, "5", "960x960")]
    )
    expect(page.locator(".group-card")).to_have_count(2)
    assert violations == []


def test_the_grid_fills_in_as_videos_arrive_and_plays_pauses_and_seeks_together(
    live_server, simulator, catalog, alice, page, screenshot, violations, broker_url
):
    group = made_group(alice, [TEST_MODEL, TEST_MODEL, KLING])
    log_in(page, live_server)
    page.goto(f"{live_server.url}/jobs/groups/{group.pk}/")
    expect(page.locator(".group-card")).to_have_count(3)
    expect(page.locator(".group-card-placeholder", has_text="Queued")).to_have_count(3)
    expect(players(page)).to_have_count(0)

    for job in group.jobs.order_by("group_position"):
        run_job_now(job.pk)
    expect(players(page)).to_have_count(3, timeout=30_000)  # each card's poll brought it in
    expect(page.get_by_text("3 of 3 finished")).to_be_visible(timeout=15_000)
    expect(page.get_by_role("link", name="Download all as .zip")).to_be_visible()
    page.wait_for_function(
        "() => Array.from(document.querySelectorAll('[data-sync-group] video'))"
        ".every(v => v.readyState >= 2)"
    )
    expect(page.locator(".group-card").first).to_contain_text("Latency")
    screenshot("grid")

    # Play all (a real click: the page has the user's gesture from now on).
    page.get_by_role("button", name="Play all").click()
    wait_for(lambda: all(not p["paused"] for p in player_states(page)), what="all playing")

    # Pausing one pauses the others.
    page.evaluate("() => document.querySelector('[data-sync-group] video').pause()")
    wait_for(lambda: all(p["paused"] for p in player_states(page)), what="all paused")

    # Seeking one moves the others to the same moment.
    page.evaluate(
        "() => { document.querySelectorAll('[data-sync-group] video')[1].currentTime = 2.5 }"
    )
    wait_for(
        lambda: all_at(page, 2.5), what=lambda: f"every player at 2.5 s: {player_states(page)}"
    )

    # A seek made while the others are still following an earlier one is where they all end:
    # the earlier seek's late "seeked" events (the others arriving at 1 s) are its echoes and
    # move no one back. Here the second seek is made the moment the first one lands.
    page.evaluate(
        """() => {
          const players = document.querySelectorAll('[data-sync-group] video');
          players[0].addEventListener("seeked", () => { players[1].currentTime = 3.5 }, {once: true});
          players[0].currentTime = 1;
        }"""
    )
    wait_for(
        lambda: all_at(page, 3.5), what=lambda: f"every player at 3.5 s: {player_states(page)}"
    )

    # Pressing Play on one player starts every one.
    page.evaluate("() => { document.querySelectorAll('[data-sync-group] video')[2].play() }")
    wait_for(lambda: all(not p["paused"] for p in player_states(page)), what="all playing again")

    # A pause and a play in one breath (a double click on a player) leave every player playing:
    # the "pause" event arrives after the play, is stale, and stops nothing.
    page.evaluate(
        "() => { const v = document.querySelector('[data-sync-group] video'); v.pause(); v.play() }"
    )
    start = [p["time"] for p in player_states(page)]
    wait_for(
        lambda: all(
            not p["paused"] and p["time"] > t + 0.5
            for p, t in zip(player_states(page), start, strict=True)
        ),
        what="every player still playing half a second on",
    )
    assert violations == []


def test_keep_this_one_stars_it_and_deletes_the_others_in_one_step(
    live_server, simulator, catalog, alice, page, violations, broker_url
):
    group = made_group(alice, [TEST_MODEL, TEST_MODEL, TEST_MODEL], JobGroup.Kind.VARIATIONS)
    for job in group.jobs.all():
        run_job_now(job.pk)
    log_in(page, live_server)
    page.goto(f"{live_server.url}/jobs/groups/{group.pk}/")
    expect(page.get_by_role("heading", name="Variations", level=1)).to_be_visible()

    page.get_by_role("button", name="Keep this one (2, ir/test-video)").click()

    expect(page.get_by_role("heading", name="You kept video 2 (ir/test-video)")).to_be_visible()
    expect(page.get_by_text("★ Kept")).to_have_count(1)
    page.get_by_role("button", name="Delete the other 2").click()

    expect(page.get_by_text("Kept this one and deleted 2 other videos")).to_be_visible()
    expect(page.locator(".group-card")).to_have_count(1)
    kept = Job.objects.get(group=group, deleted_at__isnull=True)
    assert kept.group_position == 1 and kept.starred_at is not None
    assert Job.objects.filter(group=group, deleted_at__isnull=False).count() == 2
    assert violations == []


def test_on_a_phone_the_grid_is_one_column(
    live_server, simulator, catalog, alice, page, screenshot, broker_url
):
    group = made_group(alice, [TEST_MODEL, SORA, VEO])
    log_in(page, live_server)
    page.set_viewport_size(PHONE)
    page.goto(f"{live_server.url}/jobs/groups/{group.pk}/")
    lefts = page.evaluate(
        "() => Array.from(document.querySelectorAll('.group-card'))"
        ".map(card => Math.round(card.getBoundingClientRect().left))"
    )
    assert len(lefts) == 3 and len(set(lefts)) == 1
    assert fits_a_phone(page)
    screenshot("phone")


def test_without_javascript_the_grid_has_plain_players(
    live_server, simulator, catalog, alice, browser, broker_url
):
    group = made_group(alice, [TEST_MODEL, TEST_MODEL])
    for job in group.jobs.all():
        run_job_now(job.pk)
    context = browser.new_context(java_script_enabled=False, viewport=DESKTOP)
    page = context.new_page()
    try:
        log_in(page, live_server)
        page.goto(f"{live_server.url}/jobs/groups/{group.pk}/")
        expect(players(page)).to_have_count(2)
        for index in range(2):
            assert players(page).nth(index).get_attribute("controls") is not None
        expect(page.get_by_role("button", name="Play all")).to_be_hidden()
        page.get_by_role("button", name="Keep this one (1, ir/test-video)").click()
        expect(page.get_by_role("button", name="Delete the other 1")).to_be_visible()
    finally:
        context.close()
