"""Single sign-on in real Chromium against a real OpenID Connect provider on loopback
(tests/oidc/provider.mjs, the npm package oidc-provider): discovery, the authorization code flow
with PKCE, the ID token's signature and nonce, the state, accounts made and matched, the groups
synced to teams, password log-in turned off, and what a person sees when it goes wrong."""

from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from django.contrib.auth import get_user_model
from playwright.sync_api import expect

from jobs import identity, services
from jobs.models import ExternalIdentity, Membership, Team
from tests.oidc import CLIENT_ID, CLIENT_SECRET, IdentityProvider, closed_port_url

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

BUTTON = "Sign in with Okta"


@pytest.fixture(scope="session")
def identity_provider(live_server):
    provider = IdentityProvider(redirect_uri=f"{live_server.url}/accounts/oidc/callback/")
    yield provider
    provider.stop()


@pytest.fixture
def sso(identity_provider, settings):
    """The studio set up for the test provider, as .env would set it."""
    settings.OIDC_ISSUER = identity_provider.issuer
    settings.OIDC_RP_CLIENT_ID = CLIENT_ID
    settings.OIDC_RP_CLIENT_SECRET = CLIENT_SECRET
    settings.OIDC_BUTTON_LABEL = BUTTON
    settings.OIDC_GROUPS_CLAIM = "groups"
    identity._discovered.clear()
    identity_provider.rogue_keys(False)
    return identity_provider


@pytest.fixture
def authorization_requests(page):
    """The query of every request the browser sends to the provider's authorization endpoint."""
    seen = []
    page.on(
        "request",
        lambda request: (
            seen.append(parse_qs(urlsplit(request.url).query))
            if urlsplit(request.url).path == "/auth"
            else None
        ),
    )
    return seen


def sign_in_at_provider(page, live_server, login: str):
    """From the studio's log-in page through the provider's own log-in and consent pages. A
    provider session left from an earlier sign-in skips its pages, as a real one does."""
    page.goto(f"{live_server.url}/accounts/login/")
    page.get_by_role("link", name=BUTTON).click()
    page.wait_for_url(lambda url: "/interaction/" in url or url.startswith(live_server.url))
    if "/interaction/" in page.url and page.locator("input[name=login]").count():
        page.locator("input[name=login]").fill(login)
        page.locator("input[name=password]").fill("any password")
        page.get_by_role("button", name="Sign-in").click()
        page.wait_for_url(lambda url: "/interaction/" in url or url.startswith(live_server.url))
    if "/interaction/" in page.url:
        page.get_by_role("button", name="Continue").click()
    page.wait_for_url(lambda url: url.startswith(live_server.url))


def rewrite_callback(page, provider, live_server, state_for):
    """Change the state in the provider's redirect back to the studio, as an attacker who
    delivers a callback would. Chromium does not route the hops of a redirect, so the provider's
    form posts are followed here, hop by hop, and the last hop is handed to the browser."""

    def follow(route):
        if route.request.method != "POST":
            route.continue_()
            return
        response = route.fetch(max_redirects=0)
        location = response.headers.get("location", "")
        for _ in range(5):
            if not location.startswith(provider.issuer):
                break
            response = page.request.get(location, max_redirects=0)
            location = response.headers.get("location", "")
        if location.startswith(f"{live_server.url}/accounts/oidc/callback/"):
            parts = urlsplit(location)
            query = {k: v[0] for k, v in parse_qs(parts.query).items()}
            query["state"] = state_for(query["state"])
            location = f"{live_server.url}{parts.path}?{urlencode(query)}"
        route.fulfill(status=303, headers={"location": location})

    page.route(f"{provider.issuer}/interaction/**", follow)


def log_out(page):
    page.get_by_role("button", name="Log out").click()
    page.wait_for_url("**/accounts/login/")


def roles(user):
    return {
        m.team.name: (m.role, m.source)
        for m in Membership.objects.filter(user=user).select_related("team")
    }


