"""GET /v1/models and /v1/models/{id}, in the provider's shape."""

import pytest


@pytest.fixture
def models(sim, http):
    def get(**query):
        response = http.get(sim.url + "/v1/models", params=query)
        assert response.status_code == 200
        return response.json()

    return get


def test_the_list_is_an_object_keyed_by_model_id_in_the_providers_shape(models):
    listing = models()

    assert {"ir/test-video", "kling/kling-2.1-standard", "openai/gpt-image-1"} <= set(listing)
    kling = listing["kling/kling-2.1-standard"]
    assert kling["providers"][0]["pricing"] == {
        "type": "calculated",
        "range": {"min": 0.18, "average": 0.30, "max": 0.50},
    }
    assert kling["providers"][0]["model_name"].endswith(" (simulated)")
    assert kling["seconds"] == [5, 10] and kling["default_seconds"] == 5
    assert kling["output"] == ["video"]
    assert kling["supported_params"] == {"edit": True, "mask": False, "quality": False}
    assert kling["simulated"] is True
    assert kling["release_date"] and kling["sizes"]


def test_every_pricing_kind_is_represented(models):
    kinds = {m["providers"][0]["pricing"]["type"] for m in models(type="video").values()}

    assert kinds == {"fixed", "calculated", "post_generation"}


def test_the_test_model_is_free_and_takes_an_image(models):
    test_video = models()["ir/test-video"]

    assert test_video["providers"][0]["pricing"] == {"type": "fixed", "value": 0}
    assert test_video["seconds"] == [5]
    assert test_video["supported_params"]["edit"] is True


def test_it_filters_by_type_provider_free_and_name(models):
    assert "openai/gpt-image-1" not in models(type="video")
    assert set(models(type="image")) == {"openai/gpt-image-1"}
    assert set(models(provider="OpenAI")) == {"openai/sora-2", "openai/gpt-image-1"}
    assert set(models(free="true")) == {"ir/test-video"}
    assert "ir/test-video" not in models(free="false")
    assert set(models(name="kling")) == {"kling/kling-2.1-standard"}


def test_it_sorts_and_limits(models):
    assert list(models(sort="name")) == sorted(models(), key=str.lower)
    by_price = list(models(type="video", sort="price"))
    assert by_price[0] == "ir/test-video" and by_price[-1] == "openai/sora-2"
    newest = models(sort="date", limit="1")
    assert len(newest) == 1
    assert next(iter(newest.values()))["release_date"] == max(
        m["release_date"] for m in models().values()
    )


def test_one_model_by_id_even_with_its_slash_encoded(sim, http):
    plain = http.get(sim.url + "/v1/models/google/veo-3.1-fast")
    encoded = http.get(sim.url + "/v1/models/google%2Fveo-3.1-fast")

    assert plain.status_code == encoded.status_code == 200
    assert plain.json() == encoded.json()
    assert plain.json()["providers"][0]["pricing"] == {"type": "fixed", "value": 0.6}


def test_an_unknown_model_is_a_404_with_model_not_found(sim, http):
    response = http.get(sim.url + "/v1/models/acme/nope")

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "model_not_found"
