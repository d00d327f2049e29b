"""The generation endpoint's refusals and its asynchronous answer, through Django's test client.

What waits for a worker (the synchronous answer, a job run to the end) is in test_live.py.
"""

import base64
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from jobs.models import Job, VideoModel
from tests.factories import set_budget
from tests.media import image_bytes

from .helpers import GENERATIONS

pytestmark = pytest.mark.usefixtures("catalog", "broker_url")

ASYNC = GENERATIONS + "?async=true"


def error_of(response) -> dict:
    body = response.json()
    assert set(body) == {"error"}, body
    return body["error"]


# --- Who is asking ------------------------------------------------------------------------------


def test_no_token_is_401_in_the_providers_shape(api):
    response = api.post(None, ASYNC, json={"model": "ir/test-video", "prompt": "fox"})

    assert response.status_code == 401
    assert error_of(response) == {
        "message": "Authorization header is required",
        "type": "unauthorized",
    }
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert not Job.objects.exists()


def test_an_unknown_key_is_401(api, alice_key):
    response = api.post(alice_key + "x", ASYNC, json={"model": "ir/test-video", "prompt": "fox"})

    assert response.status_code == 401
    assert "unknown or was revoked" in error_of(response)["message"]


def test_a_signed_in_browser_without_a_token_gets_401(alice_client):
    """The session cookie counts for nothing here, so no other site can spend through it."""
    response = alice_client.post(
        ASYNC, {"model": "ir/test-video", "prompt": "fox"}, content_type="application/json"
    )

    assert response.status_code == 401


def test_a_deactivated_users_token_is_401(api, alice, alice_key):
    alice.is_active = False
    alice.save()

    assert api.get(alice_key, "/v1/models").status_code == 401


# --- Validation: the form's rules, in the provider's shape -------------------------------------


@pytest.mark.parametrize(
    ("body", "param", "words"),
    [
        ({"prompt": "fox"}, "model", "'model' is a required parameter"),
        ({"model": "ir/test-video"}, "prompt", "ir/test-video needs a prompt"),
        ({"model": "ir/test-video", "prompt": "x" * 10_001}, "prompt", "10,001 characters"),
        ({"model": "ir/test-video", "prompt": "fox", "seconds": 10}, "seconds", "5 seconds"),
        ({"model": "ir/test-video", "prompt": "fox", "seconds": "61"}, "seconds", "1 to 60"),
        ({"model": "ir/test-video", "prompt": "fox", "size": "big"}, "size", "such as 1280x720"),
        ({"model": "ir/test-video", "prompt": "fox", "size": "999x999"}, "size", "640x360"),
        ({"model": "ir/test-video", "prompt": "f", "response_format": "gif"}, "response_format", "gif"),
        ({"model": "ir/test-video", "prompt": 5}, "prompt", "must be a string"),
        ({"model": "ir/test-video", "prompt": "fox", "image": 5}, "image", "data URI"),
        ({"model": "ir/test-video", "prompt": "f", "image": ["data:,"] * 7}, "image", "Maximum of 6"),
        ({"model": "ir/test-video", "prompt": "fox", "image[0]": "x"}, "image[0]", "Unexpected field"),
    ],
)  # fmt: skip
def test_a_bad_request_is_400_naming_the_field(api, alice_key, body, param, words):
    response = api.post(alice_key, ASYNC, json=body)

    assert response.status_code == 400, response.content
    error = error_of(response)
    assert error["type"] == "invalid_request_error"
    assert error["param"] == param
    assert words in error["message"]
    assert not Job.objects.exists()


def test_an_image_for_a_model_without_image_input_is_400(api, alice_key):
    png = "data:image/png;base64," + base64.b64encode(image_bytes("PNG")).decode()

    response = api.post(
        alice_key, ASYNC, json={"model": "openai/sora-2", "prompt": "fox", "image": png}
    )

    assert response.status_code == 400
    assert "does not take an input image" in error_of(response)["message"]


def test_a_file_that_is_not_an_image_is_400_with_the_forms_words(api, alice_key):
    upload = SimpleUploadedFile("cat.png", b"not a picture", content_type="image/png")

    response = api.post(
        alice_key, ASYNC, data={"model": "ir/test-video", "prompt": "fox", "image[]": upload}
    )

    assert response.status_code == 400
    assert error_of(response)["message"] == "Invalid 'image': This file is not an image. " \
        "Choose a PNG, JPEG or WebP picture."  # fmt: skip


