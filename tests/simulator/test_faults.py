"""Each injected fault: what the client sees, and what the provider would have charged."""

import json
import time

import pytest
import requests

from .videos import decodes_fully, probe

# kling's calculated price here: 0.18 + (0.50 - 0.18) * (5 s / 10 s) * (320x180 / 1280x720)
VALID = {"model": "kling/kling-2.1-standard", "prompt": "faulty", "size": "320x180"}
PRICE = "0.1900"


def credits(sim, http) -> dict:
    return http.get(sim.url + "/v1/credits", headers={"Authorization": "Bearer k"}).json()


def test_rate_limit_is_a_429_with_retry_after_and_costs_nothing(sim, generate, http):
    sim.inject({"kind": "rate_limit", "retry_after": 7})

    response = generate(VALID)

    assert response.status_code == 429
    assert response.headers["Retry-After"] == "7"
    assert response.headers["RateLimit-Remaining"] == "0"
    assert response.headers["RateLimit-Reset"] == "7"
    assert response.json()["error"]["type"] == "rate_limit_error"
    stats = sim.stats()
    assert (stats["paid_calls"], stats["rejected"], stats["pending_faults"]) == (0, 1, 0)
    assert credits(sim, http)["remaining_credits"] == "100.0000"


@pytest.mark.parametrize("status", [500, 402])
def test_insufficient_credits_can_come_with_a_real_status(sim, generate, status):
    sim.inject({"kind": "insufficient_credits", "status": status})

    response = generate(VALID)

    assert response.status_code == status
    assert response.json()["error"]["message"].startswith("Insufficient credits")
    assert sim.stats()["paid_calls"] == 0


def test_insufficient_credits_can_come_as_200_after_the_headers(sim, generate):
    sim.inject({"kind": "insufficient_credits", "status": 200})

    response = generate(VALID)

    assert response.status_code == 200
    assert response.text.startswith(" ")
    assert json.loads(response.text)["error"]["message"].startswith("Insufficient credits")


def test_an_http_error_keeps_its_status_and_is_refunded(sim, generate, http):
    sim.inject({"kind": "http_error", "status": 502, "message": "upstream failed"})

    response = generate(VALID)

    assert response.status_code == 502
    assert response.json()["error"]["message"] == "upstream failed"
    assert sim.stats()["refunded"] == 1
    assert credits(sim, http)["remaining_credits"] == "100.0000"


def test_it_refunds_a_failed_generation(sim, generate, http):
    sim.inject({"kind": "error_after", "seconds": 0.4, "message": "The provider failed"})

    response = generate(VALID)

    assert response.status_code == 200
    assert response.text.startswith("   ")
    assert json.loads(response.text) == {
        "error": {"message": "The provider failed", "type": "internal_error"}
    }
    stats = sim.stats()
    assert (stats["refunded"], stats["paid_calls"], stats["charged_usd"]) == (1, 0, "0.0000")
    assert credits(sim, http)["credit_usage"] == "0.0000"


def test_a_dropped_connection_is_a_chunked_encoding_error_and_is_charged(sim, generate, http):
    sim.inject({"kind": "drop", "after_seconds": 0.3})

    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        generate(VALID)

    stats = sim.stats()
    assert (stats["paid_calls"], stats["refunded"]) == (1, 0)
    assert stats["charged_usd"] == PRICE
    assert credits(sim, http)["remaining_credits"] == "99.8100"


def test_a_slow_answer_with_spaces_outlasts_a_short_read_timeout(sim, generate):
    sim.inject({"kind": "slow", "seconds": 1.0, "keepalive": True})

    response = generate(VALID, timeout=(2, 0.5))

    assert response.status_code == 200
    assert json.loads(response.text)["cost"] == float(PRICE)


def test_a_slow_answer_without_spaces_trips_the_read_timeout_and_is_still_charged(sim, generate):
    sim.inject({"kind": "slow", "seconds": 1.0, "keepalive": False})

    # The headers came at once, so the timeout fires while requests reads the body, and
    # requests reports that as a ConnectionError, not as ReadTimeout.
    with pytest.raises(requests.exceptions.ConnectionError, match="Read timed out"):
        generate(VALID, timeout=(2, 0.4))

    # The provider carries on without the client, and charges.
    deadline = time.monotonic() + 5
    while sim.stats()["paid_calls"] == 0 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert sim.stats()["paid_calls"] == 1


def test_malformed_json_is_charged(sim, generate):
    sim.inject({"kind": "malformed"})

    response = generate(VALID)

    assert response.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        json.loads(response.text)
    assert sim.stats()["paid_calls"] == 1


@pytest.mark.parametrize("mode", ["error", "truncate"])
def test_a_download_can_fail_then_succeed(sim, generate, http, tmp_path, mode):
    sim.inject({"kind": "download_fail", "times": 2, "mode": mode})
    url = generate(VALID).json()["data"][0]["url"]

    for _ in range(2):
        if mode == "error":
            assert http.get(url).status_code == 500
        else:
            # The body stops short of the Content-Length it declared.
            with pytest.raises(requests.exceptions.ChunkedEncodingError):
                http.get(url)
    response = http.get(url)

    assert response.status_code == 200
    video = tmp_path / "ok.mp4"
    video.write_bytes(response.content)
    assert decodes_fully(video)
    stats = sim.stats()
    assert (stats["paid_calls"], stats["downloads"]) == (1, 3)


def test_a_large_result_is_padded_and_still_decodes(sim, generate, download):
    sim.inject({"kind": "large_result", "bytes": 20_000_000})

    video = download(generate(VALID).json()["data"][0]["url"])

    assert abs(video.stat().st_size - 20_000_000) < 1000
    assert probe(video).seconds == 5.0
    assert decodes_fully(video)


def test_a_matched_fault_waits_for_the_request_it_names(sim, generate):
    sim.inject({"kind": "http_error", "status": 503, "match": {"prompt": "doomed"}})

    assert generate({**VALID, "prompt": "innocent"}).status_code == 200
    assert sim.stats()["pending_faults"] == 1
    assert generate({**VALID, "prompt": "a doomed video"}).status_code == 503
    assert sim.stats()["pending_faults"] == 0


def test_faults_are_used_in_order_one_per_request(sim, generate):
    sim.inject({"kind": "http_error", "status": 500}, {"kind": "rate_limit", "retry_after": 1})

    statuses = [generate(VALID).status_code for _ in range(3)]

    assert statuses == [500, 429, 200]


def test_an_unknown_fault_is_refused(sim, http):
    response = http.post(sim.url + "/_sim/faults", json={"faults": [{"kind": "gremlins"}]})

    assert response.status_code == 400
    assert "unknown fault" in response.json()["error"]["message"]


@pytest.mark.parametrize(
    "fault",
    [
        {"kind": "http_error", "status": "bad"},
        {"kind": "http_error", "status": 42},
        {"kind": "drop", "after_seconds": -1},
        {"kind": "rate_limit", "match": {"colour": "red"}},
    ],
)
def test_a_fault_with_bad_settings_is_refused(sim, http, fault):
    response = http.post(sim.url + "/_sim/faults", json={"faults": [fault]})

    assert response.status_code == 400
    assert sim.stats()["pending_faults"] == 0
