"""A team's managers review its spend, notices and history and set member budgets; staff review
spend by team and set the organization's budget. Nobody else sees any of it."""

import csv
import io
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.urls import reverse

from jobs import selectors, services
from jobs.models import AuditEvent, Budget, BudgetNotice
from tests.factories import KLING, SORA, VEO, make_entry, team_with

pytestmark = pytest.mark.usefixtures("fast_passwords")

MARCH = {"from": "2025-03-01", "to": "2025-03-31"}


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.fixture
def carol(django_user_model):
    return django_user_model.objects.create_user("carol", password="carol-password-1")


@pytest.fixture
def design(alice, bob):
    """alice manages the Design team; bob is a member."""
    return team_with("Design", managers=[alice], members=[bob])


@pytest.fixture
def marketing(carol):
    return team_with("Marketing", managers=[carol])


@pytest.fixture
def ledger(alice, bob, carol, design, marketing):
    """March 2025. Design: $1.10 on 3 jobs, $0.50 pending. bob's personal $1.20 and Marketing's
    $2.00 are none of Design's managers' business. One Design entry falls outside March."""
    make_entry(alice, KLING, "0.50", at("2025-03-02T10:00:00"), team=design)
    make_entry(bob, VEO, "0.60", at("2025-03-03T10:00:00"), team=design)
    make_entry(
        bob, KLING, "0", at("2025-03-15T12:00:00"), outcome="unknown", possible=Decimal("0.50"),
        team=design,
    )  # fmt: skip
    make_entry(bob, SORA, "1.20", at("2025-03-04T10:00:00"))  # bob's personal space
    make_entry(carol, SORA, "2.00", at("2025-03-05T10:00:00"), team=marketing)
    make_entry(bob, KLING, "9.00", at("2025-02-28T23:59:59"), team=design)  # before March


def client_for_user(client, user):
    client.force_login(user)
    return client


def team_review(client, team, **params):
    response = client.get(reverse("teams:review", args=[team.pk]), {**MARCH, **params})
    assert response.status_code == 200
    return response


def csv_rows(response) -> list[dict]:
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    text = b"".join(response.streaming_content).decode()
    return list(csv.DictReader(io.StringIO(text)))


# A team's managers --------------------------------------------------------------------------


def test_a_manager_sees_the_teams_spend_by_member_model_and_day(client, alice, ledger, design):
    response = team_review(client_for_user(client, alice), design)

    context = response.context
    assert context["totals"] == {"total": Decimal("1.10"), "count": 3, "pending": Decimal("0.50")}
    members = {row["username"]: (row["total"], row["count"]) for row in context["users"]}
    assert members == {"alice": (Decimal("0.50"), 1), "bob": (Decimal("0.60"), 2)}
    models = {row["model"]: row["total"] for row in context["models"]}
    assert models == {KLING: Decimal("0.50"), VEO: Decimal("0.60")}
    assert len(context["days"]) == 31
    assert context["teams"] is None  # no table of the other teams
    html = response.content.decode()
    assert "Spent by the team in this period: <strong>$1.10</strong> on 3 jobs" in html
    assert '<svg class="chart"' in html and "Design team&#x27;s spend per day" in html
    # Neither bob's personal spend nor Marketing's, in any form.
    assert "$1.20" not in html and "$2.00" not in html and "Marketing" not in html
    assert "$9.00" not in html


def test_the_team_review_shows_the_budget_left_and_when_it_resets(client, alice, bob, design):
    services.budget_set(
        level=Budget.Level.TEAM, team=design, limit=Decimal("10"), period="week", changed_by=None
    )
    make_entry(bob, KLING, "2.00", datetime.now(UTC), team=design)

    response = team_review(client_for_user(client, alice), design, **{"from": "", "to": ""})

    budget = response.context["budget"]
    assert (budget.limit, budget.left) == (Decimal("10"), Decimal("8"))
    html = response.content.decode()
    assert "$10.00 per ISO week, <strong>$8.00 left</strong> this week" in html
    assert budget.resets in html and budget.resets.startswith("resets in ")


def test_a_manager_drills_down_to_a_member_and_to_a_model(client, alice, ledger, design):
    client = client_for_user(client, alice)
    url = reverse("teams:entries", args=[design.pk])

    bobs = client.get(url, {**MARCH, "user": "bob"})
    kling = client.get(url, {**MARCH, "model": KLING})

    assert bobs.status_code == 200 and kling.status_code == 200
    assert sorted(entry.cost for entry in bobs.context["page"]) == [Decimal("0"), Decimal("0.60")]
    assert bobs.context["totals"]["total"] == Decimal("0.60")  # not his personal $1.20
    assert {entry.team_id for entry in kling.context["page"]} == {design.pk}
    assert kling.context["totals"]["count"] == 2
    assert (
        f"/teams/{design.pk}/review/entries/?from=2025-03-01"
        in team_review(client, design).content.decode()
    )