def test_malformed_json_and_other_bodies_are_refused(api, alice_key, client):
    auth = {"HTTP_AUTHORIZATION": f"Bearer {alice_key}"}
    malformed = client.post(ASYNC, "{", content_type="application/json", **auth)
    form = client.post(ASYNC, "model=ir/test-video", content_type="text/plain", **auth)

    assert malformed.status_code == 400
    assert "Malformed JSON" in error_of(malformed)["message"]
    assert form.status_code == 415


def test_an_unknown_or_hidden_model_is_404(api, alice_key):
    VideoModel.objects.filter(pk="google/veo-3.1-fast").update(
        visibility=VideoModel.Visibility.HIDDEN
    )

    for model in ("acme/nothing", "google/veo-3.1-fast"):
        response = api.post(alice_key, ASYNC, json={"model": model, "prompt": "fox"})
        assert response.status_code == 404
        assert error_of(response) == {
            "message": f"model '{model}' is not available",
            "type": "invalid_request_error",
            "param": "model",
            "code": "model_not_found",
        }


def test_an_oversized_body_is_413_in_the_providers_shape(api, alice_key, settings):
    settings.REQUEST_MAX_BYTES = 1000

    response = api.post(alice_key, ASYNC, json={"model": "ir/test-video", "prompt": "x" * 2000})

    assert response.status_code == 413
    assert error_of(response)["code"] == "request_too_large"


# --- The asynchronous answer ------------------------------------------------------------------


def test_async_answers_202_with_the_job_and_its_location_and_the_job_is_in_my_videos(
    api, alice, alice_key, alice_client
):
    response = api.post(
        alice_key,
        ASYNC,
        json={"model": "ir/test-video", "prompt": "a fox in snow", "seconds": 5, "size": "640x360"},
    )

    assert response.status_code == 202
    job = Job.objects.get(owner=alice)
    assert response.json() == {
        "id": str(job.pk),
        "status": "queued",
        "model": "ir/test-video",
        "created": int(job.created_at.timestamp()),
        "team": None,
    }
    assert response["Location"] == f"http://testserver/v1/jobs/{job.pk}"
    assert (job.prompt, job.seconds, job.size, job.response_format) == (
        "a fox in snow", "5", "640x360", "url"
    )  # fmt: skip
    assert "a fox in snow" in alice_client.get(reverse("jobs:list")).content.decode()


def test_prefer_respond_async_is_the_same_as_the_query(api, alice_key):
    response = api.post(
        alice_key,
        GENERATIONS,
        json={"model": "ir/test-video", "prompt": "fox"},
        HTTP_PREFER="wait=10, respond-async",
    )

    assert response.status_code == 202
    assert response["Preference-Applied"] == "respond-async"


def test_a_live_job_reports_its_status_and_when_to_ask_again(api, alice_key):
    job_id = api.post(alice_key, ASYNC, json={"model": "ir/test-video", "prompt": "f"}).json()["id"]

    response = api.get(alice_key, f"/v1/jobs/{job_id}")

    assert response.status_code == 200
    assert response.json()["status"] == "queued"
    assert response["Retry-After"] == "2"
    assert api.get(alice_key, f"/v1/jobs/{job_id}/content").status_code == 404


def test_a_data_uri_image_becomes_the_jobs_input_image(api, alice, alice_key):
    png = image_bytes("PNG", size=(64, 48))
    uri = "data:image/png;base64," + base64.b64encode(png).decode()

    response = api.post(alice_key, ASYNC, json={"model": "ir/test-video", "image": uri})

    assert response.status_code == 202, response.content
    job = Job.objects.get(owner=alice)
    assert job.input_image.name.endswith(".png")
    assert job.input_image.read() == png


def test_a_multipart_upload_with_image_brackets_becomes_the_input_image(api, alice, alice_key):
    jpeg = image_bytes("JPEG")
    upload = SimpleUploadedFile("photo.jpg", jpeg, content_type="image/jpeg")

    response = api.post(
        alice_key,
        ASYNC,
        data={"model": "kling/kling-2.1-standard", "seconds": "5", "image[]": upload},
    )

    assert response.status_code == 202, response.content
    assert Job.objects.get(owner=alice).input_image.read() == jpeg


@pytest.fixture
def image_server():
    """A web server on this machine that serves one PNG at /fox.png."""
    png = image_bytes("PNG", size=(40, 30))

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            if self.path != "/fox.png":
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.send_header("Content-Length", str(len(png)))
            self.end_headers()
            self.wfile.write(png)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", png
    server.shutdown()
    server.server_close()


