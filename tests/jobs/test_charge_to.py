"""Charge to: where the generate form charges a video (the personal space or one of the user's
teams), the models and budgets that follow the choice, and the budgets, "resets in" lines and
notices a person sees on the spending page and in the banner."""

import re
from decimal import Decimal

import pytest
from django.urls import reverse

from jobs import selectors, services
from jobs.models import Budget, BudgetNotice, Job
from tests.factories import (
    KLING,
    SORA,
    TEST_MODEL,
    VEO,
    form_data,
    make_entry,
    new_job,
    set_budget,
    set_member_budget,
    team_with,
)

pytestmark = pytest.mark.usefixtures("catalog")

CREATE = reverse("jobs:create")
OPTIONS = reverse("jobs:create_options")


def select_options(html: str, name: str) -> list[tuple[str, str, bool]]:
    """(value, text, selected) of each option of the select named `name`."""
    select = re.search(rf'<select name="{name}"[^>]*>(.*?)</select>', html, re.S)
    assert select, f"no select {name}"
    return [
        (value, text.strip(), "selected" in attrs)
        for value, attrs, text in re.findall(
            r'<option value="([^"]*)"([^>]*)>([^<]*)</option>', select[1]
        )
    ]


def model_ids(html: str) -> list[str]:
    return [value for value, _, _ in select_options(html, "model")]


@pytest.fixture
def design(alice):
    """The Design team, alice a member and it her default team."""
    return team_with("Design", members=[alice])


# The select: who sees it, what it offers, what it starts on.


def test_someone_in_no_team_sees_no_charge_to_select(alice_client):
    html = alice_client.get(CREATE).content.decode()

    assert "Charge to" not in html and 'name="charge_to"' not in html
    assert ">Generate</button>" in html


def test_a_member_charges_their_default_team_unless_they_choose_personal(
    alice_client, alice, design, bob
):
    team_with("Marketing", members=[alice, bob])

    html = alice_client.get(CREATE).content.decode()

    assert '<label for="id_charge_to">Charge to</label>' in html
    assert select_options(html, "charge_to") == [
        ("personal", "Personal", False),
        (str(design.pk), "Design", True),
        (str(selectors.memberships_for_user(user=bob).get().team_id), "Marketing", False),
    ]


def test_without_a_default_team_the_form_starts_on_personal(alice_client, alice, design):
    services.default_team_set(user=alice, team=None)

    html = alice_client.get(CREATE).content.decode()

    assert select_options(html, "charge_to")[0] == ("personal", "Personal", True)


def test_when_a_team_is_required_personal_is_not_offered(alice_client, design, settings):
    settings.TEAM_REQUIRED = True

    html = alice_client.get(CREATE).content.decode()

    assert [text for _, text, _ in select_options(html, "charge_to")] == ["Design"]


def test_when_a_team_is_required_someone_in_none_is_told_instead_of_generate(
    alice_client, settings
):
    settings.TEAM_REQUIRED = True

    html = alice_client.get(CREATE).content.decode()

    assert "you are not in one yet. Ask an admin to add you to a team" in html
    assert ">Generate</button>" not in html
    response = alice_client.post(CREATE, form_data())
    assert response.status_code == 200 and not Job.objects.exists()
    assert "This studio charges every video to a team" in response.content.decode()


# Submitting: the job lands where it was charged, and nowhere else may be chosen.


def test_the_video_is_charged_to_the_team_chosen(alice_client, alice, design):
    response = alice_client.post(CREATE, form_data(charge_to=str(design.pk)))

    job = Job.objects.get()
    assert response.status_code == 302 and job.team == design and job.owner == alice


def test_choosing_personal_charges_the_personal_space(alice_client, design):
    alice_client.post(CREATE, form_data(charge_to="personal"))

    assert Job.objects.get().team is None


def test_a_team_one_is_not_in_is_a_form_error_not_a_500(alice_client, alice, design, bob):
    marketing = team_with("Marketing", members=[bob])

    response = alice_client.post(CREATE, form_data(charge_to=str(marketing.pk)))

    assert response.status_code == 200 and not Job.objects.exists()
    assert "You cannot charge videos there: you are not a member of that team." in (
        response.content.decode()
    )


@pytest.mark.parametrize("value", ["", "not-a-team", "00000000-0000-0000-0000-000000000000"])
def test_a_made_up_place_is_a_form_error(alice_client, design, value):
    response = alice_client.post(CREATE, form_data(charge_to=value))

    assert response.status_code == 200 and not Job.objects.exists()
    assert 'class="error" role="alert"' in response.content.decode()


