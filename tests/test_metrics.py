"""GET /metrics: scraped as Prometheus scrapes it, parsed with prometheus_client's own parser, and
held against the database after runs with real workers (a worker thread, and a `celery worker`
process writing to the multi-process directory)."""

import json
import os
import re
import subprocess
import sys
import uuid
from collections import Counter
from decimal import Decimal
from pathlib import Path

import pytest
import redis
from django.conf import settings as django_settings
from django.db.models import Sum
from prometheus_client.parser import text_string_to_metric_families

from jobs.models import CostEntry, Job
from tests.factories import KLING, TEST_MODEL, new_job, submit, team_with
from tests.helpers import ROOT, database_url, wait_for, wait_until_finished
from tests.redis_server import RedisServer, broker
from videostudio.celery import app as celery_app

METRICS = "/metrics"
TOKEN = "t" * 40
DASHBOARD = ROOT / "deploy" / "grafana-dashboard.json"


class Scrape:
    """One scrape's samples, as Prometheus reads them."""

    def __init__(self, text: str):
        self.families = list(text_string_to_metric_families(text))
        self.samples = [sample for family in self.families for sample in family.samples]

    def value(self, name: str, /, **labels) -> float:
        """The sum of the samples called `name` whose labels include `labels` (0 with none)."""
        return sum(
            s.value
            for s in self.samples
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
        )

    def has(self, name: str, /, **labels) -> bool:
        return any(
            s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
            for s in self.samples
        )

    def names(self) -> set[str]:
        return {sample.name for sample in self.samples}


def scrape(client, **extra) -> Scrape:
    response = client.get(METRICS, **extra)
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain; version=")
    return Scrape(response.content.decode())


# --- Who may scrape ------------------------------------------------------------------------------


def test_on_loopback_with_nothing_configured_a_local_scrape_is_served(client, db):
    assert client.get(METRICS, REMOTE_ADDR="127.0.0.1").status_code == 200


def test_with_nothing_configured_another_address_gets_403(client, db):
    response = client.get(METRICS, REMOTE_ADDR="10.1.2.3")

    assert response.status_code == 403
    assert b"not served to this address" in response.content


def test_in_production_with_nothing_configured_nobody_gets_metrics(client, db, settings):
    settings.PRODUCTION = True

    response = client.get(METRICS, REMOTE_ADDR="127.0.0.1")

    assert response.status_code == 403
    assert b"set METRICS_TOKEN or METRICS_ALLOWED_NETWORKS" in response.content


