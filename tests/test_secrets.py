"""The ImageRouter key lives only in settings: never in a page, a log line, a task message, an
error message or the admin.

Each test sets a distinctive key, runs real jobs (through the simulator, some with injected
faults), then looks for the key, its last 8 characters and its Bearer header wherever it could
surface. Some faults make the provider echo the key in its error text, as a provider may well do
when it refuses one.
"""

import base64
import json
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import redis
from django.contrib import admin
from django.urls import reverse
from django.views.debug import SafeExceptionReporterFilter

from jobs import imagerouter, services
from jobs.models import CostEntry, Job, Notice
from tests.factories import KLING, TEST_MODEL, form_data, submit
from tests.helpers import wait_for

KEY = "sk-live-S3CR3T-" + "p" * 40 + "-Qv7Zk9Wx"
FORMS = {"the key": KEY, "its Bearer header": f"Bearer {KEY}", "its last 8 characters": KEY[-8:]}

# One job per outcome. A fault matches its job by prompt, so the worker's threads can take the
# jobs in any order. The 401, the late error and the credit refusal echo the key back.
RUN = [
    ("secrets: a url result", None),
    ("secrets: a base64 result", None),
    (
        "secrets: fault 401",
        {"kind": "http_error", "status": 401, "message": f"Invalid API key: Bearer {KEY}"},
    ),
    ("secrets: fault 500", {"kind": "http_error", "status": 500}),
    (
        "secrets: fault late error",
        {"kind": "error_after", "seconds": 0.2, "message": f"Upstream refused key {KEY}"},
    ),
    ("secrets: fault malformed", {"kind": "malformed"}),
    ("secrets: fault drop", {"kind": "drop", "after_seconds": 0.2}),
    (
        "secrets: fault no credit",
        {"kind": "http_error", "status": 402, "message": f"Insufficient credits on key {KEY}"},
    ),
]


@pytest.fixture
def secret_key(simulator, settings):
    """The distinctive key, set after the simulator fixture sets its own."""
    settings.IMAGEROUTER_API_KEY = KEY
    settings.JOB_SUBMITS_PER_MINUTE = 0
    settings.JOB_ACTIVE_LIMIT = 0
    return KEY


def leaks(text: str) -> list[str]:
    return [name for name, form in FORMS.items() if form in text]


def run_jobs(owner, simulator) -> list[Job]:
    """Submit every job of RUN to the real worker and wait until each has finished."""
    jobs = []
    for prompt, fault in RUN:
        if fault:
            simulator.inject({**fault, "match": {"prompt": prompt}})
        drop = fault and fault["kind"] == "drop"
        jobs.append(
            submit(
                owner,
                prompt,
                # A dropped call to a priced model leaves a possible charge to reconcile.
                model=KLING if drop else TEST_MODEL,
                seconds="5",
                response_format="b64_json" if "base64" in prompt else "url",
            )
        )

    def all_finished():
        return all(job.is_terminal for job in Job.objects.filter(pk__in=[j.pk for j in jobs]))

    wait_for(all_finished, timeout=60, what="every job to finish")
    finished = list(Job.objects.filter(pk__in=[job.pk for job in jobs]).order_by("created_at"))
    assert [job.status for job in finished].count(Job.Status.SUCCEEDED) == 2, [
        (job.prompt, job.status, job.error) for job in finished
    ]
    return finished


def response_text(response) -> str:
    """Body, headers and cookies of a response, streamed or not."""
    body = b"".join(response.streaming_content) if response.streaming else response.content
    response.close()
    headers = "\n".join(f"{name}: {value}" for name, value in response.items())
    return "\n".join([body.decode("utf-8", "replace"), headers, response.cookies.output()])


def admin_pages() -> list[str]:
    """The changelist of every registered model, and the change page of each of its rows."""
    urls = [reverse("admin:index")]
    for model, model_admin in admin.site._registry.items():
        info = (model._meta.app_label, model._meta.model_name)
        urls.append(reverse("admin:{}_{}_changelist".format(*info)))
        for pk in model_admin.get_queryset(None).values_list("pk", flat=True)[:30]:
            urls.append(reverse("admin:{}_{}_change".format(*info), args=[pk]))
    return urls


# 1 --- Pages -------------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("catalog")
def test_the_api_key_never_appears_in_a_page_a_person_or_an_admin_sees(
    worker, simulator, secret_key, alice, alice_client, admin_client
):
    jobs = run_jobs(alice, simulator)
    assert Notice.objects.exists() and CostEntry.objects.filter(outcome="unknown").exists()
    services.budget_set(user=alice, limit=None, changed_by=None)

    own_pages = [reverse("jobs:create"), reverse("jobs:list"), reverse("spending")]
    alices_pages = list(own_pages)
    for job in jobs:
        alices_pages += [reverse(f"jobs:{name}", args=[job.pk]) for name in ("detail", "status")]
        if job.status == Job.Status.FAILED:
            alices_pages.append(reverse("jobs:retry", args=[job.pk]))
        if job.video:
            alices_pages.append(reverse("jobs:video", args=[job.pk]))
    review = ["costs:review", "costs:reconciliation", "costs:export"]
    staff_pages = [
        *own_pages,
        *(reverse(name) for name in review),
        reverse("costs:entries") + "?user=alice",
        reverse("costs:entries") + "?model=ir/test-video",
        reverse("costs:reconciliation") + "?show=all",
        *admin_pages(),
    ]

    seen = []
    for who, client, pages in [
        ("alice", alice_client, alices_pages),
        ("staff", admin_client, staff_pages),
    ]:
        for page in pages:
            response = client.get(page)
            assert response.status_code in (200, 286), f"{page} as {who}: {response.status_code}"
            seen.append((f"{page} as {who}", leaks(response_text(response))))

    assert [(page, found) for page, found in seen if found] == []
    assert len(seen) > 40  # every job, every review page and every admin page was fetched


