"""GET /v1/credits and the money rules: reserve the maximum, settle the price, refund failures."""

import threading
import time

import pytest

from .videos import KEY

# openai/sora-2 is priced after generation within 0.40..1.20, at a point fixed by the prompt.
SORA = {"model": "openai/sora-2", "prompt": "a paid video", "size": "320x180"}


@pytest.fixture
def balance(sim, http):
    def get(key=KEY, **query):
        response = http.get(
            sim.url + "/v1/credits", params=query, headers={"Authorization": f"Bearer {key}"}
        )
        assert response.status_code == 200
        return response.json()

    return get


def test_credits_start_at_the_initial_deposit(balance):
    assert balance() == {
        "remaining_credits": "100.0000",
        "credit_usage": "0.0000",
        "total_deposits": "100.0000",
    }


def test_credits_need_a_key(sim, http):
    assert http.get(sim.url + "/v1/credits").status_code == 401


def test_it_reserves_the_maximum_then_settles_the_real_price(generate, balance):
    during = []
    worker = threading.Thread(
        target=lambda: during.append(generate(SORA, headers={"X-Sim-Latency": "0.8"}))
    )
    worker.start()
    time.sleep(0.4)
    reserved = balance()
    worker.join()
    cost = during[0].json()["cost"]

    assert reserved["remaining_credits"] == "98.8000"  # the 1.20 maximum
    assert 0.40 <= cost <= 1.20
    assert balance()["remaining_credits"] == f"{100 - cost:.4f}"
    assert balance()["credit_usage"] == f"{cost:.4f}"


def test_a_post_generation_price_is_the_same_for_the_same_prompt(generate):
    first = generate(SORA).json()["cost"]
    second = generate(SORA).json()["cost"]
    other = generate({**SORA, "prompt": "something else entirely"}).json()["cost"]

    assert first == second
    assert other != first


def test_a_fixed_price_is_charged_as_listed(generate, sim):
    body = generate({"model": "google/veo-3.1-fast", "prompt": "fixed", "size": "320x180"}).json()

    assert body["cost"] == 0.6
    assert sim.stats()["charged_usd"] == "0.6000"


def test_the_test_model_costs_nothing(generate, balance, sim):
    assert generate({"model": "ir/test-video", "prompt": "free"}).json()["cost"] == 0
    assert balance()["remaining_credits"] == "100.0000"
    assert sim.stats()["paid_calls"] == 1


def test_a_refund_puts_everything_back(sim, generate, balance):
    sim.inject({"kind": "error_after", "seconds": 0.1})

    generate(SORA)

    assert balance()["remaining_credits"] == "100.0000"
    assert sim.stats()["refunded"] == 1


def test_a_low_balance_refuses_priced_models_but_not_the_free_one(sim, generate, balance):
    sim.configure(credits="1.00")

    refused = generate(SORA)
    free = generate({"model": "ir/test-video", "prompt": "still free"})

    assert refused.json()["error"]["message"].startswith("Insufficient credits")
    assert free.status_code == 200 and "data" in free.json()
    assert balance()["remaining_credits"] == "1.0000"


def test_usage_is_broken_down_by_api_key(generate, balance):
    generate({"model": "google/veo-3.1-fast", "prompt": "one", "size": "320x180"}, key="key-a")
    generate({"model": "google/veo-3.1-fast", "prompt": "two", "size": "320x180"}, key="key-b")
    generate({"model": "ir/test-video", "prompt": "three"}, key="key-b")

    body = balance(by_api_key="true")

    assert body["credit_usage"] == "1.2000"
    by_name = {row["api_key_name"]: row for row in body["usage_by_api_key"]}
    assert by_name["Simulated key ending ey-a"]["credit_usage"] == "0.6000"
    assert by_name["Simulated key ending ey-b"]["total_requests"] == 2
    row = by_name["Simulated key ending ey-b"]
    assert set(row) == {
        "api_key_id",
        "api_key_name",
        "credit_usage",
        "total_requests",
        "created_at",
        "is_active",
        "spend_limit",
        "spend_limit_period",
        "period_spend",
        "period_start",
        "expires_at",
    }
    assert row["is_active"] is True
    assert "key-b" not in str(body)  # the key itself is never echoed


def test_reset_restores_the_initial_deposit(sim, generate, balance):
    generate({"model": "google/veo-3.1-fast", "prompt": "spend", "size": "320x180"})
    sim.configure(credits="3")

    sim.reset()

    assert balance()["remaining_credits"] == "100.0000"
    assert balance(by_api_key="true")["usage_by_api_key"] == []
