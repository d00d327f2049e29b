"""The generate form that follows the chosen model: the words for price, budget and wait, the
options partial the model select fetches, and prefilling from an earlier job (?from, ?frame)."""

import datetime as dt
import io
import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.files.base import ContentFile
from django.urls import reverse
from django.utils import timezone
from PIL import Image

from jobs.models import Job, VideoModel
from jobs.selectors import BudgetStatus
from jobs.wording import (
    NO_WAIT_HISTORY,
    budget_words,
    duration_words,
    model_label,
    over_budget_words,
    price_words,
    wait_words,
)
from tests.factories import KLING, SORA, form_data, new_job, set_budget, stored_job
from tests.media import image_bytes

pytestmark = pytest.mark.usefixtures("catalog")

OPTIONS = reverse("jobs:create_options")
CREATE = reverse("jobs:create")


def a_model(**fields) -> VideoModel:
    values = {
        "id": "test/model",
        "name": "Test model",
        "pricing": VideoModel.Pricing.FIXED,
        "price_min": Decimal("0.40"),
        "price_average": Decimal("0.40"),
        "price_max": Decimal("0.40"),
        "seconds": [5],
        "default_seconds": 5,
        "sizes": [],
        "accepts_image": False,
        "synced_at": timezone.now(),
    }
    values.update(fields)
    return VideoModel(**values)


def catalog_model(model_id: str) -> VideoModel:
    return VideoModel.objects.get(pk=model_id)


# The words: one place for the estimate, the option labels, the budget and the wait.


@pytest.mark.parametrize(
    ("model_id", "words"),
    [
        ("ir/test-video", "free"),
        ("google/veo-3.1-fast", "$0.60"),
        ("kling/kling-2.1-standard", "about $0.30, at most $0.50"),
        ("openai/sora-2", "price set after generation, usually $0.40–$1.20"),
    ],
)
def test_the_estimate_says_what_each_pricing_kind_costs(model_id, words):
    assert price_words(catalog_model(model_id)) == words


def test_a_fixed_price_with_a_spread_says_about_and_at_most():
    model = a_model(price_min=Decimal("0.30"), price_average=Decimal("0.40"))
    assert price_words(model) == "about $0.40, at most $0.40"


def test_a_price_set_after_generation_with_one_figure_names_it_once():
    model = a_model(
        pricing=VideoModel.Pricing.POST_GENERATION,
        price_min=Decimal("0.28"),
        price_average=Decimal("0.28"),
        price_max=Decimal("0.28"),
    )
    assert price_words(model) == "price set after generation, usually $0.28"


def test_a_model_of_price_zero_is_free_whatever_its_pricing_kind():
    zero = Decimal(0)
    model = a_model(
        pricing=VideoModel.Pricing.CALCULATED, price_min=zero, price_average=zero, price_max=zero
    )
    assert price_words(model) == "free"


@pytest.mark.parametrize(
    "model_id",
    ["ir/test-video", "google/veo-3.1-fast", "kling/kling-2.1-standard", "openai/sora-2"],
)
def test_the_option_label_uses_the_estimates_words(model_id):
    model = catalog_model(model_id)
    label = model_label(model)
    assert label.startswith(model.name)
    assert price_words(model) in label
    assert label.endswith(" · image → video") == model.accepts_image


# Noon on 5 December (UTC): a month's budget resets in 27 days (26 and a half), on 1 Jan.
NOON_5_DEC = dt.datetime(2026, 12, 5, 12, tzinfo=dt.UTC)


def test_the_budget_left_this_month_is_said_in_dollars_with_when_it_resets():
    status = BudgetStatus(limit=Decimal("5.00"), used=Decimal("0.50"), now=NOON_5_DEC)
    assert budget_words(status) == "You have $4.50 left this month, resets in 27 days, on 1 Jan."


def test_a_weekly_budget_says_this_week_and_resets_on_monday():
    status = BudgetStatus(
        limit=Decimal("5.00"), used=Decimal("1.00"), period="week", now=NOON_5_DEC
    )
    assert budget_words(status) == "You have $4.00 left this week, resets in 2 days, on 7 Dec."


def test_no_limit_says_so():
    assert budget_words(BudgetStatus(limit=None, used=Decimal("12.00"))) == "No monthly limit."


def test_a_budget_already_overspent_leaves_nothing_not_a_negative_sum():
    status = BudgetStatus(limit=Decimal("1.00"), used=Decimal("1.30"))
    assert budget_words(status).startswith("You have $0.00 left this month, resets in ")