def test_an_image_url_on_a_private_address_is_refused_so_the_studio_cannot_be_used_to_probe(
    api, alice_key, image_server
):
    base, _ = image_server

    response = api.post(
        alice_key, ASYNC, json={"model": "ir/test-video", "image": f"{base}/fox.png"}
    )

    assert response.status_code == 400
    assert "only from public addresses" in error_of(response)["message"]


def test_an_image_url_is_fetched_when_private_addresses_are_allowed(
    api, alice, alice_key, image_server, settings
):
    settings.GATEWAY_IMAGE_URLS_PRIVATE = True
    base, png = image_server

    ok = api.post(alice_key, ASYNC, json={"model": "ir/test-video", "image": f"{base}/fox.png"})
    missing = api.post(alice_key, ASYNC, json={"model": "ir/test-video", "image": f"{base}/x.png"})

    assert ok.status_code == 202, ok.content
    assert Job.objects.get(owner=alice).input_image.read() == png
    assert missing.status_code == 400
    assert "HTTP 404" in error_of(missing)["message"]


# --- Budgets and limits: the same as the form's -------------------------------------------------


def test_a_budget_used_up_through_the_api_blocks_the_form(api, alice, alice_key, alice_client):
    set_budget(alice, "0.60")
    first = api.post(alice_key, ASYNC, json={"model": "google/veo-3.1-fast", "prompt": "one"})
    second = api.post(alice_key, ASYNC, json={"model": "google/veo-3.1-fast", "prompt": "two"})

    assert first.status_code == 202
    assert second.status_code == 402
    assert error_of(second) == {
        "message": (
            "Your personal budget has $0.00 left this month; this video could cost up to $0.60."
        ),
        "type": "insufficient_budget",
        "code": "over_budget",
    }
    page = alice_client.post(
        reverse("jobs:create"),
        {"prompt": "three", "model": "google/veo-3.1-fast", "size": "auto", "seconds": "4",
         "response_format": "url"},
    )  # fmt: skip
    assert "Your personal budget has $0.00 left this month" in page.content.decode()
    assert Job.objects.filter(owner=alice).count() == 1


def test_a_budget_used_up_through_the_form_blocks_the_api(api, alice, alice_key, alice_client):
    set_budget(alice, "0.60")
    alice_client.post(
        reverse("jobs:create"),
        {"prompt": "one", "model": "google/veo-3.1-fast", "size": "auto", "seconds": "4",
         "response_format": "url"},
    )  # fmt: skip
    assert Job.objects.filter(owner=alice).count() == 1

    response = api.post(alice_key, ASYNC, json={"model": "google/veo-3.1-fast", "prompt": "two"})

    assert response.status_code == 402


def test_the_per_token_rate_limit_answers_429_with_when_to_retry(api, alice_key, bob_key, settings):
    settings.GATEWAY_REQUESTS_PER_MINUTE = 3

    answers = [api.get(alice_key, "/v1/models").status_code for _ in range(4)]

    assert answers == [200, 200, 200, 429]
    refused = api.get(alice_key, "/v1/models")
    assert error_of(refused)["type"] == "rate_limit_error"
    assert error_of(refused)["code"] == "token_rate_limit"
    assert 1 <= int(refused["Retry-After"]) <= 60
    assert refused["RateLimit-Limit"] == "3"
    assert api.get(bob_key, "/v1/models").status_code == 200  # each token counts for itself


def test_submits_past_the_studios_per_minute_limit_are_429_with_retry_after(
    api, alice_key, settings
):
    settings.JOB_SUBMITS_PER_MINUTE = 1
    api.post(alice_key, ASYNC, json={"model": "ir/test-video", "prompt": "one"})

    response = api.post(alice_key, ASYNC, json={"model": "ir/test-video", "prompt": "two"})

    assert response.status_code == 429
    assert error_of(response)["code"] == "submit_rate_limit"
    assert int(response["Retry-After"]) >= 1


def test_the_active_job_cap_is_429(api, alice_key, settings):
    settings.JOB_ACTIVE_LIMIT = 1
    api.post(alice_key, ASYNC, json={"model": "ir/test-video", "prompt": "one"})

    response = api.post(alice_key, ASYNC, json={"model": "ir/test-video", "prompt": "two"})

    assert response.status_code == 429
    assert error_of(response)["code"] == "too_many_active_jobs"
    assert "already have 1 videos queued" in error_of(response)["message"]


