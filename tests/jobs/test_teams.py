"""Teams made and changed by staff in the admin: every change goes through services.teams and is
recorded (who, when, from where, before, after); removing a member ends their team tokens."""

from decimal import Decimal

import pytest
from django.urls import reverse

from jobs import services
from jobs.models import ApiToken, AuditEvent, Budget, Membership, Team
from jobs.services import tokens

pytestmark = pytest.mark.django_db


@pytest.fixture
def design(admin_user):
    return services.team_create(name="Design", by=admin_user)


def inline(prefix="memberships", rows=(), initial=0):
    data = {
        f"{prefix}-TOTAL_FORMS": str(len(rows)),
        f"{prefix}-INITIAL_FORMS": str(initial),
        f"{prefix}-MIN_NUM_FORMS": "0",
        f"{prefix}-MAX_NUM_FORMS": "1000",
    }
    for i, row in enumerate(rows):
        for key, value in row.items():
            data[f"{prefix}-{i}-{key}"] = value
    return data


def test_staff_create_a_team_with_members_in_the_admin(admin_client, admin_user, alice, bob):
    response = admin_client.post(
        reverse("admin:jobs_team_add"),
        {
            "name": "Design",
            "all_models": "on",
            **inline(
                rows=[
                    {"user": alice.pk, "role": "manager"},
                    {"user": bob.pk, "role": "member"},
                ]
            ),
        },
    )

    assert response.status_code == 302, response.content.decode()[:2000]
    team = Team.objects.get(name="Design")
    roles = dict(Membership.objects.filter(team=team).values_list("user__username", "role"))
    assert roles == {"alice": "manager", "bob": "member"}
    summaries = [event.text for event in AuditEvent.objects.filter(team=team)]
    assert "Created the Design team" in summaries
    assert "Added alice to the Design team as a manager" in summaries
    assert all(e.actor == admin_user for e in AuditEvent.objects.filter(team=team))
    assert AuditEvent.objects.filter(team=team).first().address == "127.0.0.1"


def test_two_teams_cannot_share_a_name(admin_user, design):
    with pytest.raises(services.TeamError, match="already a team called design"):
        services.team_create(name="design", by=admin_user)


def test_removing_a_member_in_the_admin_is_recorded_and_ends_their_team_tokens(
    admin_client, admin_user, alice, design
):
    membership = services.membership_set(team=design, user=alice, by=admin_user)
    team_token, _ = tokens.token_create(user=alice, name="ci", team=design)
    personal_token, _ = tokens.token_create(user=alice, name="mine")

    response = admin_client.post(
        reverse("admin:jobs_team_change", args=[design.pk]),
        {
            "name": "Design",
            "all_models": "on",
            **inline(
                rows=[
                    {
                        "id": membership.pk,
                        "team": design.pk,
                        "user": alice.pk,
                        "role": "member",
                        "DELETE": "on",
                    }
                ],
                initial=1,
            ),
        },
    )

    assert response.status_code == 302, response.content.decode()[:2000]
    assert not Membership.objects.filter(team=design, user=alice).exists()
    assert ApiToken.objects.get(pk=team_token.pk).revoked_at is not None
    assert ApiToken.objects.get(pk=personal_token.pk).revoked_at is None
    removal = AuditEvent.objects.get(action=AuditEvent.Action.MEMBER_REMOVED)
    assert removal.text == "Removed alice from the Design team (1 API token revoked)"
    assert removal.before == {"role": "member", "source": "studio"}


def test_a_role_change_is_recorded_with_before_and_after(admin_user, alice, design):
    services.membership_set(team=design, user=alice, by=admin_user)
    services.membership_set(team=design, user=alice, role="manager", by=admin_user)

    change = AuditEvent.objects.get(action=AuditEvent.Action.MEMBER_CHANGED)
    assert (change.before, change.after) == ({"role": "member"}, {"role": "manager"})


def test_limiting_a_teams_models_is_recorded(admin_user, design, catalog):
    services.team_models_set(
        team=design, all_models=False, model_ids=["ir/test-video"], by=admin_user
    )

    event = AuditEvent.objects.get(action=AuditEvent.Action.TEAM_MODELS)
    assert event.summary == "The Design team may use ir/test-video"
    assert event.before["all_models"] is True and event.after["models"] == ["ir/test-video"]


def test_the_first_team_is_the_default_and_the_next_default_takes_over(admin_user, alice):
    design = services.team_create(name="Design", by=admin_user)
    ads = services.team_create(name="Ads", by=admin_user)
    services.membership_set(team=design, user=alice, by=admin_user)
    services.membership_set(team=ads, user=alice, by=admin_user)

    assert Membership.objects.get(user=alice, is_default=True).team == design
    services.membership_remove(team=design, user=alice, by=admin_user)
    assert Membership.objects.get(user=alice, is_default=True).team == ads


def test_a_member_budget_must_fit_within_the_teams(admin_user, alice, design):
    services.membership_set(team=design, user=alice, by=admin_user)
    services.budget_set(
        level=Budget.Level.TEAM, team=design, limit=Decimal("20"), changed_by=admin_user
    )

    with pytest.raises(services.BudgetLimitError, match=r"Design team has \$20.00 a month"):
        services.budget_set(
            level=Budget.Level.MEMBER,
            team=design,
            user=alice,
            limit=Decimal("25"),
            changed_by=admin_user,
        )
    services.budget_set(
        level=Budget.Level.MEMBER,
        team=design,
        user=alice,
        limit=Decimal("5"),
        changed_by=admin_user,
    )
    member = Budget.objects.get(level=Budget.Level.MEMBER, team=design, user=alice)
    assert member.limit == Decimal("5")


def test_an_organization_budget_is_set_in_the_admin_and_audited(admin_client, admin_user):
    response = admin_client.post(
        reverse("admin:jobs_budget_add"), {"level": "1", "limit": "500", "period": "week"}
    )

    assert response.status_code == 302
    org = Budget.objects.get(level=Budget.Level.ORGANIZATION)
    assert (org.limit, org.period) == (Decimal("500.00"), "week")
    assert (
        AuditEvent.objects.get(action=AuditEvent.Action.BUDGET_SET).text
        == "The organization: no limit → $500.00 a week"
    )


def test_a_budget_naming_the_wrong_subject_is_a_form_error(admin_client, alice):
    response = admin_client.post(
        reverse("admin:jobs_budget_add"),
        {"level": "2", "user": alice.pk, "limit": "5", "period": "month"},
    )

    page = response.content.decode()
    assert response.status_code == 200
    assert "A team budget names its team." in page
    assert "A team budget does not name a user." in page
    assert not Budget.objects.exists()
