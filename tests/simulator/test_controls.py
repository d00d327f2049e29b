"""The /_sim controls, the storage URLs and the process harness itself."""

import threading
import time

import pytest

from simulator.app import make_app
from simulator.state import Config, parse_latency
from simulator.testing import SimulatorProcess
from simulator.web import is_loopback

from .videos import GENERATIONS


@pytest.mark.parametrize(
    ("address", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.8.9.10", True),
        ("::1", True),
        ("::ffff:127.0.0.1", True),
        ("10.0.0.5", False),
        ("192.168.1.20", False),
        ("::ffff:10.0.0.5", False),
        ("2001:db8::1", False),
        ("example.com", False),
        ("", False),
    ],
)
def test_only_loopback_addresses_count_as_local(address, loopback):
    assert is_loopback(address) is loopback


def test_the_controls_refuse_a_client_that_is_not_on_loopback(tmp_path):
    # Call the app directly: this machine may have no other address to connect from.
    app = make_app(Config(storage_dir=str(tmp_path)))
    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": "/_sim/stats", "REMOTE_ADDR": "10.1.2.3"}
    statuses = []

    body = b"".join(app(environ, lambda status, headers: statuses.append(status)))

    assert statuses == ["403 Forbidden"]
    assert b"loopback" in body


def test_latency_is_read_as_a_default_or_per_model():
    assert parse_latency("2") == {"default": 2.0}
    assert parse_latency("default=2, ir/test-video=0.2") == {"default": 2.0, "ir/test-video": 0.2}


def test_config_sets_latency_per_model(sim, generate):
    sim.configure(latency={"ir/test-video": 0.5}, keepalive_interval=0.1)

    slow = generate({"model": "ir/test-video", "prompt": "latency"}).json()
    quick = generate({"model": "google/veo-3.1-fast", "prompt": "q", "size": "160x90"}).json()

    assert slow["latency"] >= 500
    assert quick["latency"] < 500


def test_stats_count_every_outcome(sim, generate, http):
    sim.inject({"kind": "error_after", "seconds": 0.1}, {"kind": "rate_limit"})
    generate({"model": "ir/test-video", "prompt": "a"})  # refunded
    generate({"model": "ir/test-video", "prompt": "b"})  # rate limited
    url = generate({"model": "ir/test-video", "prompt": "c"}).json()["data"][0]["url"]
    generate({"prompt": "no model"})  # rejected
    http.get(url)

    assert sim.stats() == {
        "generation_requests": 4,
        "paid_calls": 1,
        "refunded": 1,
        "rejected": 2,
        "downloads": 1,
        "keys_minted": 0,
        "charged_usd": "0.0000",
        "pending_faults": 0,
    }


def test_reset_clears_faults_and_counters(sim, generate):
    sim.inject({"kind": "drop"}, {"kind": "drop"})
    generate({"prompt": "no model"})

    sim.reset()

    assert sim.stats()["pending_faults"] == 0
    assert sim.stats()["generation_requests"] == 0


def test_a_stored_video_serves_byte_ranges(sim, generate, http):
    url = generate({"model": "ir/test-video", "prompt": "ranges"}).json()["data"][0]["url"]
    whole = http.get(url)

    part = http.get(url, headers={"Range": "bytes=100-199"})
    tail = http.get(url, headers={"Range": "bytes=-50"})
    beyond = http.get(url, headers={"Range": f"bytes={len(whole.content)}-"})

    assert whole.headers["Content-Type"] == "video/mp4"
    assert whole.headers["Accept-Ranges"] == "bytes"
    assert int(whole.headers["Content-Length"]) == len(whole.content)
    assert part.status_code == 206
    assert part.content == whole.content[100:200]
    assert part.headers["Content-Range"] == f"bytes 100-199/{len(whole.content)}"
    assert tail.content == whole.content[-50:]
    assert beyond.status_code == 416


def test_storage_urls_need_no_key_and_unknown_ones_are_404(sim, generate, http):
    url = generate({"model": "ir/test-video", "prompt": "public"}).json()["data"][0]["url"]

    assert http.head(url).status_code == 200
    assert http.get(url.replace(url[-40:-4], "0" * 36)).status_code == 404
    assert http.get(sim.url + "/storage/../../etc/passwd").status_code == 404


def test_unknown_paths_are_404(sim, http):
    assert http.get(sim.url + "/v1/nothing").status_code == 404
    assert http.get(sim.url + GENERATIONS).status_code == 404


def test_the_harness_fails_clearly_when_the_simulator_cannot_start():
    broken = SimulatorProcess(env={"SIM_LATENCY": "not-a-number"})

    with pytest.raises(RuntimeError, match="failed to start"):
        broken.start()


def test_a_generation_running_across_a_reset_does_not_touch_the_fresh_state(sim, generate, http):
    running = threading.Thread(
        target=generate,
        args=({"model": "google/veo-3.1-fast", "prompt": "old", "size": "160x90"},),
        kwargs={"headers": {"X-Sim-Latency": "0.6"}},
    )
    running.start()
    time.sleep(0.2)

    sim.reset()
    running.join()

    assert sim.stats()["paid_calls"] == 0
    credits = http.get(sim.url + "/v1/credits", headers={"Authorization": "Bearer k"}).json()
    assert credits["remaining_credits"] == "100.0000"


def test_config_refuses_settings_it_does_not_know(sim, http):
    response = http.post(sim.url + "/_sim/config", json={"latencies": 1})

    assert response.status_code == 400
    assert "latencies" in response.json()["error"]["message"]
