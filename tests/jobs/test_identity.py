"""Single sign-on's account and team rules, given the claims of an ID token the provider signed
(tests/browser/test_single_sign_on.py drives the same through the real provider and Chromium),
and password log-in turned off everywhere a password is checked."""

import pytest
from django.contrib.auth import get_user_model

from jobs import services
from jobs.models import ApiToken, AuditEvent, ExternalIdentity, Membership, Team
from jobs.services import tokens as token_services

pytestmark = pytest.mark.django_db

ISSUER = "https://sso.example.com"


@pytest.fixture(autouse=True)
def okta(settings):
    settings.OIDC_BUTTON_LABEL = "Sign in with Okta"
    settings.OIDC_GROUPS_CLAIM = "groups"


def sign_in(sub="carol", **claims):
    return services.identity_sign_in(issuer=ISSUER, claims={"sub": sub, **claims})


def roles(user):
    return {m.team.name: (m.role, m.source) for m in Membership.objects.filter(user=user)}


def test_a_sync_leaves_memberships_made_in_the_studio_alone(alice):
    design = Team.objects.create(name="Design", idp_group="design", idp_manager_group="leads")
    services.membership_set(team=design, user=alice, role=Membership.Role.MANAGER, by=None)
    ExternalIdentity.objects.create(issuer=ISSUER, subject="alice-at-okta", user=alice)

    sign_in("alice-at-okta", groups=["design"])  # the groups say member
    assert roles(alice) == {"Design": ("manager", "studio")}
    sign_in("alice-at-okta", groups=[])  # the groups say nothing
    assert roles(alice) == {"Design": ("manager", "studio")}


def test_leaving_the_group_removes_the_team_and_revokes_its_tokens_at_once():
    design = Team.objects.create(name="Design", idp_group="design")
    carol = sign_in(groups=["design"], email="carol@example.com", email_verified=True)
    token_services.token_create(user=carol, name="render", team=design)

    sign_in(groups=["marketing"])

    assert roles(carol) == {}
    assert ApiToken.objects.get(name="render").revoked_at is not None
    removed = AuditEvent.objects.get(action=AuditEvent.Action.MEMBER_REMOVED)
    assert removed.before == {"role": "member", "source": "idp"}


def test_the_manager_group_makes_a_manager_and_the_change_is_recorded():
    Team.objects.create(name="Video", idp_group="video", idp_manager_group="video-leads")
    carol = sign_in(groups=["video"])
    assert roles(carol) == {"Video": ("member", "idp")}

    sign_in(groups=["video", "video-leads"])

    assert roles(carol) == {"Video": ("manager", "idp")}
    changed = AuditEvent.objects.get(action=AuditEvent.Action.MEMBER_CHANGED)
    assert (changed.before, changed.after) == ({"role": "member"}, {"role": "manager"})


def test_keycloak_group_paths_and_a_claim_named_otherwise_match(settings):
    settings.OIDC_GROUPS_CLAIM = "roles"
    Team.objects.create(name="Design", idp_group="design")
    carol = sign_in(roles=["/design"])
    assert roles(carol) == {"Design": ("member", "idp")}


def test_a_new_person_with_an_unverified_address_gets_an_account_without_it():
    carol = sign_in(email="carol@example.com", email_verified=False, name="Carol Jones")
    assert (carol.email, carol.first_name, carol.last_name) == ("", "Carol", "Jones")
    # So a later, verified sign-in by someone else with that address cannot land in it.
    dave = sign_in("dave", email="carol@example.com", email_verified=True)
    assert dave != carol


def test_a_taken_username_gets_a_number(alice):
    other = sign_in("a2", preferred_username="alice", email="alice@elsewhere.example")
    assert other.username == "alice2"
    assert not other.has_usable_password()


def test_a_deactivated_account_is_refused(alice):
    alice.email, alice.is_active = "alice@example.com", False
    alice.save()
    with pytest.raises(services.SignInRefused, match="deactivated"):
        sign_in(email="alice@example.com", email_verified=True)