def test_the_reconciliation_page_hides_a_key_the_provider_echoes_in_an_error(
    secret_key, admin_client, settings
):
    # The simulator's faults apply to generations only; its /v1/credits never answers with an
    # error text of our choosing. So this one stub on a real socket stands in for a provider
    # whose credits endpoint refuses the key and quotes it back.
    class EchoingRefusal(BaseHTTPRequestHandler):
        def do_GET(self):
            body = json.dumps(
                {"error": {"message": f"Invalid key: {self.headers['Authorization']}"}}
            ).encode()
            self.send_response(401)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    with ThreadingHTTPServer(("127.0.0.1", 0), EchoingRefusal) as server:
        threading.Thread(target=server.serve_forever, daemon=True).start()
        settings.IMAGEROUTER_BASE_URL = f"http://127.0.0.1:{server.server_address[1]}"
        try:
            response = admin_client.get(reverse("costs:reconciliation"))
        finally:
            server.shutdown()

    text = response_text(response)
    assert "Could not read the provider's usage" in text
    assert "Invalid key: Bearer [redacted]" in text
    assert leaks(text) == []


# 2 --- Log lines ---------------------------------------------------------------------------------


@pytest.fixture
def debug_logs(caplog):
    """Every logger at DEBUG, set before the worker starts: Celery decides then what to log."""
    for name in ("urllib3", "requests", "celery", "kombu", "jobs", "django"):
        caplog.set_level(logging.DEBUG, logger=name)
    return caplog


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("catalog")
def test_the_api_key_never_appears_in_a_log_line(
    debug_logs, worker, simulator, secret_key, alice, caplog, monkeypatch
):
    # Once the worker has started: it sets the root logger to its own level, and keeps its task
    # logger's records to itself.
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="celery.task")
    monkeypatch.setattr(logging.getLogger("celery.task"), "propagate", True)

    run_jobs(alice, simulator)

    names = {record.name for record in caplog.records}
    assert "urllib3.connectionpool" in names and "jobs.services.running" in names
    assert any(name.startswith("celery") for name in names)
    for record in caplog.records:
        text = "\n".join([caplog.handler.format(record), repr(record.msg), repr(record.args)])
        assert leaks(text) == [], f"{record.name}: {record.getMessage()}"
    assert leaks(caplog.text) == []


# 3 --- Task messages -----------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("catalog")
def test_a_generate_message_carries_no_argument_and_never_the_api_key(
    secret_key, alice, alice_client, broker_url
):
    queue = redis.Redis.from_url(broker_url)
    queue.flushdb()  # no worker runs here: the message stays in Redis for us to read

    response = alice_client.post(
        reverse("jobs:create"),
        form_data(prompt="a lighthouse at night"),
    )

    job = Job.objects.get(owner=alice)
    assert response.status_code == 302
    messages = queue.lrange("generate", 0, -1)
    assert len(messages) == 1
    raw = messages[0]
    envelope = json.loads(raw)
    assert envelope["properties"]["body_encoding"] == "base64"
    body = base64.b64decode(envelope["body"])
    args, kwargs, _embed = json.loads(body)
    assert envelope["headers"]["task"] == "jobs.tasks.run_job"
    # It names no job: the slot that takes it runs the fairest queued one (services/queue.py).
    assert (args, kwargs) == ([], {})
    assert str(job.pk) not in raw.decode() and str(job.pk) not in body.decode()
    assert leaks(raw.decode()) == [] and leaks(body.decode()) == []


# 4 --- Error messages ----------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("catalog")
def test_no_job_error_or_notice_carries_the_api_key_even_when_the_provider_echoes_it(
    worker, simulator, secret_key, alice
):
    jobs = {job.prompt: job for job in run_jobs(alice, simulator)}

    for job in jobs.values():
        assert leaks(job.error) == [], (job.prompt, job.error)
    for notice in Notice.objects.all():
        assert leaks(notice.message) == [], notice.message
    # The provider's own words survive, with the key cut out of them.
    assert "Invalid API key: Bearer [redacted]" in jobs["secrets: fault 401"].error
    assert "Upstream refused key [redacted]" in jobs["secrets: fault late error"].error
    notice = Notice.objects.get()
    assert "Insufficient credits on key [redacted]" in notice.message


def test_the_client_redacts_the_key_from_a_providers_error_text(simulator, client_for):
    client = client_for(api_key=KEY)
    echoes = [fault for _prompt, fault in RUN if fault and KEY in fault.get("message", "")]
    assert len(echoes) == 3  # a 401, an error after the 200, and a credit refusal
    for fault in echoes:
        simulator.inject(fault)
        with pytest.raises(imagerouter.RefusedError) as caught:
            client.generate(model="ir/test-video", prompt="echo")
        error = caught.value
        assert leaks(f"{error} {error!r} {error.message} {error.error_type}") == []
        assert "[redacted]" in error.message


# 5 --- Django's error pages ----------------------------------------------------------------------


def test_djangos_debug_page_masks_the_api_key_setting(secret_key):
    safe = SafeExceptionReporterFilter().get_safe_settings()

    assert safe["IMAGEROUTER_API_KEY"] == SafeExceptionReporterFilter.cleansed_substitute
    assert leaks(repr(safe)) == []
