"""API tokens for a team: made on the tokens page, charging the team (and their own budget),
offering the team's models only, naming the team in every job answer, and dead at once for
someone who leaves the team."""

import re
from decimal import Decimal

import pytest
from django.urls import reverse

from jobs import services
from jobs.models import ApiToken, AuditEvent, Budget, Job, Membership
from jobs.services import tokens
from tests.factories import KLING, TEST_MODEL, VEO, set_budget, team_with

from .helpers import GENERATIONS

pytestmark = pytest.mark.usefixtures("catalog", "broker_url")

ASYNC = GENERATIONS + "?async=true"
KEY = re.compile(r'value="(vst_[A-Za-z0-9_-]{43})"')


@pytest.fixture
def design(alice):
    return team_with("Design", members=[alice])


@pytest.fixture
def design_key(alice, design):
    _, key = tokens.token_create(user=alice, name="design script", team=design)
    return key


def generate(api, key, model=TEST_MODEL):
    return api.post(key, ASYNC, json={"model": model, "prompt": "a fox in snow"})


# The tokens page.


def test_a_token_is_made_for_a_team_with_a_budget_of_its_own(alice_client, alice, design):
    response = alice_client.post(
        reverse("api_tokens"),
        {"name": "ci", "charge_to": str(design.pk), "limit": "2.50", "period": "week"},
    )

    assert KEY.search(response.content.decode())
    token = ApiToken.objects.get(user=alice)
    assert token.team == design
    budget = Budget.objects.get(level=Budget.Level.TOKEN, token=token)
    assert (budget.limit, budget.period) == (Decimal("2.50"), "week")
    event = AuditEvent.objects.get(action=AuditEvent.Action.BUDGET_SET, user=alice)
    assert event.actor == alice and event.after == {"limit": "2.50", "period": "week"}


def test_the_token_list_shows_where_each_token_charges_and_its_budget(alice_client, alice, design):
    tokens.token_create(user=alice, name="mine", limit=Decimal("1.00"), period="month")
    tokens.token_create(user=alice, name="design", team=design)

    html = alice_client.get(reverse("api_tokens")).content.decode()

    assert "<td>Personal</td>" in html and "<td>Design team</td>" in html
    assert re.search(r"\$1\.00 a month: \$1\.00 left this month, resets in \d+ days?", html)
    assert "No budget of its own" in html


def test_someone_in_no_team_sees_no_charge_to_on_the_tokens_page(alice_client):
    assert 'name="charge_to"' not in alice_client.get(reverse("api_tokens")).content.decode()


def test_a_token_for_a_team_one_is_not_in_is_a_form_error(alice_client, alice, design, bob):
    marketing = team_with("Marketing", members=[bob])

    response = alice_client.post(
        reverse("api_tokens"), {"name": "sneaky", "charge_to": str(marketing.pk)}
    )

    assert response.status_code == 200 and not ApiToken.objects.exists()
    assert "You cannot charge videos there" in response.content.decode()


def test_a_personal_token_is_refused_where_a_team_is_required(alice_client, settings):
    settings.TEAM_REQUIRED = True

    response = alice_client.post(reverse("api_tokens"), {"name": "mine"})

    assert response.status_code == 200 and not ApiToken.objects.exists()
    assert "This studio charges every video to a team" in response.content.decode()


def test_a_negative_token_budget_is_a_form_error(alice_client):
    response = alice_client.post(reverse("api_tokens"), {"name": "ci", "limit": "-1"})

    assert not ApiToken.objects.exists()
    assert "A budget cannot be negative." in response.content.decode()


def test_the_owner_sets_and_clears_a_tokens_budget(alice_client, alice):
    token, _ = tokens.token_create(user=alice, name="ci")
    url = reverse("api_token_budget", args=[token.pk])

    alice_client.post(url, {"limit": "3", "period": "day"})
    budget = Budget.objects.get(token=token)
    assert (budget.limit, budget.period) == (Decimal("3.00"), "day")
    page = alice_client.get(reverse("api_tokens")).content.decode()
    assert "“ci” may now spend $3.00 a day." in page

    alice_client.post(url, {"limit": "", "period": "day"})
    assert Budget.objects.get(token=token).limit is None
    assert AuditEvent.objects.filter(action=AuditEvent.Action.BUDGET_SET).count() == 2