def test_a_member_removed_after_the_form_loaded_cannot_charge_the_team(alice_client, alice, design):
    services.membership_remove(team=design, user=alice, by=None)

    response = alice_client.post(CREATE, form_data(charge_to=str(design.pk)))

    assert response.status_code == 200 and not Job.objects.exists()


# The models follow the place.


def test_the_model_list_is_the_default_teams_allow_list(alice_client, alice):
    team_with("Design", members=[alice], models=[TEST_MODEL, KLING])

    html = alice_client.get(CREATE).content.decode()

    assert model_ids(html) == [TEST_MODEL, KLING]


def test_changing_charge_to_sends_the_places_model_list_out_of_band(alice_client, alice):
    design = team_with("Design", members=[alice], models=[TEST_MODEL, KLING])

    response = alice_client.get(
        OPTIONS, {"charge_to": str(design.pk), "model": VEO, "refresh_models": "true"}
    )

    html = response.content.decode()
    assert response.status_code == 200
    assert '<div id="model-field" class="field" hx-swap-oob="true">' in html
    # Veo is not allowed there: the team's default (the free test model) is chosen instead.
    assert [(v, s) for v, _, s in select_options(html, "model")] == [
        (TEST_MODEL, True),
        (KLING, False),
    ]
    personal = alice_client.get(
        OPTIONS, {"charge_to": "personal", "model": VEO, "refresh_models": "true"}
    ).content.decode()
    assert VEO in model_ids(personal) and SORA in model_ids(personal)


def test_the_model_select_keeps_its_own_request_without_the_model_list(alice_client, design):
    html = alice_client.get(OPTIONS, {"charge_to": str(design.pk), "model": KLING}).content.decode()

    assert 'id="model-field"' not in html


def test_the_options_of_a_model_the_team_may_not_use_are_404(alice_client, alice):
    design = team_with("Design", members=[alice], models=[TEST_MODEL])

    response = alice_client.get(OPTIONS, {"charge_to": str(design.pk), "model": KLING})

    assert response.status_code == 404


def test_the_options_for_a_team_one_is_not_in_are_404(alice_client, bob):
    marketing = team_with("Marketing", members=[bob])

    response = alice_client.get(
        OPTIONS, {"charge_to": str(marketing.pk), "model": TEST_MODEL, "refresh_models": "true"}
    )

    assert response.status_code == 404
    assert "You cannot charge videos there" in response.content.decode()


def test_without_javascript_a_model_the_team_may_not_use_is_refused_in_words(alice_client, alice):
    design = team_with("Design", members=[alice], models=[TEST_MODEL])

    response = alice_client.post(CREATE, form_data(charge_to=str(design.pk), model=KLING))

    assert response.status_code == 200 and not Job.objects.exists()
    assert (
        f"{KLING} is not one of the models the Design team may use. Choose another model, or "
        "charge the video elsewhere." in response.content.decode()
    )


# The facts: each level that applies, with what is left and when it resets.


def test_the_facts_show_the_team_and_member_budgets_with_when_they_reset(
    alice_client, alice, design
):
    services.budget_set(
        level=Budget.Level.TEAM, team=design, limit=Decimal("5.00"), changed_by=None
    )
    set_member_budget(design, alice, "2.00", period="week")
    set_budget(alice, "9.00")
    make_entry(alice, KLING, "0.80", selectors.month_start(), team=design)

    html = alice_client.get(CREATE).content.decode()

    assert re.search(r"Design team: \$4\.20 left this month, resets in \d+ days?, on 1 ", html)
    assert re.search(r"Your budget in the Design team: \$\d\.\d\d left this week, resets in ", html)
    assert "You have $9.00 left" not in html  # a team job is not charged to the personal space


def test_choosing_personal_shows_the_personal_budget_only(alice_client, alice, design):
    services.budget_set(
        level=Budget.Level.TEAM, team=design, limit=Decimal("5.00"), changed_by=None
    )
    set_budget(alice, "3.00")

    html = alice_client.get(
        OPTIONS, {"charge_to": "personal", "model": KLING, "refresh_models": "true"}
    ).content.decode()

    assert "You have $3.00 left this month, resets in " in html
    assert "Design team:" not in html


def test_the_warning_names_the_team_when_the_team_is_short(alice_client, alice, design):
    services.budget_set(
        level=Budget.Level.TEAM, team=design, limit=Decimal("0.40"), changed_by=None
    )

    html = alice_client.get(OPTIONS, {"charge_to": str(design.pk), "model": VEO}).content.decode()

    assert (
        "This model can cost up to $0.60, more than Design team has left this month, so "
        "Generate would be refused." in html
    )


