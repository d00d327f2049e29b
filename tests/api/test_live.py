"""The API over real HTTP: a live server, a real Celery worker on Redis, the simulator as the
provider, and the provider's own documented curl commands, run with real curl, changed only in
host and key."""

import base64
import json
import os
import socket
import subprocess
import threading
import time

import pytest
import requests

from jobs.api.waiting import wait_slots
from jobs.models import Job
from tests.helpers import wait_for
from tests.media import image_bytes, probe

from .helpers import GENERATIONS

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("worker", "catalog"),
]

# The provider's documentation (simulator/README.md quotes it), with only the host and the key
# to fill in.
DOCUMENTED_JSON = [
    "curl", "{host}/v1/openai/videos/generations",
    "-H", "Authorization: Bearer {key}",
    "--json", '{"prompt": "YOUR_PROMPT", "model": "ir/test-video", "size": "auto", "seconds": "auto"}',
]  # fmt: skip
DOCUMENTED_MULTIPART = [
    "curl", "{host}/v1/openai/videos/generations",
    "-H", "Authorization: Bearer {key}",
    "-F", "prompt=YOUR_PROMPT", "-F", "model=ir/test-video", "-F", "image[]=@your_image1.webp",
]  # fmt: skip


def curl(command, *, host, key, cwd=None) -> bytes:
    """Run a documented curl command as written, with the studio's host and a studio key."""
    args = [part.replace("{host}", host).replace("{key}", key) for part in command]
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}  # straight to it
    completed = subprocess.run(
        [*args, "--silent", "--show-error"], capture_output=True, cwd=cwd, env=env, timeout=120
    )
    assert completed.returncode == 0, completed.stderr
    return completed.stdout


@pytest.fixture
def http():
    session = requests.Session()
    session.trust_env = False  # never a proxy from the environment: the server is on loopback
    yield session
    session.close()


def auth(key):
    return {"Authorization": f"Bearer {key}"}


def test_the_documented_json_curl_works_and_its_url_serves_the_video_to_its_owner_only(
    live_server, alice, alice_key, bob_key, http, tmp_path
):
    raw = curl(DOCUMENTED_JSON, host=live_server.url, key=alice_key)

    assert raw.startswith(b" ")  # the 200 and its headers went out before the video was ready
    answer = json.loads(raw)
    job = Job.objects.get(owner=alice)
    assert job.status == Job.Status.SUCCEEDED
    assert answer == {
        "id": str(job.pk),
        "team": None,
        "created": int(job.created_at.timestamp()),
        "data": [{"url": f"{live_server.url}/v1/jobs/{job.pk}/content", "revised_prompt": None}],
        "latency": answer["latency"],
        "cost": 0,
    }
    assert answer["latency"] > 0
    assert job.prompt == "YOUR_PROMPT"

    video = tmp_path / "video.mp4"
    video.write_bytes(http.get(answer["data"][0]["url"], headers=auth(alice_key)).content)
    info = probe(video)
    assert (info.codec, info.width, info.height) == ("h264", 640, 360)
    assert http.get(answer["data"][0]["url"]).status_code == 401
    assert http.get(answer["data"][0]["url"], headers=auth(bob_key)).status_code == 404


def test_the_documented_multipart_curl_with_an_image_upload_works(
    live_server, alice, alice_key, tmp_path, simulator
):
    webp = image_bytes("WEBP", size=(96, 64))
    (tmp_path / "your_image1.webp").write_bytes(webp)

    answer = json.loads(
        curl(DOCUMENTED_MULTIPART, host=live_server.url, key=alice_key, cwd=tmp_path)
    )

    job = Job.objects.get(owner=alice)
    assert job.status == Job.Status.SUCCEEDED, job.error
    assert answer["id"] == str(job.pk) and answer["data"][0]["url"].endswith("/content")
    assert job.input_image.name.endswith(".webp")
    assert job.input_image.read() == webp
    assert simulator.stats()["paid_calls"] == 1


def test_b64_json_answers_with_the_stored_video_inline(live_server, alice, alice_key, http):
    response = http.post(
        live_server.url + GENERATIONS,
        json={"model": "ir/test-video", "prompt": "inline fox", "response_format": "b64_json"},
        headers=auth(alice_key),
    )

    assert response.status_code == 200
    answer = response.json()
    job = Job.objects.get(owner=alice)
    assert base64.b64decode(answer["data"][0]["b64_json"]) == job.video.read()
    assert answer["cost"] == 0 and answer["id"] == str(job.pk)


