"""The simulator's WSGI app: routes to the provider's endpoints and to the `/_sim` controls."""

import json
import sys
import tempfile
import traceback
from pathlib import Path

from . import catalog, generation, keys, storage
from .state import Config, FaultError, KeyRefused, SimulatorState
from .web import Request, error_response, is_loopback, json_response

GENERATIONS = "/v1/openai/videos/generations"


class SimulatorApp:
    def __init__(self, config: Config):
        self.config = config
        root = config.storage_dir or tempfile.mkdtemp(prefix="imagerouter-sim-")
        self.storage = storage.Storage(Path(root))
        self.state = SimulatorState(config)

    def __call__(self, environ, start_response):
        request = Request(environ)
        try:
            response = self.route(request)
        except Exception:
            traceback.print_exc(file=sys.stderr)
            response = error_response(500, "Internal server error", "internal_error")
        return response(start_response)

    def route(self, request: Request):
        method, path = request.method, request.path
        if path == GENERATIONS and method == "POST":
            return generation.handle(self, request)
        if path.startswith("/storage/") and method in ("GET", "HEAD"):
            return storage.serve(self.storage, self.state, path, request.header("Range"), method)
        if path == "/v1/models" and method == "GET":
            return json_response(200, catalog.listing(request.query))
        if path.startswith("/v1/models/") and method == "GET":
            return self.model(path.removeprefix("/v1/models/"))
        if path == "/v1/credits" and method == "GET":
            return self.credits(request)
        if path == "/v1/api-keys" and method == "POST":
            return keys.handle(self.state, request)
        if path.startswith("/_sim/"):
            return self.control(request)
        if path == "/health":
            return json_response(200, {"status": "ok"})
        return error_response(404, f"Cannot {method} {path}", "not_found")

    def model(self, model_id: str):
        model = catalog.MODELS.get(model_id)
        if model is None:
            return error_response(
                404,
                f"Model '{model_id}' not found",
                "invalid_request_error",
                code="model_not_found",
            )
        return json_response(200, model)

    def credits(self, request: Request):
        api_key = request.bearer_token()
        if api_key is None:
            return error_response(401, "Authorization header is required", "unauthorized")
        try:
            self.state.check_key(api_key)
        except KeyRefused as exc:
            return error_response(401, str(exc), "unauthorized")
        by_api_key = request.query.get("by_api_key") == "true"
        return json_response(200, self.state.credits(by_api_key))

    def control(self, request: Request):
        """The test controls. No key, but only from this machine."""
        if not is_loopback(request.remote_addr):
            return error_response(403, "Simulator controls are loopback-only", "forbidden")
        action = (request.method, request.path)
        try:
            if action == ("POST", "/_sim/faults"):
                faults = _json(request).get("faults")
                if not isinstance(faults, list):
                    raise FaultError('send {"faults": [...]}')
                self.state.add_faults(faults)
            elif action == ("POST", "/_sim/config"):
                self.state.configure(_json(request))
            elif action == ("POST", "/_sim/reset"):
                self.state.reset()
            elif action != ("GET", "/_sim/stats"):
                return error_response(404, f"Cannot {request.method} {request.path}", "not_found")
        except (FaultError, ValueError, TypeError, AttributeError) as exc:
            return error_response(400, str(exc), "invalid_request_error")
        return json_response(200, self.state.stats())


def _json(request: Request) -> dict:
    data = json.loads(request.body() or b"{}")
    if not isinstance(data, dict):
        raise ValueError("send a JSON object")
    return data


def make_app(config: Config | None = None) -> SimulatorApp:
    return SimulatorApp(config or Config.from_env())
