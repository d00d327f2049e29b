"""Management keys: POST /v1/api-keys, per-key spend limits in UTC windows, expiry, and the
per-key credits report, as the provider documents them."""

import pytest

from .videos import KEY

MANAGER = "sim-management-key-" + "m" * 45
VEO = {"model": "google/veo-3.1-fast", "prompt": "a paid video", "size": "320x180"}  # $0.60 fixed
FREE = {"model": "ir/test-video", "prompt": "a free video", "size": "320x180"}
FAR = "2099-01-01T00:00:00Z"


@pytest.fixture
def managed(sim):
    sim.configure(management_keys=[MANAGER])
    return sim


@pytest.fixture
def mint(managed, http):
    def post(body=None, *, key=MANAGER):
        return http.post(
            managed.url + "/v1/api-keys",
            json={"name": "team key", "expires_at": FAR} if body is None else body,
            headers={"Authorization": f"Bearer {key}"} if key else {},
        )

    return post


@pytest.fixture
def report(sim, http):
    """This key's row of GET /v1/credits?by_api_key=true, read with the account's own key."""

    def get(key_id):
        response = http.get(
            sim.url + "/v1/credits",
            params={"by_api_key": "true"},
            headers={"Authorization": f"Bearer {KEY}"},
        )
        assert response.status_code == 200
        (row,) = [r for r in response.json()["usage_by_api_key"] if r["api_key_id"] == key_id]
        return row

    return get


@pytest.fixture
def balance(sim, http):
    def get():
        headers = {"Authorization": f"Bearer {KEY}"}
        return http.get(sim.url + "/v1/credits", headers=headers).json()

    return get


def at(sim, moment):
    sim.configure(now=moment)


# Minting ----------------------------------------------------------------------------------------


def test_a_management_key_mints_a_64_character_key_returned_once(mint, report):
    response = mint(
        {"name": "Design team", "spend_limit": 5, "spend_limit_period": "week", "expires_at": FAR}
    )

    assert response.status_code == 201
    body = response.json()
    assert len(body["key"]) == 64
    assert body["name"] == "Design team"
    assert (body["spend_limit"], body["spend_limit_period"]) == (5, "week")
    assert body["expires_at"] == "2099-01-01T00:00:00.000Z"
    row = report(body["id"])
    assert row["api_key_name"] == "Design team"
    assert body["key"] not in str(row)


def test_only_a_management_key_may_mint(mint, sim, generate):
    assert mint(key=None).status_code == 401
    refused = mint(key=KEY)
    assert refused.status_code == 401
    assert refused.json()["error"]["type"] == "unauthorized"
    minted = mint().json()["key"]
    assert mint(key=minted).status_code == 401  # a minted normal key cannot mint either


def test_a_management_key_cannot_generate_or_read_credits(mint, sim, http, generate):
    generation = generate(FREE, key=MANAGER)
    credits = http.get(sim.url + "/v1/credits", headers={"Authorization": f"Bearer {MANAGER}"})

    assert generation.status_code == 401
    assert credits.status_code == 401
    assert "management" in generation.json()["error"]["message"].lower()


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({}, "'name' is a required parameter"),
        ({"name": ""}, "'name' is a required parameter"),
        ({"name": 7}, "'name' is a required parameter"),
        ({"name": "x" * 201}, "'name' must be at most 200 characters"),
        ({"name": "k", "spend_limit": "5"}, "'spend_limit' must be a number (USD) or null"),
        ({"name": "k", "spend_limit": True}, "'spend_limit' must be a number (USD) or null"),
        ({"name": "k", "spend_limit": -1}, "'spend_limit' must be 0 or more"),
        (
            {"name": "k", "spend_limit": 5, "spend_limit_period": "year"},
            "'spend_limit_period' must be 'day', 'week', 'month' or null",
        ),
        (
            {"name": "k", "spend_limit_period": "day"},
            "'spend_limit_period' requires 'spend_limit' to be set",
        ),
        ({"name": "k", "expires_at": "next week"}, "'expires_at' must be an ISO 8601 timestamp"),
        ({"name": "k", "expires_at": "2001-01-01T00:00:00Z"}, "'expires_at' must be in the future"),
        ([], "The request body must be a JSON object"),
    ],
)
def test_a_bad_mint_request_is_a_400_that_says_why(mint, sim, body, message):
    response = mint(body)

    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_request_error"
    assert response.json()["error"]["message"].startswith(message)
    assert sim.stats()["keys_minted"] == 0