def test_a_model_that_could_cost_more_than_is_left_warns_that_generate_would_be_refused():
    status = BudgetStatus(limit=Decimal("1.00"), used=Decimal("0.70"))
    warning = over_budget_words(catalog_model("kling/kling-2.1-standard"), status)
    assert warning.startswith("This model can cost up to $0.50, more than you have left")
    assert "Generate would be refused" in warning


@pytest.mark.parametrize(
    ("model_id", "limit", "used"),
    [
        ("kling/kling-2.1-standard", "1.00", "0.50"),  # exactly what is left: accepted
        ("kling/kling-2.1-standard", None, "99.00"),  # no limit
        ("ir/test-video", "1.00", "1.00"),  # free, with nothing left
    ],
)
def test_no_warning_when_the_top_price_fits(model_id, limit, used):
    status = BudgetStatus(limit=Decimal(limit) if limit else None, used=Decimal(used))
    assert over_budget_words(catalog_model(model_id), status) == ""


@pytest.mark.parametrize(
    ("seconds", "words"),
    [
        (0.3, "1 s"),
        (45, "45 s"),
        (59.6, "1 min"),
        (70, "1 min 10 s"),
        (120, "2 min"),
        (3900, "1 h 5 min"),
        (7200, "2 h"),
    ],
)
def test_durations_read_as_people_say_them(seconds, words):
    assert duration_words(seconds) == words


def test_the_wait_names_the_median_and_how_many_videos_it_comes_from():
    assert wait_words(70, 12) == "Usually ready in about 1 min 10 s (median of the last 12 here)."
    assert wait_words(40, 1) == "Usually ready in about 40 s (the only one made here so far)."


def test_without_history_the_wait_is_the_honest_general_answer():
    assert wait_words(None, 0) == (
        "No videos from this model here yet; video models usually take from 20 seconds to a "
        "few minutes."
    )


# The options partial that the model select fetches.


def options(client, **params):
    response = client.get(OPTIONS, params)
    return response, response.content.decode()


def selected(html: str, name: str) -> str:
    select = re.search(rf'<select name="{name}".*?</select>', html, re.S)[0]
    return re.search(r'<option value="([^"]*)" selected>', select)[1]


def option_values(html: str, name: str) -> list[str]:
    select = re.search(rf'<select name="{name}".*?</select>', html, re.S)[0]
    return re.findall(r'<option value="([^"]*)"', select)


def test_the_options_offer_only_the_models_durations_with_its_default_selected(alice_client):
    _, html = options(alice_client, model="openai/sora-2")
    assert option_values(html, "seconds") == ["4", "8", "12"]
    assert selected(html, "seconds") == "4"


def test_the_options_offer_auto_and_the_models_sizes(alice_client):
    _, html = options(alice_client, model="kling/kling-2.1-standard")
    assert option_values(html, "size") == ["auto", "1280x720", "720x1280", "960x960"]
    assert selected(html, "size") == "auto"


def test_a_model_that_takes_any_size_gets_a_text_box(alice_client):
    a_model(id="test/any-size", sizes=[]).save()
    _, html = options(alice_client, model="test/any-size", size="1000x500")
    assert '<select name="size"' not in html
    assert re.search(r'<input type="text" name="size" value="1000x500"', html)


def test_a_model_that_names_no_durations_offers_auto(alice_client):
    a_model(id="test/any-length", seconds=[], default_seconds=None).save()
    _, html = options(alice_client, model="test/any-length")
    assert option_values(html, "seconds") == ["auto"]


def test_seconds_and_size_carry_over_when_the_new_model_takes_them(alice_client):
    _, html = options(alice_client, model="kling/kling-2.1-standard", seconds="10", size="720x1280")
    assert selected(html, "seconds") == "10"
    assert selected(html, "size") == "720x1280"


def test_seconds_and_size_fall_back_when_the_new_model_does_not_take_them(alice_client):
    _, html = options(alice_client, model="google/veo-3.1-fast", seconds="5", size="960x960")
    assert selected(html, "seconds") == "4"
    assert selected(html, "size") == "auto"


def image_field(html: str) -> str:
    return re.search(r'<div id="image-field"[^>]*>', html)[0]


def test_the_image_field_shows_for_an_image_to_video_model(alice_client):
    _, html = options(alice_client, model="kling/kling-2.1-standard")
    assert " hidden" not in image_field(html)
    assert '<label for="id_image">Image</label>' in html


def test_the_image_field_is_hidden_for_a_text_only_model(alice_client):
    _, html = options(alice_client, model="openai/sora-2")
    assert image_field(html).endswith(" hidden>")


