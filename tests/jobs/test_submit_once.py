"""The generate form's token: pressing Generate twice, or sending the same form again after an
error, lands on the first job instead of starting (and paying for) a second."""

import re

import pytest
from django.urls import reverse

from jobs.models import Job, SubmitKey
from tests.factories import form_data

pytestmark = pytest.mark.usefixtures("catalog", "broker_url")

FORM = form_data(prompt="sunrise over mountains")


def token_of(client) -> str:
    html = client.get(reverse("jobs:create")).content.decode()
    return re.search(r'name="submit_token" value="([0-9a-f]{32})"', html)[1]


def test_each_rendering_of_the_form_carries_a_new_token(alice_client):
    assert token_of(alice_client) != token_of(alice_client)


def test_the_same_form_sent_twice_makes_one_job_and_both_land_on_it(alice_client, alice):
    form = {**FORM, "submit_token": token_of(alice_client)}

    first = alice_client.post(reverse("jobs:create"), form)
    again = alice_client.post(reverse("jobs:create"), form, follow=True)

    job = Job.objects.get(owner=alice)
    assert first.status_code == 302 and first.url == reverse("jobs:detail", args=[job.pk])
    assert again.redirect_chain == [(reverse("jobs:detail", args=[job.pk]), 302)]
    assert "You had already pressed Generate for this video" in again.content.decode()


def test_the_form_edited_after_back_and_sent_with_its_old_token_is_a_new_video(alice_client, alice):
    token = token_of(alice_client)

    alice_client.post(reverse("jobs:create"), {**FORM, "submit_token": token})
    alice_client.post(reverse("jobs:create"), {**FORM, "prompt": "dusk", "submit_token": token})

    assert Job.objects.filter(owner=alice).count() == 2


def test_a_form_refused_then_sent_again_is_judged_again(alice_client, alice, settings):
    """A refusal made nothing, so its token is not spent."""
    form = {**FORM, "submit_token": token_of(alice_client)}
    settings.JOB_ACTIVE_LIMIT = 1
    Job.objects.create(owner=alice, prompt="busy", model="ir/test-video")

    refused = alice_client.post(reverse("jobs:create"), form)
    Job.objects.filter(owner=alice).update(status=Job.Status.SUCCEEDED)
    accepted = alice_client.post(reverse("jobs:create"), form)

    assert refused.status_code == 200 and "the most this studio allows" in refused.text
    assert accepted.status_code == 302
    assert SubmitKey.objects.filter(owner=alice, job__isnull=False).count() == 1


def test_a_form_without_a_token_still_submits(alice_client, alice):
    """A page rendered before the token existed, or a hand-made post: an ordinary submit."""
    alice_client.post(reverse("jobs:create"), FORM)
    alice_client.post(reverse("jobs:create"), {**FORM, "submit_token": "not-a-token"})

    assert Job.objects.filter(owner=alice).count() == 2