def test_a_200_character_name_and_null_fields_are_accepted(mint):
    body = {"name": "x" * 200, "spend_limit": None, "spend_limit_period": None, "expires_at": None}

    response = mint(body)

    assert response.status_code == 201
    assert response.json()["expires_at"] is None


# The per-key report ----------------------------------------------------------------------------


def test_the_report_carries_every_documented_field_per_key(mint, generate, report, sim):
    at(sim, "2026-03-11T10:00:00Z")
    body = mint(
        {"name": "k", "spend_limit": 2, "spend_limit_period": "month", "expires_at": FAR}
    ).json()
    assert generate(VEO, key=body["key"]).status_code == 200

    row = report(body["id"])

    assert row == {
        "api_key_id": body["id"],
        "api_key_name": "k",
        "credit_usage": "0.6000",
        "total_requests": 1,
        "created_at": row["created_at"],
        "is_active": True,
        "spend_limit": "2.0000",
        "spend_limit_period": "month",
        "period_spend": "0.6000",
        "period_start": "2026-03-01T00:00:00.000Z",
        "expires_at": "2099-01-01T00:00:00.000Z",
    }
    assert row["created_at"].startswith("2026-03-11T10:00:")


def test_a_plain_key_still_works_and_reports_null_limits(sim, http, generate):
    generate(VEO)

    body = http.get(
        sim.url + "/v1/credits",
        params={"by_api_key": "true"},
        headers={"Authorization": f"Bearer {KEY}"},
    ).json()

    (row,) = body["usage_by_api_key"]
    assert row["credit_usage"] == row["period_spend"] == "0.6000"
    assert (row["spend_limit"], row["spend_limit_period"], row["period_start"]) == (None,) * 3
    assert row["expires_at"] is None and row["is_active"] is True


# Spend limits ----------------------------------------------------------------------------------


def limited(mint, limit, period):
    body = {"name": "capped", "spend_limit": limit, "spend_limit_period": period}
    body["expires_at"] = FAR
    return mint(body).json()


def test_a_key_that_has_spent_its_limit_is_refused_and_not_charged(mint, generate, sim, balance):
    key = limited(mint, 0.6, "day")["key"]
    assert generate(VEO, key=key).status_code == 200
    before = sim.stats()

    refused = generate(VEO, key=key)
    free = generate(FREE, key=key)

    assert refused.status_code == 403
    error = refused.json()["error"]
    assert error["type"] == "spend_limit_exceeded"
    assert error["message"].startswith("API key spend limit reached ($0.6000 a day)")
    assert free.status_code == 403  # blocked once spent: even a free model
    after = sim.stats()
    assert after["paid_calls"] == before["paid_calls"]
    assert after["rejected"] == before["rejected"] + 2
    assert balance()["remaining_credits"] == "99.4000"


def test_a_request_below_the_limit_may_go_over_it_as_the_provider_blocks_only_once_spent(
    mint, generate, report
):
    body = limited(mint, 1, "day")
    assert generate(VEO, key=body["key"]).status_code == 200
    assert generate(VEO, key=body["key"]).status_code == 200  # $0.60 spent < $1: allowed

    assert report(body["id"])["period_spend"] == "1.2000"
    assert generate(VEO, key=body["key"]).status_code == 403