def test_the_options_carry_the_estimate_budget_and_wait_out_of_band(alice_client, alice):
    set_budget(alice, "5.00")
    _, html = options(alice_client, model="kling/kling-2.1-standard")
    facts = html[html.index('<div id="model-facts" hx-swap-oob="innerHTML">') :]
    assert "about $0.30, at most $0.50" in facts
    assert "You have $5.00 left this month, resets in " in facts
    assert NO_WAIT_HISTORY in facts
    assert "would be refused" not in facts


def test_the_options_warn_when_the_model_could_cost_more_than_is_left(alice_client, alice):
    set_budget(alice, "0.55")
    _, html = options(alice_client, model="google/veo-3.1-fast")
    assert "You have $0.55 left this month, resets in " in html
    assert "This model can cost up to $0.60, more than you have left" in html


def test_the_wait_comes_from_this_studios_recent_successes_of_that_model(alice_client, alice):
    now = timezone.now()
    for seconds in (60, 70, 200):
        Job.objects.create(
            owner=alice,
            model="kling/kling-2.1-standard",
            status=Job.Status.SUCCEEDED,
            started_at=now - timedelta(seconds=seconds),
            finished_at=now,
        )
    _, html = options(alice_client, model="kling/kling-2.1-standard")
    assert "Usually ready in about 1 min 10 s (median of the last 3 here)." in html
    _, other = options(alice_client, model="google/veo-3.1-fast")
    assert NO_WAIT_HISTORY in other


@pytest.mark.parametrize("visibility", [VideoModel.Visibility.HIDDEN, VideoModel.Visibility.STAFF])
def test_a_model_a_person_may_not_choose_gets_404_with_a_clear_message(alice_client, visibility):
    VideoModel.objects.filter(pk="kling/kling-2.1-standard").update(visibility=visibility)
    response, text = options(alice_client, model="kling/kling-2.1-standard")
    assert response.status_code == 404
    assert text == "You cannot choose this model. Reload the page to see the models you can."


def test_staff_get_the_options_of_a_staff_only_model(admin_client):
    VideoModel.objects.filter(pk="kling/kling-2.1-standard").update(
        visibility=VideoModel.Visibility.STAFF
    )
    response, html = options(admin_client, model="kling/kling-2.1-standard")
    assert response.status_code == 200
    assert option_values(html, "seconds") == ["5", "10"]


@pytest.mark.parametrize("params", [{}, {"model": "foo/bar"}])
def test_no_model_or_an_unknown_one_gets_404(alice_client, params):
    assert alice_client.get(OPTIONS, params).status_code == 404


def test_the_options_need_a_login(client, db):
    response = client.get(OPTIONS, {"model": "ir/test-video"})
    assert response.status_code == 302 and "login" in response.url


def test_the_model_select_asks_for_the_options_when_it_changes(alice_client):
    html = alice_client.get(CREATE).content.decode()
    select = re.search(r'<select name="model"[^>]*>', html)[0]
    assert f'hx-get="{OPTIONS}"' in select
    assert 'hx-trigger="change"' in select
    assert 'hx-target="#model-options"' in select
    assert '<div id="model-options"' in html
    assert "Estimate:</strong> free" in html  # ir/test-video, chosen at first


def test_an_invalid_submit_reshows_the_fields_of_the_posted_model(alice_client):
    response = alice_client.post(
        CREATE,
        form_data(prompt="", model=SORA, seconds="8"),
    )
    html = response.content.decode()
    assert response.status_code == 200
    assert option_values(html, "seconds") == ["4", "8", "12"]
    assert selected(html, "seconds") == "8"
    assert image_field(html).endswith(" hidden>")
    assert "price set after generation" in html


# Prefill: ?from (generate again, edit and re-run) and ?frame (use as input image).


@pytest.fixture
def alices_job(alice):
    return new_job(
        alice,
        "a paper boat on a stream",
        model=KLING,
        size="720x1280",
        seconds="10",
        response_format="b64_ephemeral",
        status=Job.Status.SUCCEEDED,
    )


@pytest.fixture
def alices_job_with_image(alices_job):
    alices_job.input_image.save("input.png", ContentFile(image_bytes("PNG", (48, 32))))
    return alices_job


@pytest.fixture
def alices_video(alice):
    """A real finished video from the simulator, on a model that takes no image."""
    return stored_job(alice, "a clock ticking", model=SORA, size="1280x720", seconds="4")