def test_a_drill_down_to_someone_outside_the_team_is_empty_not_a_clue(
    client, alice, carol, ledger, design
):
    client = client_for_user(client, alice)
    url = reverse("teams:entries", args=[design.pk])

    for name in ("carol", "nobody-at-all"):
        response = client.get(url, {**MARCH, "user": name})
        assert response.status_code == 200
        assert response.context["totals"]["count"] == 0
    assert client.get(url, MARCH).status_code == 404  # neither a member nor a model


def test_the_teams_csv_has_only_the_teams_rows_with_a_team_column(client, alice, ledger, design):
    response = client_for_user(client, alice).get(reverse("teams:export", args=[design.pk]), MARCH)

    rows = csv_rows(response)
    assert (
        'filename="design-ledger-2025-03-01-to-2025-03-31.csv"' in response["Content-Disposition"]
    )
    assert len(rows) == 3
    assert {row["team"] for row in rows} == {"Design"}
    assert sum(Decimal(row["cost"]) for row in rows) == Decimal("1.10")


def test_a_manager_sees_the_team_and_member_notices_but_not_personal_ones(
    client, alice, bob, design
):
    services.budget_set(level=Budget.Level.TEAM, team=design, limit=Decimal("1"), changed_by=None)
    services.budget_set(
        level=Budget.Level.MEMBER, team=design, user=bob, limit=Decimal("1"), changed_by=None
    )
    services.budget_set(user=bob, limit=Decimal("1"), changed_by=None)  # personal
    make_entry(bob, KLING, "0.85", datetime.now(UTC), team=design)
    make_entry(bob, KLING, "0.90", datetime.now(UTC))  # personal
    levels = set(BudgetNotice.objects.values_list("level", "threshold"))
    assert {(Budget.Level.PERSONAL, 80), (Budget.Level.TEAM, 80)} <= levels

    response = team_review(client_for_user(client, alice), design)

    notices = list(response.context["notices"])
    assert {(n.level, n.threshold) for n in notices} == {
        (Budget.Level.TEAM, 50),
        (Budget.Level.TEAM, 80),
        (Budget.Level.MEMBER, 50),
        (Budget.Level.MEMBER, 80),
    }
    html = response.content.decode()
    assert "Design team reached 80% of $1.00" in html
    assert "bob's budget in the team reached 80% of $1.00" in html
    assert "$0.90" not in html
    personal = selectors.notices_for_user(user=bob)
    assert {n.level for n in personal} == {Budget.Level.MEMBER, Budget.Level.PERSONAL}
    assert {n.level for n in selectors.notices_for_team(design)} == {
        Budget.Level.TEAM,
        Budget.Level.MEMBER,
    }


def test_a_manager_sees_the_teams_history_and_no_other_teams(
    client, alice, bob, design, marketing, carol
):
    services.budget_set(
        level=Budget.Level.MEMBER, team=design, user=bob, limit=Decimal("3"), changed_by=alice,
        address="10.0.0.7",
    )  # fmt: skip
    services.budget_set(
        level=Budget.Level.TEAM, team=marketing, limit=Decimal("50"), changed_by=None
    )

    response = team_review(client_for_user(client, alice), design)

    summaries = [event.text for event in response.context["audit"]]
    assert any("bob" in s and "$3.00" in s for s in summaries)
    assert any("Created the Design team" in s for s in summaries)
    assert not any("Marketing" in s for s in summaries)
    assert "Marketing" not in response.content.decode()


# Member budgets -----------------------------------------------------------------------------


def budgets_url(team):
    return reverse("teams:budgets", args=[team.pk])


def member_post(team, user, limit, period="month") -> dict:
    prefix = f"member-{team.memberships.get(user=user).pk}"
    return {"member": user.username, f"{prefix}-limit": limit, f"{prefix}-period": period}


def test_a_manager_sees_each_members_budget(client, alice, bob, design):
    services.budget_set(
        level=Budget.Level.MEMBER, team=design, user=bob, limit=Decimal("5"), changed_by=None
    )
    make_entry(bob, KLING, "1.25", datetime.now(UTC), team=design)

    response = client_for_user(client, alice).get(budgets_url(design))

    assert response.status_code == 200
    rows = {
        member.membership.user.username: member.status for member, _ in response.context["rows"]
    }
    assert rows["bob"].limit == Decimal("5") and rows["bob"].left == Decimal("3.75")
    assert rows["alice"].limit is None and rows["alice"].spent == 0
    html = response.content.decode()
    assert "$5.00 per month" in html and "$3.75 left" in html and rows["bob"].resets in html
    assert "no limit of their own" in html
    assert 'for="id_member-' in html and "Budget for bob (USD)" in html