def test_bob_cannot_set_the_budget_of_alices_token(client, alice, bob):
    token, _ = tokens.token_create(user=alice, name="ci")
    client.force_login(bob)

    response = client.post(reverse("api_token_budget", args=[token.pk]), {"limit": "9"})

    assert response.status_code == 404 and not Budget.objects.filter(token=token).exists()


# Jobs through a team's token.


def test_a_team_tokens_job_is_charged_to_the_team_and_names_it(api, alice, design, design_key):
    response = generate(api, design_key)

    job = Job.objects.get()
    assert response.status_code == 202
    assert (job.team, job.token.name) == (design, "design script")
    assert response.json()["team"] == {"id": str(design.pk), "name": "Design"}
    status = api.get(design_key, f"/v1/jobs/{job.pk}").json()
    assert status["team"] == {"id": str(design.pk), "name": "Design"}


def test_a_personal_tokens_job_names_no_team(api, alice, alice_key, design):
    response = generate(api, alice_key)

    assert response.json()["team"] is None and Job.objects.get().team is None


def test_models_lists_only_what_the_team_may_use(api, alice, alice_key):
    design = team_with("Design", members=[alice], models=[TEST_MODEL, KLING])
    _, key = tokens.token_create(user=alice, name="design", team=design)

    assert list(api.get(key, "/v1/models").json()) == [TEST_MODEL, KLING]
    assert VEO in api.get(alice_key, "/v1/models").json()


def test_a_model_the_team_may_not_use_is_refused_as_an_unavailable_model(api, alice):
    design = team_with("Design", members=[alice], models=[TEST_MODEL])
    _, key = tokens.token_create(user=alice, name="design", team=design)

    response = generate(api, key, model=KLING)

    assert response.status_code == 404 and not Job.objects.exists()
    assert response.json() == {
        "error": {
            "message": f"model '{KLING}' is not available",
            "type": "invalid_request_error",
            "param": "model",
            "code": "model_not_found",
        }
    }


def test_the_tokens_own_budget_refuses_what_does_not_fit_and_names_the_token(api, alice, design):
    _, key = tokens.token_create(
        user=alice, name="ci", team=design, limit=Decimal("0.40"), period="day"
    )

    response = generate(api, key, model=KLING)

    assert response.status_code == 402 and not Job.objects.exists()
    assert response.json()["error"]["message"] == (
        "API token “ci” has $0.40 left today; this video could cost up to $0.50."
    )


def test_the_team_budget_applies_to_a_team_token_and_not_the_personal_one(
    api, alice, design, design_key
):
    set_budget(alice, "0.10")
    services.budget_set(
        level=Budget.Level.TEAM, team=design, limit=Decimal("0.45"), changed_by=None
    )

    refused = generate(api, design_key, model=KLING)

    assert refused.status_code == 402
    assert refused.json()["error"]["message"].startswith("Design team has $0.45 left this month")
    services.budget_set(
        level=Budget.Level.TEAM, team=design, limit=Decimal("5.00"), changed_by=None
    )
    assert generate(api, design_key, model=KLING).status_code == 202  # $0.10 personal is moot


# Leaving the team.


def test_a_member_removed_from_the_team_gets_401_with_its_token_at_once(
    api, alice, design, design_key, alice_key
):
    assert generate(api, design_key).status_code == 202

    services.membership_remove(team=design, user=alice, by=None)

    assert generate(api, design_key).status_code == 401
    assert api.get(design_key, "/v1/models").status_code == 401
    assert generate(api, alice_key).status_code == 202  # her personal token still works


def test_a_membership_deleted_outside_the_service_also_kills_the_teams_token(
    api, alice, design, design_key
):
    # An identity provider's sync (or the admin's delete) removes the row itself: the token
    # is not revoked, yet the lookup that checks membership on every request refuses it.
    Membership.objects.filter(team=design, user=alice).delete()

    response = generate(api, design_key)

    assert response.status_code == 401
    assert ApiToken.objects.get(team=design).revoked_at is None