def test_from_prefills_the_prompt_and_settings_of_the_earlier_job(alice_client, alices_job):
    response = alice_client.get(CREATE, {"from": alices_job.pk})
    html = response.content.decode()
    form = response.context["form"]

    assert form.chosen_model.id == "kling/kling-2.1-standard"
    assert "a paper boat on a stream</textarea>" in html
    assert selected(html, "model") == "kling/kling-2.1-standard"
    assert selected(html, "seconds") == "10"
    assert selected(html, "size") == "720x1280"
    assert 'value="b64_ephemeral" id="id_response_format_2" required checked' in html
    assert "autofocus" not in html
    assert "earlier video" not in html  # it had no input image


def test_from_with_edit_puts_the_cursor_in_the_prompt(alice_client, alices_job):
    html = alice_client.get(CREATE, {"from": alices_job.pk, "edit": "1"}).content.decode()
    assert re.search(r"<textarea[^>]* autofocus[^>]*>\s*a paper boat", html)


def test_from_offers_the_earlier_input_image_again(alice_client, alices_job_with_image):
    job = alices_job_with_image
    html = alice_client.get(CREATE, {"from": job.pk}).content.decode()

    assert "Using the input image from your earlier video" in html
    assert f'src="{reverse("jobs:image", args=[job.pk])}"' in html
    assert re.search(r'<input type="checkbox" name="use_earlier_image"[^>]* checked', html)
    assert '<label for="id_use_earlier_image">Use that image again</label>' in html
    assert f'name="image_from_job" value="{job.pk}"' in html


def post_again(client, **fields):
    fields = {"prompt": "a paper boat on a stream", "model": KLING} | fields
    return client.post(CREATE, form_data(**fields))


def test_submitting_with_the_box_ticked_copies_the_earlier_image(
    alice_client, alice, alices_job_with_image
):
    source = alices_job_with_image
    response = post_again(alice_client, image_from_job=source.pk, use_earlier_image="on")

    new = Job.objects.exclude(pk=source.pk).get(owner=alice)
    assert response.status_code == 302
    assert new.input_image and new.input_image.name != source.input_image.name
    assert new.input_image.name.rsplit("/", 1)[-1].startswith("input")
    assert new.input_image.read() == source.input_image.open("rb").read()


def test_submitting_with_the_box_unticked_sends_no_image(
    alice_client, alice, alices_job_with_image
):
    post_again(alice_client, image_from_job=alices_job_with_image.pk)
    assert not Job.objects.exclude(pk=alices_job_with_image.pk).get(owner=alice).input_image


def test_a_file_chosen_instead_replaces_the_earlier_image(
    alice_client, alice, alices_job_with_image
):
    upload = ContentFile(image_bytes("JPEG", (40, 40)), name="mine.jpg")
    post_again(
        alice_client,
        image_from_job=alices_job_with_image.pk,
        use_earlier_image="on",
        image=upload,
    )
    new = Job.objects.exclude(pk=alices_job_with_image.pk).get(owner=alice)
    assert new.input_image.name.endswith(".jpg")


def test_the_earlier_image_on_a_model_without_image_input_is_refused_at_the_field(
    alice_client, alices_job_with_image
):
    response = post_again(
        alice_client,
        model="openai/sora-2",
        seconds="4",
        image_from_job=alices_job_with_image.pk,
        use_earlier_image="on",
    )
    assert response.status_code == 200
    assert response.context["form"].errors["image"] == [
        "openai/sora-2 does not take an input image. Untick “Use that image again”, or choose "
        "a model marked “image → video”."
    ]
    assert Job.objects.count() == 1


def test_from_a_model_no_longer_offered_prefills_the_rest_and_says_so(alice_client, alices_job):
    VideoModel.objects.filter(pk="kling/kling-2.1-standard").update(
        visibility=VideoModel.Visibility.HIDDEN
    )
    response = alice_client.get(CREATE, {"from": alices_job.pk})
    html = response.content.decode()

    assert (
        "kling/kling-2.1-standard, the model of your earlier video, is no longer offered." in html
    )
    assert "a paper boat on a stream</textarea>" in html
    assert response.context["form"].chosen_model.id == "ir/test-video"
    assert selected(html, "seconds") == "5"  # 10 is not one ir/test-video makes
    assert selected(html, "size") == "720x1280"  # ir/test-video makes it too
    assert 'value="b64_ephemeral" id="id_response_format_2" required checked' in html


