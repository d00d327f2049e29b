"""Hostile input to every page's query parameters and every form, as the owner, as another
person, as staff and anonymously: never a 5xx, and nothing made or charged by a refusal.

Hypothesis runs derandomized (the same examples every run, so CI is reproducible) with a small
budget per surface; tests/fuzz/strategies.py draws the classes that once ended in a 500 often.
"""

import os
from decimal import Decimal

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jobs.models import CostEntry, Job
from tests.factories import make_entry
from tests.fuzz.strategies import hostile_text, query_for
from tests.jobs.test_job_page import live_poll

pytestmark = pytest.mark.usefixtures("catalog", "broker_url")

# Examples per surface: small, so the whole fuzz suite runs in about a minute in `make test`;
# FUZZ_EXAMPLES=500 digs deeper on a quiet afternoon.
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "25"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def FUZZ_EACH(surfaces):
    """FUZZ, with EXAMPLES for each of `surfaces`, which one test draws from."""
    return settings(FUZZ, max_examples=EXAMPLES * len(surfaces))


FORM_FIELDS = ("model", "prompt", "seconds", "size", "response_format")
CARRIED = (*FORM_FIELDS, "image_from_job", "frame_from_job", "use_earlier_image")
# Every query parameter a page reads (grep request.GET), by URL name; "job" marks a URL that
# takes alice's job id.
GET_SURFACES = {
    "jobs:list": ("q", "status", "model", "page"),
    "jobs:create": (*CARRIED, "from", "frame", "edit"),
    "jobs:create_options": (*CARRIED, "from", "frame", "edit"),
    "jobs:detail job": ("part",),
    "jobs:status job": ("v", "p", "wait"),
    "jobs:video job": ("download",),
    "jobs:card job": ("page",),
    "spending": ("month", "page"),
    "api_tokens": ("page",),
    "costs:review": ("from", "to", "user_sort", "model_sort", "day_sort", "users_page"),
    "costs:entries": ("from", "to", "user", "model", "page"),
    "costs:export": ("from", "to", "user", "model"),
    "costs:reconciliation": ("from", "to", "show", "page"),
}
WHO = ("alice", "bob", "staff", "anonymous")


@pytest.fixture
def clients(alice, bob, admin_user):
    made = {"anonymous": Client(), "alice": Client(), "bob": Client(), "staff": Client()}
    made["alice"].force_login(alice)
    made["bob"].force_login(bob)
    made["staff"].force_login(admin_user)
    for client in made.values():
        client.raise_request_exception = True  # an exception fails the test with its traceback
    return made


@pytest.fixture
def alices_job(alice):
    return Job.objects.create(
        owner=alice, prompt="a fox", model="ir/test-video", status=Job.Status.RUNNING, attempt=1
    )


def counts():
    return Job.objects.count(), CostEntry.objects.count()


def assert_not_a_server_error(response):
    assert response.status_code < 500, (response.status_code, response.content[:500])


@given(data=st.data())
@FUZZ_EACH(GET_SURFACES)
def test_query_parameters_never_make_a_server_error(clients, alices_job, data):
    surface = data.draw(st.sampled_from(list(GET_SURFACES)), label="surface")
    query = data.draw(query_for(GET_SURFACES[surface]), label="query")
    name, _, takes_job = surface.partition(" ")
    url = reverse(name, args=[alices_job.pk] if takes_job else [])
    before = counts()
    for who in WHO:
        assert_not_a_server_error(clients[who].get(url, query))
    assert counts() == before


@given(
    v=st.one_of(st.just("running.1"), hostile_text),
    user_id=st.one_of(st.just("real"), hostile_text),
    signature=st.one_of(st.just("real"), hostile_text),
    wait=hostile_text,
)
@FUZZ
def test_the_polls_parameters_never_make_a_server_error(
    clients, alice, alices_job, v, user_id, signature, wait
):
    real_user, _, real_signature = live_poll(clients["alice"], alices_job)["p"].partition(".")
    user_id = real_user if user_id == "real" else user_id
    signature = real_signature if signature == "real" else signature
    url = reverse("jobs:status", args=[alices_job.pk])
    for who in WHO:
        response = clients[who].get(url, {"v": v, "p": f"{user_id}.{signature}", "wait": wait})
        assert_not_a_server_error(response)


# --- forms --------------------------------------------------------------------------------------

POST_SURFACES = {
    "signup": ("username", "email", "password1", "password2"),
    "password_reset": ("email",),
    "account_email": ("email", "password"),
    "login": ("username", "password"),
    "jobs:create": (*CARRIED, "image"),
    "jobs:delete_selected": ("job", "confirmed", "next"),
    "jobs:download_selected": ("job", "next"),
    "jobs:cancel job": ("next",),
    "jobs:retry job": ("next",),
    "jobs:delete job": ("next",),
    "jobs:share job": ("next",),
    "jobs:unshare job": ("next",),
    "api_tokens": ("name",),
    "costs:reconcile entry": ("verdict", "amount", "next"),
}


@pytest.fixture
def unknown_entry(alice):
    """A ledger entry whose outcome an admin must reconcile."""
    return make_entry(
        alice, "ir/test-video", "0", timezone.now(), outcome="unknown", possible=Decimal("0.5")
    )


@given(data=st.data())
@FUZZ_EACH(POST_SURFACES)
def test_form_fields_never_make_a_server_error_nor_a_refused_job(
    clients, alices_job, unknown_entry, data
):
    surface = data.draw(st.sampled_from(list(POST_SURFACES)), label="surface")
    name, _, takes = surface.partition(" ")
    if name in ("signup", "login", "password_reset"):
        who = "anonymous"  # a signed-in client that signs up or logs in becomes someone else
    elif name.startswith("costs:"):
        who = "staff"  # anyone else is sent to the admin's log-in page
    else:
        who = data.draw(st.sampled_from(WHO), label="who")
    fields = data.draw(query_for(POST_SURFACES[surface]), label="fields")
    if "job" in POST_SURFACES[surface]:
        ticked = data.draw(st.lists(hostile_text, max_size=3), label="ticked")
        fields = {**fields, "job": [*ticked, str(alices_job.pk)]}
    args = {"job": [alices_job.pk], "entry": [unknown_entry.job_id], "": []}[takes]
    jobs_before, costs_before = counts()

    response = clients[who].post(reverse(name, args=args), fields)

    assert_not_a_server_error(response)
    made = Job.objects.count() - jobs_before
    # Only an accepted generate form (a redirect to the new job) makes a job, and it is held
    # against the budget, not charged.
    assert made == 0 or (name == "jobs:create" and response.status_code == 302)
    assert CostEntry.objects.count() == costs_before