@pytest.mark.parametrize(
    ("period", "spent_at", "still_blocked", "reset_at", "period_start"),
    [
        # 2026-03-04 is a Wednesday.
        ("day", "2026-03-04T09:00:00Z", "2026-03-04T23:59:30Z", "2026-03-05T00:00:05Z",
         "2026-03-05T00:00:00.000Z"),
        # The ISO week starts on Monday: Sunday 8 March is still the week of Monday 2 March.
        ("week", "2026-03-04T09:00:00Z", "2026-03-08T23:59:30Z", "2026-03-09T00:00:05Z",
         "2026-03-09T00:00:00.000Z"),
        ("month", "2026-03-04T09:00:00Z", "2026-03-31T23:59:30Z", "2026-04-01T00:00:05Z",
         "2026-04-01T00:00:00.000Z"),
    ],
)  # fmt: skip
def test_the_window_resets_at_00_00_utc_on_its_boundary(
    mint, generate, report, sim, period, spent_at, still_blocked, reset_at, period_start
):
    at(sim, spent_at)
    body = limited(mint, 0.6, period)
    assert generate(VEO, key=body["key"]).status_code == 200

    at(sim, still_blocked)
    assert generate(VEO, key=body["key"]).status_code == 403

    at(sim, reset_at)
    row = report(body["id"])
    assert (row["period_spend"], row["credit_usage"]) == ("0.0000", "0.6000")
    assert row["period_start"] == period_start
    assert generate(VEO, key=body["key"]).status_code == 200


def test_a_limit_without_a_period_is_a_lifetime_cap(mint, generate, report, sim):
    at(sim, "2026-03-04T09:00:00Z")
    body = mint({"name": "lifetime", "spend_limit": 0.6, "expires_at": FAR}).json()
    assert generate(VEO, key=body["key"]).status_code == 200

    at(sim, "2026-06-04T09:00:00Z")

    assert generate(VEO, key=body["key"]).status_code == 403
    row = report(body["id"])
    assert row["period_spend"] == row["credit_usage"] == "0.6000"
    assert (row["spend_limit_period"], row["period_start"]) == (None, None)


def test_a_refunded_failure_does_not_count_against_the_limit(mint, generate, sim, report):
    body = limited(mint, 0.6, "day")
    sim.inject({"kind": "error_after", "seconds": 0})
    assert "error" in generate(VEO, key=body["key"]).json()

    assert report(body["id"])["period_spend"] == "0.0000"
    assert generate(VEO, key=body["key"]).status_code == 200


# Expiry ----------------------------------------------------------------------------------------


def test_a_key_stops_working_at_its_expiry(mint, generate, sim, http, report):
    at(sim, "2026-03-04T09:00:00Z")
    body = mint({"name": "short", "expires_at": "2026-03-05T01:00:00Z"}).json()
    assert generate(FREE, key=body["key"]).status_code == 200

    at(sim, "2026-03-05T01:00:00Z")
    generation = generate(FREE, key=body["key"])
    credits = http.get(sim.url + "/v1/credits", headers={"Authorization": f"Bearer {body['key']}"})

    assert generation.status_code == 401
    assert generation.json()["error"] == {"message": "API key has expired", "type": "unauthorized"}
    assert credits.status_code == 401
    row = report(body["id"])
    assert row["is_active"] is False and row["expires_at"] == "2026-03-05T01:00:00.000Z"


def test_reset_forgets_minted_keys_and_the_configured_management_keys(mint, sim, generate):
    key = mint().json()["key"]
    sim.reset()

    assert sim.stats()["keys_minted"] == 0
    assert mint(key=MANAGER).status_code == 401
    assert generate(FREE, key=key).status_code == 200  # now just another plain key


def test_the_management_keys_can_come_from_the_environment():
    from simulator.state import Config

    config = Config.from_env({"SIM_MANAGEMENT_KEYS": " one , two,"})

    assert config.management_keys == ("one", "two")


def test_the_clock_control_refuses_a_bad_timestamp(sim, http):
    response = http.post(sim.url + "/_sim/config", json={"now": "tomorrow"})

    assert response.status_code == 400
    assert "'now' must be an ISO 8601 timestamp" in response.json()["error"]["message"]