def test_a_manager_sets_a_members_budget_and_it_is_audited(client, alice, bob, design):
    client = client_for_user(client, alice)

    response = client.post(
        budgets_url(design), member_post(design, bob, "$7.50", "week"), REMOTE_ADDR="10.1.2.3"
    )

    assert response.status_code == 302 and response.url == budgets_url(design)
    budget = Budget.objects.get(level=Budget.Level.MEMBER, team=design, user=bob)
    assert (budget.limit, budget.period) == (Decimal("7.50"), "week")
    event = AuditEvent.objects.filter(action=AuditEvent.Action.BUDGET_SET).latest("created_at")
    assert (event.actor, event.team, event.user, event.address) == (alice, design, bob, "10.1.2.3")
    assert event.after == {"limit": "7.50", "period": "week"}
    page = client.get(budgets_url(design)).content.decode()
    assert (
        "bob&#x27;s budget in the Design team is now $7.50 per ISO week, $7.50 left, resets in"
        in page
    )


def test_a_members_budget_above_the_teams_is_refused_with_the_reason(client, alice, bob, design):
    services.budget_set(level=Budget.Level.TEAM, team=design, limit=Decimal("10"), changed_by=None)

    response = client_for_user(client, alice).post(
        budgets_url(design), member_post(design, bob, "20")
    )

    assert response.status_code == 400
    assert "A member&#x27;s budget must fit within the team&#x27;s: Design team has $10" in (
        response.content.decode()
    )
    assert not Budget.objects.filter(level=Budget.Level.MEMBER, user=bob).exists() or (
        Budget.objects.get(level=Budget.Level.MEMBER, user=bob).limit is None
    )


@pytest.mark.parametrize(
    ("limit", "period", "message"),
    [
        ("-1", "month", "A budget cannot be negative"),
        ("lots", "month", "Enter an amount in dollars"),
        ("NaN", "month", "Enter an amount in dollars"),
        ("Infinity", "month", "Enter an amount in dollars"),
        ("1e40", "month", "more than this studio can count"),
        ("1.234", "month", "whole cents at most"),
        ("5", "fortnight", "Select a valid choice"),
    ],
)
def test_a_bad_member_budget_gets_a_clear_error(client, alice, bob, design, limit, period, message):
    response = client_for_user(client, alice).post(
        budgets_url(design), member_post(design, bob, limit, period)
    )

    assert response.status_code == 400
    assert message in response.content.decode()
    assert not Budget.objects.filter(level=Budget.Level.MEMBER, user=bob).exists()


def test_an_empty_limit_means_no_limit(client, alice, bob, design):
    services.budget_set(
        level=Budget.Level.MEMBER, team=design, user=bob, limit=Decimal("5"), changed_by=None
    )

    response = client_for_user(client, alice).post(
        budgets_url(design), member_post(design, bob, "")
    )

    assert response.status_code == 302
    assert Budget.objects.get(level=Budget.Level.MEMBER, user=bob).limit is None


def test_a_post_for_someone_outside_the_team_changes_nothing(client, alice, carol, design):
    response = client_for_user(client, alice).post(
        budgets_url(design), {"member": "carol", "member-1-limit": "5", "member-1-period": "month"}
    )

    assert response.status_code == 400
    assert "Choose a member of this team." in response.content.decode()
    assert not Budget.objects.filter(level=Budget.Level.MEMBER).exists()


def test_staff_set_the_teams_own_budget_and_managers_cannot(admin_client, client, alice, design):
    post = {"team": str(design.pk), "team-limit": "40", "team-period": "month"}

    refused = client_for_user(client, alice).post(budgets_url(design), post)
    assert refused.status_code == 400
    assert not Budget.objects.filter(level=Budget.Level.TEAM).exists()
    assert "Set the team&#x27;s budget" not in client.get(budgets_url(design)).content.decode()

    assert admin_client.post(budgets_url(design), post).status_code == 302
    assert Budget.objects.get(level=Budget.Level.TEAM, team=design).limit == Decimal("40")


# Who may see a team's pages -----------------------------------------------------------------


TEAM_PAGES = [
    ("teams:review", {}),
    ("teams:entries", {"user": "bob"}),
    ("teams:export", {}),
    ("teams:budgets", {}),
]


@pytest.mark.parametrize(("name", "params"), TEAM_PAGES)
def test_members_other_managers_and_removed_managers_get_404(
    client, alice, bob, carol, ledger, design, name, params
):
    services.membership_remove(team=design, user=alice, by=None)
    url = reverse(name, args=[design.pk])

    for person in (bob, carol, alice):  # a member, another team's manager, a removed manager
        client.force_login(person)
        assert client.get(url, {**MARCH, **params}).status_code == 404, person
    client.force_login(bob)
    assert client.post(reverse("teams:budgets", args=[design.pk]), {}).status_code == 404
    client.logout()
    assert client.get(url, {**MARCH, **params}).status_code == 302  # to the login page