def test_first_sign_in_makes_an_account_from_the_id_token_and_joins_the_groups_teams(
    live_server, sso, page, screenshot, violations, authorization_requests
):
    Team.objects.create(name="Design", idp_group="design")
    Team.objects.create(name="Video", idp_group="video", idp_manager_group="video-leads")
    Team.objects.create(name="Finance", idp_group="finance")
    sso.account(
        "carol",
        email="carol@example.com",
        email_verified=True,
        name="Carol Jones",
        groups=["design", "video-leads"],
    )

    page.goto(f"{live_server.url}/accounts/login/")
    expect(page.get_by_role("link", name=BUTTON)).to_be_visible()
    expect(page.get_by_label("Username")).to_be_visible()  # passwords still on by default
    screenshot("log-in-page")
    sign_in_at_provider(page, live_server, "carol")

    page.wait_for_url("**/jobs/new/")
    carol = get_user_model().objects.get(email="carol@example.com")
    assert (carol.username, carol.first_name, carol.last_name) == ("carol", "Carol", "Jones")
    assert not carol.has_usable_password()
    assert ExternalIdentity.objects.get(user=carol).subject == "carol"
    assert roles(carol) == {
        "Design": ("member", "idp"),
        "Video": ("manager", "idp"),
    }
    # The browser went to the endpoint discovery named, with PKCE (S256), a nonce and a state;
    # the provider requires PKCE, so the token exchange proved the verifier too.
    (query,) = authorization_requests
    assert query["code_challenge_method"] == ["S256"]
    assert len(query["code_challenge"][0]) == 43
    assert query["nonce"][0] and query["state"][0]
    assert query["client_id"] == [CLIENT_ID]
    page.get_by_text("Teams", exact=True).click()
    expect(page.get_by_role("link", name="Design team videos")).to_be_visible()
    screenshot("signed-in")
    assert violations == []


def test_a_second_sign_in_with_changed_groups_moves_the_teams_and_keeps_the_studios_own(
    live_server, sso, page, screenshot, violations
):
    design = Team.objects.create(name="Design", idp_group="design")
    video = Team.objects.create(name="Video", idp_group="video", idp_manager_group="video-leads")
    marketing = Team.objects.create(name="Marketing", idp_group="marketing")
    sso.account(
        "dan", email="dan@example.com", email_verified=True, name="Dan", groups=["design", "video"]
    )
    sign_in_at_provider(page, live_server, "dan")
    page.wait_for_url("**/jobs/new/")
    dan = get_user_model().objects.get(username="dan")
    assert roles(dan) == {"Design": ("member", "idp"), "Video": ("member", "idp")}
    # Staff add dan to Marketing by hand, though no group of his says so.
    services.membership_set(team=marketing, user=dan, by=None)

    # At the provider, dan leaves design and becomes a video lead.
    sso.account(
        "dan", email="dan@example.com", email_verified=True, name="Dan", groups=["video-leads"]
    )
    log_out(page)
    sign_in_at_provider(page, live_server, "dan")
    page.wait_for_url("**/jobs/new/")

    assert roles(dan) == {"Video": ("manager", "idp"), "Marketing": ("member", "studio")}
    assert not Membership.objects.filter(team=design, user=dan).exists()
    # Leaving the group took away the team at once: its gallery is not found.
    page.goto(f"{live_server.url}/teams/{design.pk}/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Not found")
    page.goto(f"{live_server.url}/teams/{video.pk}/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Video team videos")
    screenshot("after-second-sign-in")
    assert violations == []


def test_a_verified_email_signs_in_to_the_existing_account(live_server, sso, page, alice):
    alice.email = "alice@example.com"
    alice.save()
    sso.account("a.smith", email="Alice@Example.com", email_verified=True, name="Alice Smith")

    sign_in_at_provider(page, live_server, "a.smith")

    page.wait_for_url("**/jobs/new/")
    expect(page.get_by_text("alice", exact=True)).to_be_visible()
    assert ExternalIdentity.objects.get(subject="a.smith").user == alice
    assert get_user_model().objects.count() == 1


