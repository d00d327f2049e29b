"""The notification-settings page (/account/notifications/): each person's choices of what the
studio emails them, the defaults before they ever save, and who is offered which choices (team
alerts for managers, the organization's and the daily summary for staff, the digest for both)."""

import pytest
from django.urls import reverse

from jobs.models import AlertPreferences
from tests.factories import team_with
from tests.helpers import visible_text

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_passwords")]

URL = "/account/notifications/"


def page(client, user):
    client.force_login(user)
    return client.get(URL)


def ticked(response) -> dict[str, bool]:
    """{field name: ticked} for every checkbox on the form."""
    form = response.context["form"]
    return {name: bool(form[name].value()) for name in form.fields}


def test_a_new_user_sees_the_defaults_and_only_their_own_choices(client, alice):
    alice.email = "alice@example.com"
    alice.save()

    response = page(client, alice)

    assert response.status_code == 200
    assert ticked(response) == {"job_ready": True, "job_failed": True, "budget_own": True}
    text = visible_text(response)
    assert "What the studio emails you at alice@example.com" in text
    assert "Email me when a video of mine is ready" in text
    assert "The teams I manage" not in text
    assert "The organization's budget" not in text
    assert "weekly spend digest" not in text
    assert not AlertPreferences.objects.exists()  # made the first time they save


def test_the_header_links_the_page(client, alice):
    client.force_login(alice)
    html = client.get(reverse("spending")).content.decode()
    assert f'href="{URL}">Notifications</a>' in html


def test_a_manager_is_offered_their_teams_alerts_and_the_digest(client, alice, bob):
    team_with("Design", managers=[alice], members=[bob])

    offered = ticked(page(client, alice))
    assert offered == {
        "job_ready": True,
        "job_failed": True,
        "budget_own": True,
        "budget_teams": True,
        "weekly_digest": False,  # opt-in
    }
    assert "You manage: Design team." in visible_text(page(client, alice))
    assert "budget_teams" not in ticked(page(client, bob))  # a member is not a manager


def test_staff_are_offered_the_organization_the_daily_summary_and_the_digest(
    client, django_user_model
):
    olga = django_user_model.objects.create_user("olga", "olga@example.com", "pw", is_staff=True)

    assert ticked(page(client, olga)) == {
        "job_ready": True,
        "job_failed": True,
        "budget_own": True,
        "budget_organization": True,
        "unknown_summary": True,
        "weekly_digest": False,
    }


def test_saving_keeps_the_choices_and_says_so(client, alice):
    team_with("Design", managers=[alice])
    client.force_login(alice)

    response = client.post(
        URL, {"job_failed": "on", "budget_teams": "on", "weekly_digest": "on"}, follow=True
    )

    assert "Your notification settings are saved." in visible_text(response)
    saved = AlertPreferences.objects.get(user=alice)
    assert (saved.job_ready, saved.job_failed, saved.budget_own) == (False, True, False)
    assert (saved.budget_teams, saved.weekly_digest) == (True, True)
    assert ticked(client.get(URL)) == {
        "job_ready": False,
        "job_failed": True,
        "budget_own": False,
        "budget_teams": True,
        "weekly_digest": True,
    }

    client.post(URL, {"job_ready": "on"})  # a second save updates the same row
    assert AlertPreferences.objects.filter(user=alice).count() == 1
    assert AlertPreferences.objects.get(user=alice).job_ready is True


def test_a_choice_not_offered_is_not_saved(client, alice):
    """A member who posts the organization's alert or the digest anyway changes nothing there."""
    client.force_login(alice)
    client.post(URL, {"job_ready": "on", "budget_organization": "", "weekly_digest": "on"})

    saved = AlertPreferences.objects.get(user=alice)
    assert saved.budget_organization is True  # the default, untouched
    assert saved.weekly_digest is False


def test_without_an_address_the_page_says_nothing_can_be_sent(client, bob):
    assert "Your account has no email address" in visible_text(page(client, bob))


def test_a_visitor_is_sent_to_log_in(client):
    response = client.get(URL)
    assert response.status_code == 302 and response.url.startswith(reverse("login"))
