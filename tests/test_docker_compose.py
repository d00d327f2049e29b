"""docker-compose.yml, the Dockerfile and .dockerignore, checked for what a deployer relies on.

CI has no Docker engine, so the stack is never started here: these tests read the files. The one
exception is the worker's healthcheck, a shell command that needs only Redis: it runs for real
against Celery workers of this checkout.
"""

import os
import re
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import yaml

from jobs.workers import worker_commands
from tests.helpers import TEST_BROKER_URL, settings_variables, wait_for
from videostudio.celery import app as celery_app

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES = COMPOSE.get("services", {})
# The services that run the studio's own code with its settings.
APP_SERVICES = ("web", "worker", "beat")
# Compose's ${NAME}, ${NAME:-default}, ${NAME?error}... and $NAME; $$ is a literal dollar sign.
INTERPOLATION = re.compile(r"(?<!\$)\$(?:\{([A-Za-z_]\w*)(?::?[-?+]([^}]*))?\}|([A-Za-z_]\w*))")


def service(name: str) -> dict:
    assert name in SERVICES, f"docker-compose.yml has no `{name}` service"
    return SERVICES[name]


def command_text(name: str) -> str:
    command = service(name).get("command")
    assert command, f"the `{name}` service has no command"
    return command if isinstance(command, str) else " ".join(command)


def healthcheck_text(name: str) -> str:
    test = service(name).get("healthcheck", {}).get("test")
    assert test, f"the `{name}` service has no healthcheck"
    return test if isinstance(test, str) else " ".join(test)


def strings(node):
    """Every string in the parsed file: values, and the keys of mappings."""
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for key, value in node.items():
            yield from strings(key)
            yield from strings(value)
    elif isinstance(node, list):
        for item in node:
            yield from strings(item)


def interpolations() -> list[tuple[str, str | None]]:
    """(variable, default) for each variable the compose file interpolates."""
    found = []
    for text in strings(COMPOSE):
        for braced, default, bare in INTERPOLATION.findall(text):
            found.append((braced or bare, default if braced else None))
    return found


def documented_variables() -> set[str]:
    """Names .env.example lists: `NAME=` for what settings read, `# NAME=` for what only the
    compose file reads (optional, with a default there; tests/test_settings.py requires the
    uncommented names to be exactly what settings read)."""
    lines = (ROOT / ".env.example").read_text().splitlines()
    return {m[1] for line in lines if (m := re.match(r"^(?:# )?([A-Z][A-Z0-9_]*)=", line))}


def environment(name: str) -> dict:
    env = service(name).get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return env


# The services ------------------------------------------------------------------------------------


def test_the_stack_has_every_service():
    missing = {"web", "worker", "beat", "redis", "db", "simulator"} - set(SERVICES)
    assert not missing, f"docker-compose.yml lacks the services {sorted(missing)}"


def test_web_migrates_then_serves_with_gunicorns_documented_workers_and_threads():
    command = command_text("web")
    assert "manage.py migrate" in command, f"web does not migrate first: {command}"
    assert "gunicorn videostudio.wsgi" in command, f"web does not run gunicorn: {command}"
    assert command.index("manage.py migrate") < command.index("gunicorn"), command
    assert "--workers 2" in command and "--threads 4" in command, (
        f"web's gunicorn does not run the documented 2 workers of 4 threads: {command}"
    )
    assert "8000:8000" in service("web").get("ports", []), "web does not publish port 8000"


def test_the_image_serves_the_same_gunicorn_by_default():
    dockerfile = (ROOT / "Dockerfile").read_text()
    cmd = re.findall(r"^CMD (.+)$", dockerfile, re.M)[-1]
    assert '"--workers", "2", "--threads", "4"' in cmd, f"the Dockerfile's CMD differs: {cmd}"


def test_the_worker_service_is_one_worker_host():
    assert command_text("worker") == "python manage.py runworker"
    assert service("worker").get("stop_grace_period"), (
        "worker needs a stop_grace_period: on stop it finishes its generations, minutes long"
    )


