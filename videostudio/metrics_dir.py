"""The directory where each process of a host writes its Prometheus values
(PROMETHEUS_MULTIPROC_DIR), so that one scrape adds up gunicorn's processes and the Celery
workers. It must be emptied when the host's processes start: files left by processes of an
earlier run would be added to the new ones. gunicorn.conf.py, `manage.py runworker` and
`manage.py runstudio` empty it; nothing else may (the others' files would be lost).

No Django here: gunicorn.conf.py imports it before any settings exist.
"""

import os
from pathlib import Path

VARIABLE = "PROMETHEUS_MULTIPROC_DIR"


def multiprocess_dir() -> str | None:
    return os.environ.get(VARIABLE) or None


def multiprocess_dir_reset(path: str | None = None) -> str | None:
    """Create the directory if need be and delete the value files of earlier processes. Returns
    the directory, or None when multi-process mode is off (the variable is unset)."""
    path = path or multiprocess_dir()
    if not path:
        return None
    directory = Path(path)
    directory.mkdir(parents=True, exist_ok=True)
    for stale in directory.glob("*.db"):
        stale.unlink(missing_ok=True)
    return str(directory)