@pytest.mark.parametrize(("name", "params"), TEAM_PAGES)
def test_staff_see_every_teams_pages(admin_client, ledger, design, name, params):
    assert admin_client.get(reverse(name, args=[design.pk]), {**MARCH, **params}).status_code == 200


# Staff: the cost review by team -------------------------------------------------------------


def test_staff_see_spend_by_team_with_the_personal_spaces(admin_client, ledger, design, marketing):
    response = admin_client.get(reverse("costs:review"), MARCH)

    teams = {row["name"]: (row["total"], row["pending"]) for row in response.context["teams"]}
    assert teams == {
        "Design": (Decimal("1.10"), Decimal("0.50")),
        "Marketing": (Decimal("2.00"), 0),
        "Personal spaces": (Decimal("1.20"), 0),
    }
    # The by-team table reads the daily roll-up: it adds up to the ledger's own totals.
    totals = response.context["totals"]
    assert sum(total for total, _ in teams.values()) == totals["total"]
    assert sum(pending for _, pending in teams.values()) == totals["pending"]
    html = response.content.decode()
    assert f"team={design.pk}" in html and "team=personal" in html


def test_staff_by_team_keeps_to_the_chosen_days(admin_client, ledger, design):
    response = admin_client.get(reverse("costs:review"), {"from": "2025-02-28", "to": "2025-03-02"})

    teams = {row["name"]: row["total"] for row in response.context["teams"]}
    # 28 Feb's $9.00 and 2 Mar's $0.50; nobody spent in a personal space on those days.
    assert teams == {"Design": Decimal("9.50"), "Personal spaces": 0}


def test_staff_drill_down_to_a_team_and_to_the_personal_spaces(admin_client, ledger, design):
    url = reverse("costs:entries")

    team = admin_client.get(url, {**MARCH, "team": str(design.pk)})
    personal = admin_client.get(url, {**MARCH, "team": "personal"})

    assert team.context["totals"]["total"] == Decimal("1.10")
    assert {entry.team for entry in team.context["page"]} == {design}
    assert [entry.cost for entry in personal.context["page"]] == [Decimal("1.20")]
    assert admin_client.get(url, {**MARCH, "team": "not-a-team"}).status_code == 404


def test_the_staff_csv_names_each_rows_team(admin_client, ledger):
    rows = csv_rows(admin_client.get(reverse("costs:export"), MARCH))

    by_team = {}
    for row in rows:
        by_team[row["team"]] = by_team.get(row["team"], Decimal(0)) + Decimal(row["cost"])
    assert by_team == {
        "Design": Decimal("1.10"),
        "Marketing": Decimal("2.00"),
        "": Decimal("1.20"),
    }


def test_staff_set_the_organization_budget_from_the_cost_review(admin_client, admin_user):
    response = admin_client.post(
        reverse("costs:organization_budget"),
        {"organization-limit": "1,000", "organization-period": "month"},
    )

    assert response.status_code == 302
    budget = Budget.objects.get(level=Budget.Level.ORGANIZATION)
    assert budget.limit == Decimal("1000")
    event = AuditEvent.objects.get(action=AuditEvent.Action.BUDGET_SET)
    assert event.actor == admin_user and event.address == "127.0.0.1"
    page = admin_client.get(reverse("costs:review")).content.decode()
    assert (
        "The organization&#x27;s budget is now $1000.00 per month, $1000.00 left, resets in" in page
    )
    assert "on all spend: <strong>" in page


def test_a_bad_organization_budget_is_refused_with_a_message(admin_client):
    response = admin_client.post(
        reverse("costs:organization_budget"),
        {"organization-limit": "-5", "organization-period": "month"},
        follow=True,
    )

    assert "budget was not changed: Limit (USD): A budget cannot be negative" in (
        response.content.decode()
    )
    assert not Budget.objects.filter(level=Budget.Level.ORGANIZATION).exists()


def test_staff_see_the_organization_notices(admin_client, alice):
    services.budget_set(level=Budget.Level.ORGANIZATION, limit=Decimal("2"), changed_by=None)
    make_entry(alice, KLING, "1.70", datetime.now(UTC))

    html = admin_client.get(reverse("costs:review")).content.decode()

    assert "the organization reached 80% of $2.00" in html


def test_the_organization_budget_is_staff_only(client, alice):
    client.force_login(alice)

    response = client.post(
        reverse("costs:organization_budget"),
        {"organization-limit": "1", "organization-period": "month"},
    )

    assert response.status_code == 302 and "/admin/login/" in response.url
    assert not Budget.objects.filter(level=Budget.Level.ORGANIZATION).exists()