def test_a_refusal_at_submit_names_the_short_level(alice_client, alice, design):
    services.budget_set(
        level=Budget.Level.TEAM, team=design, limit=Decimal("0.40"), changed_by=None
    )
    set_budget(alice, "50.00")

    response = alice_client.post(CREATE, form_data(charge_to=str(design.pk), model=KLING))

    assert response.status_code == 200 and not Job.objects.exists()
    assert (
        "Design team has $0.40 left this month; this video could cost up to $0.50."
        in response.content.decode()
    )


# Paths that start from an earlier job keep its place.


def test_generate_again_from_a_team_video_charges_the_team_again(alice_client, alice, design):
    services.default_team_set(user=alice, team=None)
    job = new_job(alice, team=design, status=Job.Status.SUCCEEDED)

    html = alice_client.get(CREATE, {"from": str(job.pk)}).content.decode()

    assert (str(design.pk), "Design", True) in select_options(html, "charge_to")


def test_generate_again_from_a_personal_video_where_a_team_is_required_uses_the_default(
    alice_client, alice, design, settings
):
    settings.TEAM_REQUIRED = True
    job = new_job(alice, status=Job.Status.SUCCEEDED)

    html = alice_client.get(CREATE, {"from": str(job.pk)}).content.decode()

    assert select_options(html, "charge_to") == [(str(design.pk), "Design", True)]


def test_a_retry_keeps_the_team(alice, design):
    job = new_job(alice, team=design, status=Job.Status.FAILED)

    assert services.job_retry(job=job).team == design


# The spending page and the banner.


def test_the_spending_page_shows_team_budgets_and_when_each_resets(
    alice_client, alice, bob, design
):
    services.budget_set(
        level=Budget.Level.TEAM, team=design, limit=Decimal("10.00"), changed_by=None
    )
    set_budget(alice, "5.00")
    set_member_budget(design, alice, "4.00")
    set_member_budget(design, make_team_member(design, bob), "3.00")
    make_entry(alice, KLING, "1.00", selectors.month_start(), team=design)
    marketing = team_with("Marketing", members=[bob], limit="99.00")

    html = alice_client.get(reverse("spending")).content.decode()

    assert "Your teams&#x27; budgets" in html or "Your teams' budgets" in html
    assert '<th scope="row">Design team</th>' in html
    assert '<th scope="row">Your budget in the Design team</th>' in html
    assert "<strong>$9.00</strong> left this month" in html
    assert "<strong>$3.00</strong> left this month" in html
    assert "bob" not in html and marketing.name not in html  # another member, another team
    assert re.search(r"<dt>Resets</dt>\s*<dd>in \d+ days?, on 1 ", html)


def make_team_member(team, user):
    services.membership_set(team=team, user=user, by=None)
    return user


def test_the_spending_page_lists_ones_own_notices_newest_first(alice_client, alice, bob):
    set_budget(alice, "1.00")
    set_budget(bob, "1.00")
    make_entry(alice, KLING, "0.60", selectors.month_start())
    make_entry(bob, KLING, "0.90", selectors.month_start())
    services.notices_record(budgets=list(Budget.objects.filter(level=Budget.Level.PERSONAL)))
    make_entry(alice, KLING, "0.30", selectors.month_start())
    services.notices_record(budgets=list(Budget.objects.filter(user=alice)))

    notices = list(selectors.notices_for_user(user=alice))
    html = alice_client.get(reverse("spending")).content.decode()

    assert [n.threshold for n in notices] == [80, 50]
    assert {n.user for n in notices} == {alice}
    assert BudgetNotice.objects.filter(user=bob).count() == 2
    assert "Your personal budget reached 80% of $1.00" in html
    assert html.index("reached 80%") < html.index("reached 50%")


def test_the_banner_warns_when_a_team_budget_is_nearly_used(alice_client, alice, design):
    services.budget_set(
        level=Budget.Level.TEAM, team=design, limit=Decimal("1.00"), changed_by=None
    )
    make_entry(alice, KLING, "0.90", selectors.month_start(), team=design)

    html = alice_client.get(reverse("jobs:list")).content.decode()

    assert re.search(
        r"The Design team has used 90% of its budget this month \(\$0\.90 of \$1\.00, counting "
        r"jobs still running\); it resets in ",
        html,
    )


def test_the_personal_banner_says_when_the_budget_resets(alice_client, alice):
    set_budget(alice, "1.00")
    make_entry(alice, KLING, "0.85", selectors.month_start())

    html = alice_client.get(reverse("jobs:list")).content.decode()

    assert re.search(r"You have used 85% of this month's budget \(\$0\.85 of \$1\.00, "
                     r"counting jobs still running\); it resets in ", html)  # fmt: skip
