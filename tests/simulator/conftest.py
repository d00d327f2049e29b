"""Fixtures for the simulator's own tests: one simulator process, reset before every test."""

import threading
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from simulator.testing import SimulatorProcess

from .videos import GENERATIONS, KEY, png_bytes


@pytest.fixture(autouse=True)
def media_root():
    """Shadows the suite-wide fixture of this name, which needs pytest-django's `settings`.
    The simulator's tests touch no Django, so they also run with
    `-p no:django --confcutdir=tests/simulator`."""


@pytest.fixture(scope="session")
def storage_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("sim-storage")


@pytest.fixture(scope="session")
def sim_process(storage_dir):
    # No latency and a short keep-alive interval: fast tests that still see headers, spaces and
    # then JSON. A test that needs a slow generation asks for it with X-Sim-Latency.
    env = {
        "SIM_LATENCY": "0",
        "SIM_KEEPALIVE_INTERVAL": "0.1",
        "SIM_STORAGE_DIR": str(storage_dir),
    }
    with SimulatorProcess(env=env) as sim:
        yield sim


@pytest.fixture
def sim(sim_process):
    sim_process.reset()
    return sim_process


@pytest.fixture
def http():
    """A requests session that ignores proxy settings: the simulator is on this machine."""
    with requests.Session() as session:
        session.trust_env = False
        yield session


@pytest.fixture
def generate(sim, http):
    """POST a generation as JSON (or as form data with files=...) with a valid key."""

    def post(payload=None, *, files=None, key=KEY, headers=None, **options):
        headers = {"Authorization": f"Bearer {key}", **(headers or {})}
        if files is not None:
            return http.post(
                sim.url + GENERATIONS, data=payload, files=files, headers=headers, **options
            )
        return http.post(sim.url + GENERATIONS, json=payload, headers=headers, **options)

    return post


@pytest.fixture
def download(http, tmp_path):
    """Fetch a result URL into a file and return its path."""

    def fetch(url: str):
        path = tmp_path / url.rsplit("/", 1)[-1]
        response = http.get(url, timeout=30)
        assert response.status_code == 200
        path.write_bytes(response.content)
        return path

    return fetch


@pytest.fixture(scope="session")
def image_server(tmp_path_factory):
    """A loopback web server with one PNG on it, for image URLs."""
    root = tmp_path_factory.mktemp("images")
    (root / "blue.png").write_bytes(png_bytes(color=(20, 40, 230)))
    handler = partial(QuietHandler, directory=str(root))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format, *args):
        pass