def test_with_a_token_a_scrape_without_it_gets_401_and_with_it_200(client, db, settings):
    settings.PRODUCTION = True
    settings.METRICS_TOKEN = TOKEN

    missing = client.get(METRICS, REMOTE_ADDR="203.0.113.9")
    wrong = client.get(METRICS, REMOTE_ADDR="203.0.113.9", HTTP_AUTHORIZATION="Bearer " + "x" * 40)
    right = client.get(METRICS, REMOTE_ADDR="203.0.113.9", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")

    assert missing.status_code == wrong.status_code == 401
    assert missing["WWW-Authenticate"] == 'Bearer realm="metrics"'
    assert right.status_code == 200
    assert b"videostudio_jobs" in right.content


def test_with_networks_only_addresses_in_them_are_served(client, db, settings):
    import ipaddress

    settings.PRODUCTION = True
    settings.METRICS_ALLOWED_NETWORKS = (ipaddress.ip_network("10.0.0.0/8"),)

    assert client.get(METRICS, REMOTE_ADDR="10.20.30.40").status_code == 200
    assert client.get(METRICS, REMOTE_ADDR="::ffff:10.20.30.40").status_code == 200
    assert client.get(METRICS, REMOTE_ADDR="192.168.1.5").status_code == 403
    assert client.get(METRICS, REMOTE_ADDR="127.0.0.1").status_code == 403


def test_with_a_token_and_networks_both_must_hold(client, db, settings):
    import ipaddress

    settings.METRICS_TOKEN = TOKEN
    settings.METRICS_ALLOWED_NETWORKS = (ipaddress.ip_network("10.0.0.0/8"),)
    auth = {"HTTP_AUTHORIZATION": f"Bearer {TOKEN}"}

    assert client.get(METRICS, REMOTE_ADDR="10.0.0.7", **auth).status_code == 200
    assert client.get(METRICS, REMOTE_ADDR="10.0.0.7").status_code == 401
    assert client.get(METRICS, REMOTE_ADDR="172.16.0.7", **auth).status_code == 403


def test_metrics_answer_prometheus_asking_by_service_name_over_plain_http(client, db, settings):
    """Prometheus asks for http://web:8000/metrics: a host production does not list, and no
    TLS inside the private network."""
    settings.ALLOWED_HOSTS = ["studio.example.com"]
    settings.SECURE_SSL_REDIRECT = True
    settings.METRICS_TOKEN = TOKEN

    response = client.get(METRICS, HTTP_HOST="web:8000", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")

    assert response.status_code == 200
    assert not response.cookies


def test_a_short_token_is_refused_at_start():
    from tests.helpers import run_with_settings

    completed = run_with_settings(METRICS_TOKEN="short")

    assert completed.returncode != 0
    assert "METRICS_TOKEN must be at least 32 characters" in completed.stderr


def test_a_malformed_network_is_refused_at_start():
    from tests.helpers import run_with_settings

    completed = run_with_settings(METRICS_ALLOWED_NETWORKS="10.0.0.0/8,not-a-network")

    assert completed.returncode != 0
    assert "METRICS_ALLOWED_NETWORKS" in completed.stderr


# --- The database's and Redis' figures ---------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_queue_depth_is_each_celery_queues_waiting_messages(client, broker_url, catalog, alice):
    redis.Redis.from_url(broker_url).flushdb()
    for n in range(3):
        submit(alice, f"waiting {n}")  # no worker: each message waits in the generate queue

    figures = scrape(client)

    assert figures.value("videostudio_queue_messages", queue="generate") == 3
    assert redis.Redis.from_url(broker_url).llen("generate") == 3
    assert figures.value("videostudio_queue_messages", queue="store") == 0
    assert figures.has("videostudio_queue_messages", queue="poster")
    assert figures.has("videostudio_queue_messages", queue="celery")
    assert figures.has("videostudio_queue_messages", queue="mail")
    assert figures.value("videostudio_jobs", state="queued") == 3
    assert figures.value("videostudio_redis_up") == 1


def test_without_redis_the_scrape_still_answers_and_says_so(client, db, tmp_path):
    server = RedisServer(tmp_path)  # a Redis of this test's own, never the shared one
    server.start()
    with broker(celery_app, server.url):
        assert scrape(client).value("videostudio_redis_up") == 1
        server.stop()
        figures = scrape(client)

    assert figures.value("videostudio_redis_up") == 0
    assert not figures.has("videostudio_queue_messages")
    assert figures.value("videostudio_database_up") == 1


def test_live_jobs_and_the_oldest_queued_age_come_from_the_database(client, db, alice, bob):
    from tests.factories import queued, running

    queued(alice, "old", ago=600)
    queued(bob, "newer", ago=60)
    running(alice, for_seconds=30)
    new_job(alice, status=Job.Status.SUCCEEDED)

    figures = scrape(client)

    assert figures.value("videostudio_jobs", state="queued") == 2
    assert figures.value("videostudio_jobs", state="running") == 1
    assert figures.value("videostudio_jobs", state="storing") == 0
    assert not figures.has("videostudio_jobs", state="succeeded")  # ended jobs are counters
    assert 600 <= figures.value("videostudio_queued_job_oldest_age_seconds") < 700


def test_pending_emails_and_webhooks_are_counted(client, db, alice):
    from jobs.models import OutgoingEmail, WebhookDelivery

    OutgoingEmail.objects.create(key="a", to="a@example.com", subject="s", text="t")
    OutgoingEmail.objects.create(
        key="b", to="b@example.com", subject="s", text="t", status=OutgoingEmail.Status.SENT
    )
    job = new_job(alice)
    WebhookDelivery.objects.create(
        kind=WebhookDelivery.Kind.JOB,
        event="job.succeeded",
        job=job,
        url="https://x.test/",
        body="{}",
    )

    figures = scrape(client)

    assert figures.value("videostudio_emails_pending") == 1
    assert figures.value("videostudio_webhooks_pending", kind="job") == 1
    assert figures.value("videostudio_webhooks_pending", kind="budget_alert") == 0


# --- After runs with real workers ----------------------------------------------------------------


def ledger_spend() -> dict[tuple[str, str], float]:
    rows = CostEntry.objects.values_list("model", "team_id").annotate(total=Sum("cost"))
    return {
        (model, str(team) if team else "personal"): float(total)
        for model, team, total in rows
        if total
    }


def spend_in(figures: Scrape) -> dict[tuple[str, str], float]:
    return {
        (s.labels["model"], s.labels["team"]): s.value
        for s in figures.samples
        if s.name == "videostudio_spend_usd_total"
    }


def difference(after: dict, before: dict) -> dict:
    return {key: after[key] - before.get(key, 0) for key in after if after[key] != before.get(key)}


@pytest.mark.django_db(transaction=True)
def test_a_scrape_matches_the_database_after_a_run_with_faults(
    worker, simulator, catalog, client, alice, bob
):
    team = team_with("Design", members=[alice], limit="20")
    before = scrape(client)
    simulator.inject(
        {"kind": "http_error", "status": 502, "message": "upstream failed", "match": {"prompt": "refuse"}},
        {"kind": "drop", "after_seconds": 0.2, "match": {"prompt": "drop"}},
        {"kind": "rate_limit", "retry_after": 0.5, "match": {"prompt": "wait"}},
    )  # fmt: skip
    jobs = [
        submit(alice, "a team video", model=KLING, seconds="5", team=team),
        submit(alice, "another team video", model=KLING, seconds="10", team=team),
        submit(bob, "a personal video", model=KLING, seconds="5"),
        submit(bob, "a free one"),
        submit(alice, "refuse this", model=KLING, seconds="5", team=team),
        submit(alice, "drop this", model=KLING, seconds="5", team=team),
        submit(bob, "wait for this", response_format="b64_json"),
    ]
    for job in jobs:
        wait_until_finished(job)
    new_job(bob, "still waiting")  # queued, with no message

    after = scrape(client)

    states = Counter(
        Job.objects.filter(pk__in=[j.pk for j in jobs]).values_list("status", flat=True)
    )
    assert states == {"succeeded": 5, "failed": 2}
    for state, count in states.items():
        assert (
            after.value("videostudio_jobs_finished_total", state=state)
            - before.value("videostudio_jobs_finished_total", state=state)
            == count
        )
    calls = {
        outcome: after.value("videostudio_provider_calls_total", outcome=outcome)
        - before.value("videostudio_provider_calls_total", outcome=outcome)
        for outcome in ("success", "refused", "rate_limited", "outcome_unknown", "unreachable")
    }
    assert calls == {
        "success": 5, "refused": 1, "rate_limited": 1, "outcome_unknown": 1, "unreachable": 0
    }  # fmt: skip
    assert simulator.stats()["generation_requests"] == 8  # the 429 included

    # Spend, by model and where it was charged, to the micro-dollar.
    spent = difference(spend_in(after), spend_in(before))
    ledger = ledger_spend()
    assert set(spent) == set(ledger) == {(KLING, str(team.pk)), (KLING, "personal")}
    for key, total in ledger.items():
        assert spent[key] == pytest.approx(total, abs=1e-6)

    # Latency and overhead: one observation per success, by model.
    for model, successes in ((KLING, 3), (TEST_MODEL, 2)):
        for histogram in (
            "videostudio_provider_call_seconds",
            "videostudio_studio_overhead_seconds",
        ):
            count = f"{histogram}_count"
            assert after.value(count, model=model) - before.value(count, model=model) == successes

    # The database's own figures.
    assert after.value("videostudio_jobs", state="queued") == 1
    assert after.value("videostudio_jobs", state="running") == 0
    pending = CostEntry.objects.filter(reconciliation="pending")
    assert after.value("videostudio_unknown_outcome_jobs") == pending.count() == 1
    assert after.value("videostudio_unknown_outcome_possible_cost_usd") == pytest.approx(
        float(pending.get().possible_cost)
    )
    team_spent = CostEntry.objects.filter(team=team).aggregate(
        total=Sum("cost"), possible=Sum("possible_cost")
    )
    left = Decimal(20) - team_spent["total"] - team_spent["possible"]
    assert after.value("videostudio_team_budget_remaining_usd", team=str(team.pk)) == pytest.approx(
        float(left), abs=1e-6
    )
    assert after.value("videostudio_team_budget_limit_usd", team=str(team.pk)) == 20
    assert after.value("videostudio_team_info", team=str(team.pk), name="Design") == 1


def start_celery_worker(node: str, simulator, media_root) -> subprocess.Popen:
    """A `celery worker` process of its own, writing its metrics to this run's multi-process
    directory, as a worker started by runworker (or make run) does."""
    env = {
        **os.environ,
        "DATABASE_URL": database_url(),
        "REDIS_URL": celery_app.conf.broker_url,
        "IMAGEROUTER_API_KEY": django_settings.IMAGEROUTER_API_KEY,
        "IMAGEROUTER_BASE_URL": simulator.url,
        "MEDIA_ROOT": str(media_root),
        "PROMETHEUS_MULTIPROC_DIR": os.environ["PROMETHEUS_MULTIPROC_DIR"],
    }
    command = [sys.executable, "-m", "celery", "-A", "videostudio", "worker", "-l", "WARNING"]
    queues = ["-Q", "generate,store,poster,celery", "-n", node, "-c", "2"]
    return subprocess.Popen([*command, *queues], cwd=ROOT, env=env)


@pytest.mark.django_db(transaction=True)
def test_a_worker_process_s_events_are_counted_in_the_webs_scrape(
    broker_url, simulator, catalog, client, alice, media_root
):
    """Multi-process mode for real: the web's /metrics (this process) adds up the files a
    separate `celery worker` process wrote."""
    redis.Redis.from_url(broker_url).flushdb()
    before = scrape(client)
    files_before = set(Path(os.environ["PROMETHEUS_MULTIPROC_DIR"]).glob("*.db"))
    process = start_celery_worker(f"metrics-{os.getpid()}@test", simulator, media_root)
    try:
        jobs = [submit(alice, f"counted {n}", model=KLING, seconds="5") for n in range(3)]
        for job in jobs:
            assert wait_until_finished(job).status == Job.Status.SUCCEEDED
    finally:
        process.terminate()
        process.wait(timeout=30)

    after = scrape(client)

    written = set(Path(os.environ["PROMETHEUS_MULTIPROC_DIR"]).glob("*.db")) - files_before
    assert any(path.name.endswith(f"_{process.pid}.db") for path in written)
    calls = after.value("videostudio_provider_calls_total", model=KLING, outcome="success")
    assert (
        calls - before.value("videostudio_provider_calls_total", model=KLING, outcome="success")
        == 3
    )
    spent = difference(spend_in(after), spend_in(before))
    assert spent[(KLING, "personal")] == pytest.approx(
        float(CostEntry.objects.aggregate(total=Sum("cost"))["total"]), abs=1e-6
    )


# --- The Grafana dashboard -----------------------------------------------------------------------


def dashboard_metric_names() -> set[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = [target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", [])]
    assert exprs, "the dashboard queries nothing"
    return {name for expr in exprs for name in re.findall(r"\bvideostudio_[a-z_]+\b", expr)}


def test_the_dashboard_is_grafana_json_with_a_prometheus_datasource_variable():
    dashboard = json.loads(DASHBOARD.read_text())

    assert dashboard["title"]
    assert dashboard["uid"]
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["query"] == "prometheus"
    for panel in dashboard["panels"]:
        assert panel["title"]
        if panel["type"] != "row":
            assert panel["datasource"]["uid"] == "${datasource}", panel["title"]


@pytest.mark.django_db(transaction=True)
def test_every_metric_the_dashboard_queries_is_in_a_scrape(
    worker, simulator, catalog, client, alice
):
    """So the dashboard cannot rot: a metric renamed or dropped here fails this test. A run
    first, so that the event metrics (which appear with their first event) are there."""
    team = team_with("Design", members=[alice], limit="5")
    simulator.inject({"kind": "http_error", "status": 502, "match": {"prompt": "refuse"}})
    for prompt in ("shown", "refuse"):
        wait_until_finished(submit(alice, prompt, model=KLING, seconds="5", team=team))

    available = scrape(client).names()

    missing = dashboard_metric_names() - available
    assert not missing, f"the dashboard queries metrics no scrape has: {sorted(missing)}"


# --- How processes are started: the directory emptied, a worker host's own endpoint ------------


def stale_counter(directory: Path) -> Path:
    """A value file as a process of an earlier run would have left it."""
    directory.mkdir(parents=True, exist_ok=True)
    stale = directory / "counter_1.db"
    stale.write_bytes(b"\0" * 16)
    return stale


def get(url: str, **headers) -> tuple[int, str]:
    import urllib.error
    import urllib.request

    request = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()
    except OSError:
        return 0, ""


def test_gunicorn_empties_the_directory_at_start_and_serves_every_workers_metrics(
    db, tmp_path, broker_url
):
    from tests.redis_server import free_port

    directory = tmp_path / "metrics"
    stale = stale_counter(directory)
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": database_url(),
        "REDIS_URL": broker_url,
        "PROMETHEUS_MULTIPROC_DIR": str(directory),
    }
    command = [sys.executable, "-m", "gunicorn", "videostudio.wsgi", "--workers", "2"]
    server = subprocess.Popen(
        [*command, "--bind", f"127.0.0.1:{port}"],
        cwd=ROOT,  # where gunicorn finds gunicorn.conf.py, as in the image
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        wait_for(lambda: get(f"{url}/healthz")[0] == 200, timeout=60, what="gunicorn")
        status, text = get(f"{url}/metrics")
    finally:
        server.terminate()
        server.wait(timeout=30)

    assert not stale.exists()
    assert status == 200
    assert Scrape(text).value("videostudio_database_up") == 1


@pytest.mark.django_db(transaction=True)
def test_a_worker_host_serves_its_own_processes_metrics_behind_the_token(
    broker_url, simulator, catalog, alice, tmp_path, media_root
):
    """runworker on a host of its own (compose's worker container): its three Celery workers
    write to its directory, emptied at start, and it serves their events at :PORT/metrics."""
    from tests.redis_server import free_port

    redis.Redis.from_url(broker_url).flushdb()
    directory = tmp_path / "worker-metrics"
    stale = stale_counter(directory)
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": database_url(),
        "REDIS_URL": broker_url,
        "IMAGEROUTER_API_KEY": django_settings.IMAGEROUTER_API_KEY,
        "IMAGEROUTER_BASE_URL": simulator.url,
        "MEDIA_ROOT": str(media_root),
        "PROMETHEUS_MULTIPROC_DIR": str(directory),
        "METRICS_WORKER_PORT": str(port),
        "METRICS_TOKEN": TOKEN,
    }
    host = subprocess.Popen(
        [sys.executable, "manage.py", "runworker", "--node", f"metrics-{uuid.uuid4().hex[:8]}"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}/metrics"
    try:
        wait_for(lambda: get(url)[0] == 401, timeout=60, what="the worker host's endpoint")
        assert not stale.exists()
        job = wait_until_finished(submit(alice, "counted on the worker host", model=KLING))
        assert job.status == Job.Status.SUCCEEDED
        status, text = get(url, Authorization=f"Bearer {TOKEN}")
    finally:
        host.terminate()
        host.wait(timeout=60)

    assert status == 200
    figures = Scrape(text)
    assert figures.value("videostudio_provider_calls_total", model=KLING, outcome="success") == 1
    assert figures.value("videostudio_spend_usd_total", model=KLING, team="personal") == (
        pytest.approx(float(job.cost))
    )
    assert figures.value("videostudio_jobs_finished_total", state="succeeded") == 1
    # The database's figures are the web's alone, so that they are counted once.
    assert not figures.has("videostudio_jobs")
