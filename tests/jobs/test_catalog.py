"""The model catalog: synced from the provider, kept on failure, and curated by admins."""

from decimal import Decimal

import pytest
from django.urls import reverse

from jobs import imagerouter, services
from jobs.models import Job, VideoModel
from tests.factories import KLING, form_data, succeeded_in

pytestmark = pytest.mark.usefixtures("catalog")


def hide(model_id, visibility=VideoModel.Visibility.HIDDEN):
    VideoModel.objects.filter(pk=model_id).update(visibility=visibility)


def test_a_sync_stores_each_models_prices_durations_sizes_and_image_input():
    kling = VideoModel.objects.get(pk="kling/kling-2.1-standard")

    assert kling.pricing == VideoModel.Pricing.CALCULATED
    assert (kling.price_min, kling.price_max) == (Decimal("0.18"), Decimal("0.50"))
    assert kling.seconds == [5, 10] and kling.default_seconds == 5
    assert kling.accepts_image is True
    assert VideoModel.objects.get(pk="ir/test-video").is_free


def test_a_failed_sync_keeps_the_last_good_catalog(settings):
    before = list(VideoModel.objects.order_by("pk").values())
    settings.IMAGEROUTER_BASE_URL = "http://127.0.0.1:9"  # nothing listens on the discard port
    settings.IMAGEROUTER_CONNECT_TIMEOUT = 1

    with pytest.raises(imagerouter.ImageRouterError):
        services.catalog_sync()

    assert list(VideoModel.objects.order_by("pk").values()) == before


def test_a_sync_keeps_what_admins_set(simulator):
    hide("kling/kling-2.1-standard")
    hide("openai/sora-2", VideoModel.Visibility.STAFF)

    services.catalog_sync()

    assert VideoModel.objects.get(pk="kling/kling-2.1-standard").visibility == "hidden"
    assert VideoModel.objects.get(pk="openai/sora-2").visibility == "staff"


def test_hidden_models_are_offered_to_nobody_and_staff_only_ones_to_staff(
    alice_client, admin_client
):
    hide("kling/kling-2.1-standard")
    hide("openai/sora-2", VideoModel.Visibility.STAFF)

    for_alice = alice_client.get(reverse("jobs:create")).context["form"].fields["model"].choices
    for_staff = admin_client.get(reverse("jobs:create")).context["form"].fields["model"].choices

    assert "kling/kling-2.1-standard" not in dict(for_alice)
    assert "kling/kling-2.1-standard" not in dict(for_staff)
    assert "openai/sora-2" not in dict(for_alice)
    assert "openai/sora-2" in dict(for_staff)


def test_a_hidden_model_sent_anyway_is_refused_at_the_field(alice_client, alice):
    hide("kling/kling-2.1-standard")

    response = alice_client.post(
        reverse("jobs:create"), form_data(prompt="a glass of water", model=KLING, seconds="auto")
    )

    assert "is not a model this studio offers" in str(response.context["form"].errors["model"])
    assert not Job.objects.filter(owner=alice).exists()


def test_retrying_a_job_whose_model_was_hidden_since_is_refused(alice_client, alice):
    failed = Job.objects.create(
        owner=alice, prompt="again", model="kling/kling-2.1-standard", status=Job.Status.FAILED
    )
    hide("kling/kling-2.1-standard")

    response = alice_client.post(reverse("jobs:retry", args=[failed.pk]), follow=True)

    assert "kling/kling-2.1-standard is not available in this studio any more" in response.text
    assert Job.objects.filter(owner=alice).count() == 1


def test_admins_set_visibility_from_the_model_list(admin_client):
    changelist = reverse("admin:jobs_videomodel_changelist")
    page = admin_client.get(changelist)
    formset = page.context["cl"].formset
    data = {
        "form-TOTAL_FORMS": str(formset.total_form_count()),
        "form-INITIAL_FORMS": str(formset.initial_form_count()),
        "_save": "Save",
    }
    for n, form in enumerate(formset.forms):
        data[f"form-{n}-id"] = form.instance.pk
        hidden = form.instance.pk == "openai/sora-2"
        data[f"form-{n}-visibility"] = "hidden" if hidden else form.instance.visibility

    assert admin_client.post(changelist, data).status_code == 302
    assert VideoModel.objects.get(pk="openai/sora-2").visibility == "hidden"
    assert admin_client.get(reverse("admin:jobs_videomodel_add")).status_code == 403


# --- Waits and queue places ---------------------------------------------------------------------


def test_the_typical_wait_is_the_median_of_this_models_recent_successes(alice):
    from jobs.selectors import typical_wait

    assert typical_wait(model_id="kling/kling-2.1-standard") is None
    for seconds in (40, 60, 600):
        succeeded_in(alice, seconds, model="kling/kling-2.1-standard")
    succeeded_in(alice, 5, model="kling/kling-2.1-standard", status=Job.Status.FAILED)
    succeeded_in(alice, 1, model="openai/sora-2")

    wait = typical_wait(model_id="kling/kling-2.1-standard")
    assert (wait.seconds, wait.sample) == (60, 3)


def test_the_typical_wait_forgets_old_history(alice):
    from jobs.selectors import LATENCY_SAMPLE, typical_wait

    for n in range(LATENCY_SAMPLE):
        succeeded_in(alice, 300, model="openai/sora-2", minutes_ago=1000 + n)  # slow, long ago
    for n in range(LATENCY_SAMPLE):
        succeeded_in(alice, 30, model="openai/sora-2", minutes_ago=n)  # fast, lately

    wait = typical_wait(model_id="openai/sora-2")
    assert (wait.seconds, wait.sample) == (30, LATENCY_SAMPLE)


def test_a_queued_job_knows_its_place_in_its_owners_queue_and_the_studios(alice, bob):
    from jobs.selectors import queue_position

    Job.objects.create(owner=bob, model="ir/test-video")
    Job.objects.create(owner=alice, model="ir/test-video")
    Job.objects.create(owner=alice, model="ir/test-video", status=Job.Status.RUNNING)
    mine = Job.objects.create(owner=alice, model="ir/test-video")

    position = queue_position(job=mine)

    assert (position.mine, position.studio) == (2, 3)