def test_the_worker_host_outweighs_the_web_for_cpu_as_nice_does_under_make_run():
    """Docker puts each container in a control group of its own, where a nice value counts
    only against the container's own processes: the weights say it between containers."""
    default = 1024
    web = service("web").get("cpu_shares", default)
    worker = service("worker").get("cpu_shares", default)
    # nice 5 against nice 0 is a weight of 335 against 1024 (the kernel's sched_prio_to_weight).
    assert round(worker / web) == round(1024 / 335) == 3


def test_there_is_exactly_one_beat():
    beat = service("beat")
    assert re.match(r"celery -A videostudio (--quiet )?beat", command_text("beat"))
    replicas = beat.get("deploy", {}).get("replicas", 1)
    assert replicas == 1, f"beat must never run more than once, not {replicas} times"
    assert "scale" not in beat, "beat must never be scaled"


@pytest.mark.parametrize("name", APP_SERVICES)
def test_each_app_service_waits_for_a_healthy_database_and_redis(name):
    depends = service(name).get("depends_on", {})
    for needed in ("db", "redis"):
        condition = depends.get(needed, {}).get("condition") if isinstance(depends, dict) else None
        assert condition == "service_healthy", (
            f"`{name}` must depend on `{needed}` with condition service_healthy, not {condition!r}"
        )


# Redis and the database --------------------------------------------------------------------------


def test_redis_persists_every_queued_job_and_never_evicts_one():
    command = command_text("redis")
    assert "--appendonly yes" in command, f"redis runs without AOF persistence: {command}"
    assert "--maxmemory-policy noeviction" in command, f"redis may evict keys: {command}"


def test_redis_requires_the_password_that_redis_url_carries():
    assert "--requirepass" in command_text("redis"), "redis runs without a password"
    redis_password = {default for name, default in interpolations() if name == "REDIS_PASSWORD"}
    assert redis_password, "docker-compose.yml never reads REDIS_PASSWORD"
    for name in APP_SERVICES:
        url = environment(name).get("REDIS_URL", "")
        assert re.match(r"redis://:\$\{REDIS_PASSWORD[:}-]", url), (
            f"`{name}`'s REDIS_URL does not carry REDIS_PASSWORD: {url!r}"
        )


@pytest.mark.parametrize("name", ["redis", "db", "web", "worker", "simulator"])
def test_the_service_has_a_healthcheck(name):
    assert healthcheck_text(name)


def test_the_web_healthcheck_asks_healthz():
    assert "/healthz" in healthcheck_text("web")


def test_the_worker_healthcheck_asks_each_of_the_hosts_workers():
    check = healthcheck_text("worker")
    assert "inspect ping" in check
    for queue in worker_commands("X"):
        assert f"{queue}@$$HOSTNAME" in check, f"the worker healthcheck does not ping {queue}@"


def test_data_lives_in_named_volumes():
    named = set(COMPOSE.get("volumes") or {})
    mounts = {
        "db": "/var/lib/postgresql/data",
        "redis": "/data",
        "worker": environment("worker").get("MEDIA_ROOT"),
        "web": environment("web").get("MEDIA_ROOT"),
    }
    for name, target in mounts.items():
        volumes = {v.split(":")[1]: v.split(":")[0] for v in service(name).get("volumes", [])}
        assert volumes.get(target) in named, (
            f"`{name}` keeps {target} outside a named volume (it mounts {volumes})"
        )


# Variables -------------------------------------------------------------------------------------


def test_every_variable_the_compose_file_reads_is_in_env_example():
    undocumented = {name for name, _ in interpolations()} - documented_variables()
    assert not undocumented, f".env.example does not list {sorted(undocumented)}"


def test_a_variable_has_one_default_wherever_compose_reads_it():
    defaults = {}
    for name, default in interpolations():
        defaults.setdefault(name, set()).add(default)
    differing = {name: found for name, found in defaults.items() if len(found) > 1}
    assert not differing, f"a variable's defaults differ across the file: {differing}"


@pytest.mark.parametrize("name", APP_SERVICES)
def test_every_variable_compose_sets_for_the_studio_is_read_by_settings(name):
    variables = set(environment(name))
    unread = variables - settings_variables()
    assert not unread, f"`{name}` sets {sorted(unread)}, which settings.py never reads"
    undocumented = variables - documented_variables()
    assert not undocumented, f".env.example does not list {sorted(undocumented)}"