def test_frame_offers_the_last_frame_with_a_model_that_takes_images(alice_client, alices_video):
    response = alice_client.get(CREATE, {"frame": alices_video.pk})
    html = response.content.decode()

    # sora-2 takes no image: the cheapest model that does is chosen.
    assert response.context["form"].chosen_model.id == "ir/test-video"
    assert "Using the last frame of your earlier video" in html
    assert f'src="{reverse("jobs:last_frame", args=[alices_video.pk])}"' in html
    assert '<label for="id_use_earlier_image">Use this frame</label>' in html
    assert not image_field(html).endswith(" hidden>")


def test_frame_keeps_the_videos_own_model_when_it_takes_images(alice_client, alice):
    job = stored_job(alice, "a kite", model=KLING, size="1280x720", seconds="5")
    response = alice_client.get(CREATE, {"frame": job.pk})
    assert response.context["form"].chosen_model.id == "kling/kling-2.1-standard"


def test_the_last_frame_is_a_private_png_of_the_videos_size(alice_client, alices_video):
    response = alice_client.get(reverse("jobs:last_frame", args=[alices_video.pk]))

    assert response.status_code == 200
    assert response["Content-Type"] == "image/png"
    assert response["Cache-Control"].startswith("private")
    assert response["X-Content-Type-Options"] == "nosniff"
    assert Image.open(io.BytesIO(response.content)).size == (1280, 720)


def test_submitting_with_the_frame_sends_it_as_the_input_image(alice_client, alice, alices_video):
    response = alice_client.post(
        CREATE,
        form_data(prompt="", frame_from_job=alices_video.pk, use_earlier_image="on"),
    )
    new = Job.objects.exclude(pk=alices_video.pk).get(owner=alice)

    assert response.status_code == 302
    assert new.input_image.name.rsplit("/", 1)[-1].startswith("input")
    assert new.input_image.name.endswith(".png")
    picture = Image.open(new.input_image.open("rb"))
    assert (picture.format, picture.size) == ("PNG", (1280, 720))


def test_frame_of_an_unfinished_job_is_404(alice_client, alice):
    queued = Job.objects.create(owner=alice, prompt="still waiting", model="ir/test-video")
    assert alice_client.get(CREATE, {"frame": queued.pk}).status_code == 404
    assert alice_client.get(reverse("jobs:last_frame", args=[queued.pk])).status_code == 404


@pytest.mark.parametrize("param", ["from", "frame"])
def test_a_malformed_id_is_404(alice_client, param):
    assert alice_client.get(CREATE, {param: "not-a-uuid"}).status_code == 404


@pytest.fixture
def bob_client(client, bob):
    client.force_login(bob)
    return client


@pytest.mark.parametrize("param", ["from", "frame"])
def test_bob_gets_404_prefilling_from_alices_job(bob_client, alices_video, param):
    response = bob_client.get(CREATE, {param: alices_video.pk, "edit": "1"})
    assert response.status_code == 404
    assert "a clock ticking" not in response.content.decode()


def test_bob_gets_404_on_alices_last_frame(bob_client, alices_video):
    assert bob_client.get(reverse("jobs:last_frame", args=[alices_video.pk])).status_code == 404


def test_the_last_frame_is_not_for_staff_either(admin_client, alices_video):
    assert admin_client.get(reverse("jobs:last_frame", args=[alices_video.pk])).status_code == 404


@pytest.mark.parametrize("field", ["image_from_job", "frame_from_job"])
def test_bob_cannot_submit_with_alices_image_or_frame(bob_client, bob, alices_video, field):
    alices_video.input_image.save("input.png", ContentFile(image_bytes()))
    response = bob_client.post(
        CREATE,
        form_data(prompt="mine now", **{field: alices_video.pk, "use_earlier_image": "on"}),
    )
    assert response.status_code == 200
    assert response.context["form"].errors["image"] == [
        "The image from your earlier video is no longer there. Choose an image, or none."
    ]
    assert not Job.objects.filter(owner=bob).exists()
    assert "Using the" not in response.content.decode()


def test_bobs_options_request_shows_nothing_of_alices_image(bob_client, alices_video):
    _, html = options(
        bob_client, model="ir/test-video", frame_from_job=alices_video.pk, use_earlier_image="on"
    )
    assert "last frame" not in html
    assert str(alices_video.pk) not in html


def test_the_options_keep_offering_the_earlier_image_as_the_model_changes(
    alice_client, alices_job_with_image
):
    job = alices_job_with_image
    _, html = options(
        alice_client, model="google/veo-3.1-fast", image_from_job=job.pk, use_earlier_image="on"
    )
    assert "Using the input image from your earlier video" in html
    assert f'name="image_from_job" value="{job.pk}"' in html
    assert re.search(r'<input type="checkbox" name="use_earlier_image"[^>]* checked', html)
