"""`python -m simulator --port N [--host 127.0.0.1]`: run the fake ImageRouter."""

import argparse
import shutil
import signal
import sys

from .app import make_app
from .server import make_server
from .state import Config


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m simulator", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765, help="0 picks a free port")
    args = parser.parse_args(argv)

    try:
        config = Config.from_env()
    except ValueError as exc:
        parser.error(f"bad SIM_* environment variable: {exc}")
    app = make_app(config)
    server = make_server(args.host, args.port, app)
    host, port = server.server_address[:2]
    # A parent process reads this one line to learn the port, so print it only once we listen.
    print(f"Simulator listening on http://{host}:{port}", flush=True)

    # SIGTERM (how SimulatorProcess.stop ends us) should unwind like Ctrl-C, so cleanup runs.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        if config.storage_dir is None:
            shutil.rmtree(app.storage.root, ignore_errors=True)


if __name__ == "__main__":
    main()
