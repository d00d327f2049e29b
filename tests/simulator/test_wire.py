"""How answers travel: chunked, headers first, spaces while working, threads in parallel."""

import json
import threading
import time

import requests

from .videos import GENERATIONS, dechunk, raw_post


def test_headers_come_at_once_then_spaces_then_the_json(sim):
    body = json.dumps({"model": "ir/test-video", "prompt": "wire"}).encode()
    headers = {
        "Authorization": "Bearer k",
        "Content-Type": "application/json",
        "X-Sim-Latency": "0.6",
    }

    head, reads = raw_post(sim.url, GENERATIONS, body, headers)

    assert head.startswith("HTTP/1.1 200 OK")
    assert "Content-Type: application/json" in head
    assert "Transfer-Encoding: chunked" in head
    assert "Content-Length" not in head
    # The headers arrive long before the work is done...
    first_read_at, last_read_at = reads[0][0], reads[-1][0]
    assert last_read_at - first_read_at > 0.4
    # ...and spaces trickle in, one chunk each, before the JSON.
    raw = b"".join(data for _, data in reads).partition(b"\r\n\r\n")[2]
    text = dechunk(raw).decode()
    assert text.startswith("   ")
    assert json.loads(text)["data"][0]["url"]
    assert raw.count(b"1\r\n \r\n") >= 3


def test_spaces_keep_a_per_read_timeout_from_firing(generate):
    response = generate(
        {"model": "ir/test-video", "prompt": "slowish"},
        headers={"X-Sim-Latency": "1.0"},
        timeout=(2, 0.5),
    )

    assert response.status_code == 200
    assert response.text.startswith(" ")


def test_insufficient_credits_is_a_200_whose_body_is_an_error(sim, generate):
    sim.configure(credits="0.10")

    response = generate({"model": "openai/sora-2", "prompt": "too dear"})

    assert response.status_code == 200
    error = json.loads(response.text.strip())["error"]
    assert error["message"].startswith("Insufficient credits")
    assert "$1.2" in error["message"]
    assert sim.stats()["paid_calls"] == 0


def test_two_slow_generations_run_at_the_same_time(sim, http):
    def post(results):
        started = time.monotonic()
        response = requests.post(
            sim.url + GENERATIONS,
            json={"model": "ir/test-video", "prompt": "parallel"},
            headers={"Authorization": "Bearer k", "X-Sim-Latency": "1.0"},
            timeout=10,
        )
        results.append((started, time.monotonic(), response.status_code))

    results = []
    threads = [threading.Thread(target=post, args=(results,)) for _ in range(2)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.monotonic() - started

    assert [status for *_, status in results] == [200, 200]
    # Each took at least its second of latency, and they overlapped: one after the other would
    # need two seconds.
    assert all(end - begin >= 1.0 for begin, end, _ in results)
    assert wall < 1.9


def test_a_quick_request_is_answered_while_a_generation_works(sim, http):
    slow = threading.Thread(
        target=requests.post,
        args=(sim.url + GENERATIONS,),
        kwargs={
            "json": {"model": "ir/test-video"},
            "headers": {"Authorization": "Bearer k", "X-Sim-Latency": "1.0"},
        },
    )
    slow.start()
    time.sleep(0.2)
    with requests.Session() as other:
        other.trust_env = False
        started = time.monotonic()
        assert other.get(sim.url + "/v1/models", timeout=5).status_code == 200
        assert time.monotonic() - started < 0.5
    slow.join()