def test_an_unverified_email_does_not_take_over_the_account_that_uses_it(
    live_server, sso, page, screenshot, violations, alice
):
    alice.email = "alice@example.com"
    alice.save()
    sso.account("mallory", email="alice@example.com", email_verified=False, name="Not Alice")

    sign_in_at_provider(page, live_server, "mallory")

    expect(page.get_by_role("heading", level=1)).to_have_text("You are not signed in")
    expect(page.get_by_role("alert")).to_contain_text(
        "A studio account already uses alice@example.com, but Okta has not confirmed"
    )
    expect(page.get_by_role("link", name="Back to the log-in page")).to_be_visible()
    screenshot("unverified")
    assert not ExternalIdentity.objects.exists()
    assert get_user_model().objects.count() == 1
    page.goto(f"{live_server.url}/jobs/new/")
    page.wait_for_url("**/accounts/login/**")
    assert violations == []


def test_with_password_log_in_off_only_the_break_glass_account_may_use_a_password(
    live_server, sso, settings, page, screenshot, violations, alice, django_user_model
):
    django_user_model.objects.create_user(
        "root", password="root-password-1", is_staff=True, is_superuser=True
    )
    settings.PASSWORD_LOGIN = False
    settings.BREAK_GLASS_USERNAME = "root"

    page.goto(f"{live_server.url}/accounts/login/")
    expect(page.get_by_role("link", name=BUTTON)).to_be_visible()
    expect(page.get_by_label("Username")).to_have_count(0)
    expect(page.get_by_role("link", name="Create an account")).to_have_count(0)
    expect(page.get_by_role("link", name="Sign up")).to_have_count(0)
    screenshot("sso-only")

    # alice's right password is refused, on the page and in the admin alike.
    page.goto(f"{live_server.url}/accounts/login/?password")
    page.get_by_label("Username").fill("alice")
    page.get_by_label("Password").fill("alice-password-1")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_text("Password log-in is turned off in this studio.")).to_be_visible()
    screenshot("refused")
    page.goto(f"{live_server.url}/accounts/signup/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Accounts come from single sign-on")
    expect(page.get_by_label("Username")).to_have_count(0)

    page.goto(f"{live_server.url}/accounts/login/?password")
    log_in_form = page.locator("form[method=post]")
    log_in_form.get_by_label("Username").fill("root")
    log_in_form.get_by_label("Password").fill("root-password-1")
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url("**/jobs/new/")
    assert violations == []


def test_the_provider_refusing_shows_a_page_with_a_way_back(
    live_server, sso, page, screenshot, violations
):
    sso.account("erin", email="erin@example.com", email_verified=True, name="Erin")
    page.goto(f"{live_server.url}/accounts/login/")
    page.get_by_role("link", name=BUTTON).click()
    page.wait_for_url("**/interaction/**")
    page.get_by_role("link", name="[ Cancel ]").click()

    page.wait_for_url(f"{live_server.url}/accounts/oidc/callback/**")
    expect(page.get_by_role("heading", level=1)).to_have_text("The sign-in was refused")
    expect(page.get_by_role("alert")).to_contain_text("Okta did not let you sign in")
    screenshot("refused")
    page.get_by_role("link", name="Back to the log-in page").click()
    expect(page.get_by_role("link", name=BUTTON)).to_be_visible()
    assert not get_user_model().objects.exists()
    assert violations == []


def test_the_provider_being_down_shows_a_page_not_an_error(
    live_server, sso, settings, page, screenshot, violations
):
    settings.OIDC_ISSUER = closed_port_url()

    page.goto(f"{live_server.url}/accounts/login/")
    with page.expect_response("**/accounts/oidc/start/") as response:
        page.get_by_role("link", name=BUTTON).click()

    assert response.value.status == 503
    expect(page.get_by_role("heading", level=1)).to_have_text(
        "The sign-in service is not answering"
    )
    expect(page.get_by_role("alert")).to_contain_text("could not reach Okta")
    screenshot("down")
    assert violations == []


