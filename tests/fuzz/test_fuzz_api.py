"""Hostile input to every field of /v1/, with the owner's token, another person's, a bad one
and none: never a 5xx, every error JSON in the provider's shape, and nothing made or charged by
a refusal."""

from urllib.parse import urlencode

import pytest
from hypothesis import given
from hypothesis import strategies as st

from jobs.models import CostEntry, Job
from tests.api.helpers import GENERATIONS
from tests.fuzz.strategies import GENERATION_FIELDS, generation_bodies, hostile_text, query_for
from tests.fuzz.test_fuzz_pages import EXAMPLES, FUZZ, FUZZ_EACH

pytestmark = pytest.mark.usefixtures("catalog", "broker_url")

MODEL_FILTERS = ("type", "provider", "free", "name", "sort", "limit")


@pytest.fixture
def keys(alice_key, bob_key):
    return {"alice": alice_key, "bob": bob_key, "bad": "vst_" + "x" * 43, "none": None}


@pytest.fixture
def alices_job(alice):
    return Job.objects.create(
        owner=alice, prompt="a fox", model="ir/test-video", status=Job.Status.RUNNING, attempt=1
    )


def auth(key) -> dict:
    return {"HTTP_AUTHORIZATION": f"Bearer {key}"} if key else {}


def assert_answered_in_the_providers_shape(response):
    assert response.status_code < 500, (response.status_code, response.content[:500])
    if response.status_code >= 400:
        assert response["Content-Type"] == "application/json"
        if response.request["REQUEST_METHOD"] == "HEAD":
            return  # no body to read
        error = response.json()["error"]
        assert isinstance(error["message"], str) and isinstance(error["type"], str)


def counts():
    return Job.objects.count(), CostEntry.objects.count()


def assert_made_only_if_accepted(response, before):
    jobs, costs = counts()
    assert costs == before[1]
    if response.status_code != 202:
        assert jobs == before[0], response.content[:300]


@given(body=generation_bodies(), who=st.sampled_from(["alice", "bob", "bad", "none"]))
@FUZZ_EACH(range(12))
def test_json_generation_requests_never_make_a_server_error(client, keys, body, who):
    before = counts()
    response = client.post(
        GENERATIONS + "?async=true", body, content_type="application/json", **auth(keys[who])
    )

    assert_answered_in_the_providers_shape(response)
    assert_made_only_if_accepted(response, before)


@given(
    fields=query_for(GENERATION_FIELDS),
    query=query_for(("async",)),
    prefer=st.one_of(st.none(), hostile_text),
)
@FUZZ_EACH(range(6))
def test_multipart_generation_requests_never_make_a_server_error(
    client, keys, fields, query, prefer
):
    before = counts()
    # Never a waiting request: it would hold the test until the video was made.
    asked = query.get("async", "true")
    path = f"{GENERATIONS}?{urlencode({'async': 'true' if asked == 'false' else asked})}"
    headers = {"HTTP_PREFER": prefer} if prefer else {}
    response = client.post(path, fields, **auth(keys["alice"]), **headers)

    assert_answered_in_the_providers_shape(response)
    assert_made_only_if_accepted(response, before)


@given(query=query_for(MODEL_FILTERS), who=st.sampled_from(["alice", "bob", "bad", "none"]))
@FUZZ_EACH(range(3))
def test_model_filters_never_make_a_server_error(client, keys, query, who):
    assert_answered_in_the_providers_shape(client.get("/v1/models", query, **auth(keys[who])))


@given(
    job_id=st.one_of(st.just("alice's"), hostile_text),
    range_header=st.one_of(st.none(), hostile_text.map(lambda text: "bytes=" + text)),
    who=st.sampled_from(["alice", "bob", "bad", "none"]),
)
@FUZZ_EACH(range(3))
def test_job_ids_and_ranges_never_make_a_server_error(
    client, keys, alices_job, job_id, range_header, who
):
    job_id = str(alices_job.pk) if job_id == "alice's" else job_id.replace("/", "")
    headers = {"HTTP_RANGE": range_header} if range_header else {}
    for path in (f"/v1/jobs/{job_id}", f"/v1/jobs/{job_id}/content"):
        for method in (client.get, client.head):
            response = method(path, **auth(keys[who]), **headers)
            assert_answered_in_the_providers_shape(response)


assert EXAMPLES and FUZZ  # the same budget and settings as the pages' fuzzing