# The image ---------------------------------------------------------------------------------------


def dockerfile_instructions() -> list[tuple[str, str]]:
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    return [
        (m[1].upper(), m[2].strip())
        for m in re.finditer(r"^\s*([A-Za-z]+)\s+(.*)$", text, re.M)
        if not m[0].lstrip().startswith("#")
    ]


def test_the_image_runs_as_a_non_root_user():
    users = [arg for op, arg in dockerfile_instructions() if op == "USER"]
    assert users, "the Dockerfile never leaves root: add a USER"
    assert users[-1].split(":")[0] not in ("root", "0"), f"the image runs as {users[-1]}"


def test_the_image_gathers_static_files_at_build():
    runs = [arg for op, arg in dockerfile_instructions() if op == "RUN"]
    assert any("manage.py collectstatic --noinput" in run for run in runs), (
        "the Dockerfile does not run collectstatic"
    )


def test_the_image_leaves_out_secrets_local_state_and_dev_files():
    ignored = set((ROOT / ".dockerignore").read_text().split())
    for path in (".env", ".git", ".venv", "var", "tests", "bench"):
        assert path in ignored, f".dockerignore lets {path} into the image"


# The worker's healthcheck, run for real ---------------------------------------------------------


def start_workers(node: str, queues) -> list[subprocess.Popen]:
    env = os.environ | {"REDIS_URL": TEST_BROKER_URL}
    commands = worker_commands(node)
    return [
        subprocess.Popen(commands[queue], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
        for queue in queues
    ]  # fmt: skip


def worker_healthcheck(node: str) -> subprocess.CompletedProcess:
    """The compose file's command, as the container's shell runs it ($$ is compose's $)."""
    command = service("worker")["healthcheck"]["test"][1].replace("$$", "$")
    bin_dir = str(Path(sys.executable).parent)  # `celery` and `python` of this checkout
    env = os.environ | {
        "HOSTNAME": node,
        "REDIS_URL": TEST_BROKER_URL,
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
    }
    return subprocess.run(
        ["sh", "-c", command], cwd=ROOT, env=env, capture_output=True, check=False
    )


def test_the_worker_healthcheck_passes_only_when_all_four_workers_answer(broker_url):
    node = f"health-{uuid.uuid4().hex[:8]}"
    workers = start_workers(node, ["generate", "store", "poster"])
    try:
        up = sorted(f"{queue}@{node}" for queue in ("generate", "store", "poster"))
        wait_for(
            lambda: len(celery_app.control.ping(destination=up, timeout=1)) == 3,
            timeout=60,
            what="the generate, store and poster workers",
        )
        assert worker_healthcheck(node).returncode != 0, "healthy without the mail worker"

        workers += start_workers(node, ["mail"])
        wait_for(
            lambda: worker_healthcheck(node).returncode == 0,
            timeout=60,
            what="the worker healthcheck to pass with all four workers",
        )
    finally:
        for worker in workers:
            worker.kill()
            worker.wait()


# Metrics (README, "Metrics") ---------------------------------------------------------------------


def test_every_container_of_the_image_counts_its_processes_metrics_together():
    envs = dict(
        arg.split("=", 1)
        for op, args in dockerfile_instructions()
        if op == "ENV"
        for arg in args.split()
    )
    assert envs.get("PROMETHEUS_MULTIPROC_DIR", "").startswith("/tmp/")


def test_the_web_serves_with_the_gunicorn_hooks_that_empty_the_metrics_directory():
    assert "gunicorn.conf.py" not in (ROOT / ".dockerignore").read_text().split()
    assert (ROOT / "gunicorn.conf.py").exists()
    # gunicorn reads ./gunicorn.conf.py (the image's /app) unless told another file.
    gunicorn = command_text("web").split("exec gunicorn", 1)[1]
    assert "--config" not in gunicorn and " -c " not in gunicorn


def test_each_worker_host_serves_its_own_metrics():
    port = environment("worker").get("METRICS_WORKER_PORT")
    assert port and int(port) > 0
    assert not service("worker").get("ports"), "the worker's metrics port must not be published"