def test_with_no_wait_slots_a_synchronous_request_is_429_and_makes_nothing(
    api, alice_key, settings
):
    settings.GATEWAY_MAX_WAITS_PER_PROCESS = 0

    response = api.post(alice_key, GENERATIONS, json={"model": "ir/test-video", "prompt": "f"})

    assert response.status_code == 429
    assert error_of(response)["code"] == "too_many_waits"
    assert "?async=true" in error_of(response)["message"]
    assert not Job.objects.exists()


# --- Isolation --------------------------------------------------------------------------------


def test_bob_gets_404_for_alices_job_its_video_and_its_status(api, alice, alice_key, bob_key):
    job_id = api.post(alice_key, ASYNC, json={"model": "ir/test-video", "prompt": "f"}).json()["id"]
    Job.objects.filter(pk=job_id).update(status=Job.Status.SUCCEEDED, video="videos/x.mp4")

    for path in (f"/v1/jobs/{job_id}", f"/v1/jobs/{job_id}/content"):
        response = api.get(bob_key, path)
        assert response.status_code == 404
        assert error_of(response)["code"] == "job_not_found"


def test_a_staff_token_does_not_see_other_peoples_jobs(api, alice_key, admin_user, token_for):
    job_id = api.post(alice_key, ASYNC, json={"model": "ir/test-video", "prompt": "f"}).json()["id"]

    assert api.get(token_for(admin_user), f"/v1/jobs/{job_id}").status_code == 404


def test_a_malformed_job_id_or_unknown_path_is_a_json_404(api, alice_key):
    for path in ("/v1/jobs/not-a-uuid", "/v1/nothing/here"):
        response = api.get(alice_key, path)
        assert response.status_code == 404
        assert error_of(response)["type"] == "not_found"


def test_a_wrong_method_is_405_naming_the_right_one(api, alice_key):
    response = api.get(alice_key, GENERATIONS)

    assert response.status_code == 405
    assert response["Allow"] == "POST"


# --- The model catalog --------------------------------------------------------------------------


def test_models_lists_the_catalog_in_the_providers_shape(api, alice_key):
    models = api.get(alice_key, "/v1/models").json()

    assert set(models) == set(VideoModel.objects.values_list("pk", flat=True))
    assert models["ir/test-video"] == {
        "id": "ir/test-video",
        "providers": [
            {
                "id": "ir",
                "model_name": "ir/test-video (simulated)",
                "pricing": {"type": "fixed", "value": 0},
            }
        ],
        "seconds": [5],
        "default_seconds": 5,
        "sizes": ["640x360", "1280x720", "720x1280"],
        "output": ["video"],
        "supported_params": {"edit": True, "mask": False, "quality": False},
    }
    assert models["kling/kling-2.1-standard"]["providers"][0]["pricing"] == {
        "type": "calculated",
        "range": {"min": 0.18, "average": 0.3, "max": 0.5},
    }


def test_models_hides_what_the_form_hides(api, alice_key, admin_user, token_for):
    VideoModel.objects.filter(pk="openai/sora-2").update(visibility=VideoModel.Visibility.HIDDEN)
    VideoModel.objects.filter(pk="minimax/hailuo-2.3").update(
        visibility=VideoModel.Visibility.STAFF
    )

    mine = api.get(alice_key, "/v1/models").json()
    staff = api.get(token_for(admin_user), "/v1/models").json()

    assert "openai/sora-2" not in mine and "openai/sora-2" not in staff
    assert "minimax/hailuo-2.3" not in mine and "minimax/hailuo-2.3" in staff


def test_models_takes_the_providers_filters(api, alice_key):
    def ids(query):
        return list(api.get(alice_key, "/v1/models" + query).json())

    assert ids("?free=true") == ["ir/test-video"]
    assert ids("?name=kling") == ["kling/kling-2.1-standard"]
    assert ids("?type=image") == []
    assert ids("?sort=name&limit=2") == ["google/veo-3.1-fast", "ir/test-video"]
    assert api.get(alice_key, "/v1/models?limit=lots").status_code == 400


def test_the_openapi_document_needs_no_token_and_names_this_studio(client):
    response = client.get("/v1/openapi.json")

    assert response.status_code == 200
    document = json.loads(response.content)
    assert document["openapi"].startswith("3.1")
    assert document["servers"] == [{"url": "http://testserver"}]
    assert "/v1/openai/videos/generations" in document["paths"]