def test_a_callback_with_a_state_this_browser_did_not_start_is_refused(
    live_server, sso, page, violations
):
    sso.account("frank", email="frank@example.com", email_verified=True, name="Frank")

    rewrite_callback(page, sso, live_server, lambda state: "forged-state")
    sign_in_at_provider(page, live_server, "frank")

    expect(page.get_by_role("heading", level=1)).to_have_text(
        "This sign-in could not be matched to you"
    )
    assert not get_user_model().objects.exists()
    assert violations == []


def test_a_code_delivered_with_another_sign_ins_state_fails_pkce(live_server, sso, page):
    """A code from one sign-in delivered with the state of another started in the same browser
    (code injection): the state is known here, but its PKCE verifier is not the one the code
    was issued for, so the provider refuses to trade the code."""
    sso.account("grace", email="grace@example.com", email_verified=True, name="Grace")
    page.goto(f"{live_server.url}/accounts/login/")
    page.get_by_role("link", name=BUTTON).click()
    page.wait_for_url("**/interaction/**")
    # A second sign-in started in this browser: its state is kept in the session too.
    second = page.request.get(f"{live_server.url}/accounts/oidc/start/", max_redirects=0)
    other_state = parse_qs(urlsplit(second.headers["location"]).query)["state"][0]

    rewrite_callback(page, sso, live_server, lambda state: other_state)
    page.locator("input[name=login]").fill("grace")
    page.locator("input[name=password]").fill("any password")
    page.get_by_role("button", name="Sign-in").click()
    page.get_by_role("button", name="Continue").click()

    expect(page.get_by_role("heading", level=1)).to_have_text("The sign-in was not completed")
    expect(page.get_by_role("alert")).to_contain_text("Okta would not confirm this sign-in")
    assert not get_user_model().objects.exists()


def test_a_replayed_id_token_with_another_sign_ins_nonce_is_refused(
    live_server, sso, page, screenshot
):
    sso.account("ivan", email="ivan@example.com", email_verified=True, name="Ivan")
    sign_in_at_provider(page, live_server, "ivan")
    page.wait_for_url("**/jobs/new/")
    log_out(page)
    # The provider (or someone between) now answers with the ID token of that first sign-in.
    sso.replay_id_token(True)
    try:
        sign_in_at_provider(page, live_server, "ivan")
    finally:
        sso.replay_id_token(False)

    expect(page.get_by_role("heading", level=1)).to_have_text("This sign-in could not be verified")
    expect(page.get_by_role("alert")).to_contain_text("is not the one this browser started")
    screenshot("nonce")
    page.goto(f"{live_server.url}/jobs/new/")
    page.wait_for_url("**/accounts/login/**")


def test_an_id_token_not_signed_by_the_published_keys_is_refused(live_server, sso, page):
    sso.account("heidi", email="heidi@example.com", email_verified=True, name="Heidi")
    sso.rogue_keys(True)

    sign_in_at_provider(page, live_server, "heidi")

    expect(page.get_by_role("heading", level=1)).to_have_text("This sign-in could not be verified")
    expect(page.get_by_role("alert")).to_contain_text("its signature did not check out")
    assert not get_user_model().objects.exists()


def test_the_provider_going_down_before_the_code_is_traded_shows_a_page(
    live_server, sso, settings, page, violations
):
    """Discovery and the provider's pages worked, then the provider stopped: the studio's token
    request finds nobody listening."""
    doomed = IdentityProvider(redirect_uri=f"{live_server.url}/accounts/oidc/callback/")
    try:
        settings.OIDC_ISSUER = doomed.issuer
        doomed.account("judy", email="judy@example.com", email_verified=True, name="Judy")

        def stop_provider(state):
            doomed.stop()
            return state

        rewrite_callback(page, doomed, live_server, stop_provider)
        sign_in_at_provider(page, live_server, "judy")
    finally:
        doomed.stop()

    expect(page.get_by_role("heading", level=1)).to_have_text(
        "The sign-in service is not answering"
    )
    assert not get_user_model().objects.exists()
    assert violations == []