def test_a_failure_after_the_answer_started_is_200_with_the_providers_error_body(
    live_server, alice, alice_key, http, simulator
):
    simulator.inject({"kind": "error_after", "seconds": 0.2, "message": "Upstream exploded"})

    response = http.post(
        live_server.url + GENERATIONS,
        json={"model": "ir/test-video", "prompt": "doomed"},
        headers=auth(alice_key),
    )

    assert response.status_code == 200
    job = Job.objects.get(owner=alice)
    assert response.json() == {
        "error": {
            "message": job.error,
            "type": "internal_error",
            "code": "generation_failed",
            "job_id": str(job.pk),
        }
    }
    assert "Upstream exploded" in job.error
    status = http.get(f"{live_server.url}/v1/jobs/{job.pk}", headers=auth(alice_key)).json()
    assert status["status"] == "failed" and status["error"]["message"] == job.error
    assert status["cost"] == 0


def test_the_asynchronous_mode_end_to_end(live_server, alice_key, http):
    accepted = http.post(
        live_server.url + GENERATIONS + "?async=true",
        json={"model": "ir/test-video", "prompt": "a patient fox"},
        headers=auth(alice_key),
    )
    assert accepted.status_code == 202
    location = accepted.headers["Location"]
    assert location == f"{live_server.url}/v1/jobs/{accepted.json()['id']}"

    def done():
        answer = http.get(location, headers=auth(alice_key)).json()
        return answer if answer["status"] not in ("queued", "running", "storing") else None

    answer = wait_for(done, timeout=60, interval=0.3, what="the job to finish")

    assert answer["status"] == "succeeded"
    assert answer["id"] == accepted.json()["id"] and answer["model"] == "ir/test-video"
    assert answer["cost"] == 0 and answer["latency"] > 0
    url = answer["data"][0]["url"]
    part = http.get(url, headers={**auth(alice_key), "Range": "bytes=0-99"})
    assert part.status_code == 206 and len(part.content) == 100
    assert part.headers["Content-Type"] == "video/mp4"


def test_past_the_wait_cap_a_synchronous_request_is_429_while_async_still_works(
    live_server, alice_key, bob_key, http, simulator, settings
):
    settings.GATEWAY_MAX_WAITS_PER_PROCESS = 1
    simulator.inject({"kind": "slow", "seconds": 4, "match": {"prompt": "slow"}})
    first: dict = {}

    def wait_for_slow_video():
        with http.post(
            live_server.url + GENERATIONS,
            json={"model": "ir/test-video", "prompt": "slow"},
            headers=auth(alice_key),
            stream=True,
        ) as response:
            first["started"] = time.monotonic()
            first["status"] = response.status_code
            first["body"] = response.raw.read()
            first["ended"] = time.monotonic()

    waiting = threading.Thread(target=wait_for_slow_video)
    waiting.start()
    wait_for(lambda: "started" in first, timeout=10, what="the first answer's headers")

    refused = http.post(
        live_server.url + GENERATIONS,
        json={"model": "ir/test-video", "prompt": "fast"},
        headers=auth(bob_key),
    )
    accepted = http.post(
        live_server.url + GENERATIONS + "?async=true",
        json={"model": "ir/test-video", "prompt": "fast"},
        headers=auth(bob_key),
    )
    waiting.join(timeout=60)

    assert refused.status_code == 429
    assert refused.json()["error"]["code"] == "too_many_waits"
    assert accepted.status_code == 202
    assert first["status"] == 200
    spaces = len(first["body"]) - len(first["body"].lstrip())
    assert spaces >= 2  # one at once, then one every 3 s while the job was live
    assert json.loads(first["body"])["data"][0]["url"]
    assert first["ended"] - first["started"] >= 3
    assert Job.objects.filter(prompt="fast").count() == 1  # the refused one made nothing


def test_a_caller_that_hangs_up_gives_its_wait_back_and_the_job_carries_on(
    live_server, alice, alice_key, settings
):
    settings.GATEWAY_MAX_WAITS_PER_PROCESS = 1
    body = json.dumps({"model": "ir/test-video", "prompt": "abandoned"}).encode()
    host, port = live_server.thread.host, live_server.thread.port

    with socket.create_connection((host, port), timeout=10) as conn:
        conn.sendall(
            b"POST " + GENERATIONS.encode() + b" HTTP/1.1\r\nHost: localhost\r\n"
            b"Authorization: Bearer " + alice_key.encode() + b"\r\n"
            b"Content-Type: application/json\r\nContent-Length: " + str(len(body)).encode()
            + b"\r\n\r\n" + body
        )  # fmt: skip
        assert conn.recv(12) == b"HTTP/1.1 200"

    job = wait_for(
        lambda: Job.objects.filter(owner=alice, status=Job.Status.SUCCEEDED).first(),
        timeout=60,
        what="the abandoned job to finish anyway",
    )
    assert job.video
    wait_for(lambda: wait_slots.taken == 0, timeout=30, what="the wait slot to be given back")