def test_two_accounts_with_the_verified_address_are_refused_not_guessed(alice, bob):
    get_user_model().objects.filter(pk__in=[alice.pk, bob.pk]).update(email="team@example.com")
    with pytest.raises(services.SignInRefused, match="More than one studio account"):
        sign_in(email="team@example.com", email_verified=True)
    assert not ExternalIdentity.objects.exists()


def test_the_returning_person_is_found_by_subject_not_by_a_changed_address(alice):
    carol = sign_in(email="carol@example.com", email_verified=True)
    alice.email = "carol.new@example.com"
    alice.save()
    assert sign_in(email="carol.new@example.com", email_verified=True) == carol


@pytest.fixture
def password_login_off(settings, django_user_model):
    settings.PASSWORD_LOGIN = False
    settings.BREAK_GLASS_USERNAME = "root"
    settings.OIDC_ISSUER = ISSUER
    return django_user_model.objects.create_user(
        "root", password="root-password-1", is_staff=True, is_superuser=True
    )


def test_with_password_log_in_off_the_admin_refuses_a_staff_password_too(
    client, password_login_off, django_user_model
):
    django_user_model.objects.create_user("eve", password="eve-password-1", is_staff=True)
    response = client.post(
        "/admin/login/?next=/admin/", {"username": "eve", "password": "eve-password-1"}
    )
    assert response.status_code == 200 and "_auth_user_id" not in client.session

    response = client.post(
        "/admin/login/?next=/admin/", {"username": "root", "password": "root-password-1"}
    )
    assert response.status_code == 302 and "_auth_user_id" in client.session


def test_a_break_glass_name_that_is_not_staff_cannot_log_in(client, password_login_off):
    password_login_off.is_staff = False
    password_login_off.save()
    response = client.post("/accounts/login/", {"username": "root", "password": "root-password-1"})
    assert "Password log-in is turned off" in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_with_password_log_in_off_a_sign_up_post_makes_no_account(client, password_login_off):
    response = client.post(
        "/accounts/signup/",
        {"username": "mallory", "password1": "a-Long-pass-99", "password2": "a-Long-pass-99"},
    )
    assert response.status_code == 403
    assert "Accounts come from single sign-on" in response.content.decode()
    assert not get_user_model().objects.filter(username="mallory").exists()


def test_without_an_issuer_there_is_no_button_and_the_sso_urls_are_not_found(client, settings):
    settings.OIDC_ISSUER = ""
    page = client.get("/accounts/login/").content.decode()
    assert "single sign-on" not in page.lower() and "oidc" not in page
    assert client.get("/accounts/oidc/start/").status_code == 404
    assert client.get("/accounts/oidc/callback/?code=x&state=y").status_code == 404


def test_without_a_provider_name_in_the_label_messages_say_your_identity_provider(alice, settings):
    settings.OIDC_BUTTON_LABEL = "Sign in with single sign-on"
    alice.email = "alice@example.com"
    alice.save()
    with pytest.raises(services.SignInRefused, match="but your identity provider has not"):
        sign_in(email="alice@example.com", email_verified=False)


def test_staff_name_a_teams_groups_in_the_admin_and_the_change_is_recorded(
    admin_client, admin_user
):
    response = admin_client.post(
        "/admin/jobs/team/add/",
        {
            "name": "Design",
            "all_models": "on",
            "idp_group": " design ",
            "idp_manager_group": "design-leads",
            "memberships-TOTAL_FORMS": "0",
            "memberships-INITIAL_FORMS": "0",
            "memberships-MIN_NUM_FORMS": "0",
            "memberships-MAX_NUM_FORMS": "1000",
        },
    )

    assert response.status_code == 302, response.content.decode()[:2000]
    team = Team.objects.get(name="Design")
    assert (team.idp_group, team.idp_manager_group) == ("design", "design-leads")
    event = AuditEvent.objects.get(team=team, summary__contains="identity provider groups")
    assert event.actor == admin_user
    assert event.after == {"idp_group": "design", "idp_manager_group": "design-leads"}
    carol = sign_in(groups=["design-leads"])
    assert roles(carol) == {"Design": ("manager", "idp")}
