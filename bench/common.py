"""What every bench in bench/ shares: the PostgreSQL server and the bench's own database, the
simulator, Django's setup, seeding through the migrated schema, and the tables they print.

Each bench runs as a script (`.venv/bin/python bench/NAME.py`), so `bench/` is first on
sys.path and `import common` finds this file; importing it puts the repository on
sys.path too, for `simulator` and the Django project.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
SERVER_URL = "postgres://postgres@127.0.0.1:5432"
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))  # for `simulator` and the Django project


# --- The bench's own database -------------------------------------------------------------------


def check_database_name(name: str) -> None:
    """A bench empties and fills its database: never the studio's, a test run's or a system one."""
    if name == "videostudio" or name.startswith("test") or name in ("postgres", "template1"):
        sys.exit(f"refusing to use the {name!r} database: the bench empties and fills its own")


def ensure_database(name: str, *, reseed: bool = False, statement_timeout: str = "") -> None:
    """Create the bench database if it is missing (after dropping it, with `reseed`). A new one
    gets `statement_timeout` if given, so a runaway query ends on its own."""
    import psycopg
    from psycopg import sql

    with psycopg.connect(f"{SERVER_URL}/postgres", autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if exists and reseed:
            conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))
            exists = None
        if not exists:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            if statement_timeout:
                conn.execute(
                    sql.SQL("ALTER DATABASE {} SET statement_timeout = {}").format(
                        sql.Identifier(name), sql.Literal(statement_timeout)
                    )
                )


def flush_redis(url: str) -> None:
    import redis

    redis.Redis.from_url(url).flushdb()


def insert_select(cursor, model, columns: dict[str, str], source: str, params=None) -> None:
    """`INSERT INTO <model's table> (...) SELECT ... <source>`: the columns in `columns` get
    their SQL expressions, and every other column of the migrated schema is filled as the ORM
    would fill it: its field's default, or NULL where the column allows it. So a column added
    by a later migration needs no change here unless it is NOT NULL without a default; then this
    fails naming it, before PostgreSQL would with a bare "null value in column"."""
    from django.db import connection
    from django.db.models import NOT_PROVIDED

    table = model._meta.db_table
    params = dict(params or {})
    wanted = dict(columns)
    names, values = [], []
    for field in model._meta.concrete_fields:
        if field.column in wanted:
            names.append(field.column)
            values.append(wanted.pop(field.column))
        elif field.get_internal_type().endswith("AutoField"):
            continue  # PostgreSQL numbers it
        elif getattr(field, "db_default", NOT_PROVIDED) is not NOT_PROVIDED:
            continue  # PostgreSQL fills it
        elif field.null and not field.has_default():
            continue  # NULL
        else:
            # What the ORM would write: the default, or "" for a text column without one.
            value = field.get_default()
            if value is None or field.unique:
                raise RuntimeError(
                    f"{table}.{field.column} needs a value of its own: the bench's seed must fill it"
                )
            key = f"default_{field.column}"
            params[key] = field.get_db_prep_save(value, connection)
            names.append(field.column)
            values.append(f"%({key})s")
    if wanted:
        raise RuntimeError(f"{table} has no column {', '.join(sorted(wanted))}")
    cursor.execute(
        f"INSERT INTO {table} ({', '.join(map(connection.ops.quote_name, names))})"
        f" SELECT {', '.join(values)} {source}",
        params,
    )


def add_tiny_option(parser, what: str) -> None:
    """`--tiny`: every bench's check in seconds (tests/test_benches.py runs them all): the same
    code paths end to end on a small scale, in a database and Redis database of its own, exiting
    non-zero unless the run worked. Its figures are no measurement."""
    parser.add_argument(
        "--tiny",
        action="store_true",
        help=f"a check in seconds, not a measurement: {what}; exits non-zero unless it worked",
    )


def parse_args(parser, tiny: dict, *, not_with: tuple[str, ...] = ()):
    """The command line; with --tiny, the options in `tiny` take its values. Options in
    `not_with` make no sense in a tiny run and are refused with it."""
    args = parser.parse_args()
    if args.tiny:
        refused = [f"--{name.replace('_', '-')}" for name in not_with if getattr(args, name)]
        if refused:
            parser.error(f"--tiny is one short check: not with {', '.join(refused)}")
        vars(args).update(tiny)
    return args


# --- Processes ----------------------------------------------------------------------------------


# --- Seeding a bench database in bulk (review.py, gallery.py) ------------------------------------

SEED_INFO_COLUMNS = "version int, jobs int, users int, anchor timestamptz, seconds float"


def seeded_info(cursor):
    """(version, jobs, users, anchor, seconds) of the bench database's last seed, or None."""
    cursor.execute("SELECT to_regclass('bench_seed_info')")
    if cursor.fetchone()[0] is None:
        return None
    cursor.execute("SELECT version, jobs, users, anchor, seconds FROM bench_seed_info")
    return cursor.fetchone()


def begin_bulk_seed(cursor) -> None:
    """Settings for a seed's transaction, all SET LOCAL: no statement timeout, memory for the
    index rebuilds and sorts, and a limit on temporary files (a seed gone wrong must fail, not
    fill the disk that others share). The rows are consistent by construction, and checking
    millions of foreign keys one by one would double the load time: the triggers that check them
    are off (superuser only, this transaction only). The last seed's record is dropped."""
    cursor.execute("SET LOCAL statement_timeout = 0")
    cursor.execute("SET LOCAL maintenance_work_mem = '512MB'")
    cursor.execute("SET LOCAL work_mem = '256MB'")
    cursor.execute("SET LOCAL temp_file_limit = '16GB'")
    cursor.execute("SET LOCAL session_replication_role = replica")
    cursor.execute("DROP TABLE IF EXISTS bench_seed_info")


def drop_secondary_indexes(cursor, tables: list[str]) -> list[str]:
    """Drop the indexes of `tables` that no constraint needs, and return the statements that
    rebuild them (a bulk load and one rebuild are faster than index writes row by row)."""
    cursor.execute(
        "SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid) FROM pg_index i"
        " WHERE i.indrelid = ANY(%s::regclass[])"
        " AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)",
        [tables],
    )
    rows = cursor.fetchall()
    for name, _definition in rows:
        cursor.execute(f"DROP INDEX {name}")
    return [definition for _name, definition in rows]


def record_seed(cursor, *, version: int, jobs: int, users: int, anchor, seconds: float) -> None:
    """What seeded_info reads back on the next run, to reuse the database."""
    cursor.execute(f"CREATE TABLE bench_seed_info ({SEED_INFO_COLUMNS})")
    cursor.execute(
        "INSERT INTO bench_seed_info VALUES (%s, %s, %s, %s, %s)",
        [version, jobs, users, anchor, seconds],
    )


def vacuum_analyze(cursor, tables: list[str]) -> None:
    """Outside the seed's transaction: VACUUM sets the visibility map, as autovacuum would on a
    real database, so index-only scans are possible; ANALYZE gives the planner its statistics."""
    cursor.execute("SET statement_timeout = 0")
    for table in tables:
        cursor.execute(f"VACUUM (ANALYZE) {table}")
    cursor.execute("RESET statement_timeout")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_simulator(env: dict[str, str]):
    """The bundled simulator (simulator.testing.SimulatorProcess) on a free loopback port, with
    `env` (SIM_LATENCY, ...). Its per-request log would bury the tables, so its stderr goes to
    /dev/null: the child inherits file descriptor 2 as it is when it starts."""
    from simulator.testing import SimulatorProcess

    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            return SimulatorProcess(env=env).start()
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def stop_process(process: subprocess.Popen, timeout: float = 10) -> None:
    """SIGTERM, then SIGKILL after `timeout` seconds; by process id only."""
    if process.poll() is None:
        process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def django_setup(env: dict[str, str], *, replace: bool = False) -> None:
    """Set up Django in this process with `env` on top of the environment (instead of it, with
    `replace`). Never the real provider: no IMAGEROUTER_API_KEY means simulator mode."""
    if replace:
        os.environ.clear()
    os.environ.update(env)
    os.environ.pop("IMAGEROUTER_API_KEY", None)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "videostudio.settings")
    import django

    django.setup()


def migrate() -> None:
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)


# --- Figures and tables -------------------------------------------------------------------------


def percentile(values: list[float], share: float) -> float:
    """Nearest rank, as in the rest of BENCHMARKS.md."""
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, int(-(-share * len(ordered) // 1)) - 1))]


def loadavg() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform

    return platform.processor() or platform.machine()


NUMERIC = re.compile(r"[\d,.×%–/ *]+|n/a|—")


def print_table(
    title: str, header: list[str], rows: list[list], *, markdown: bool = False, load: bool = False
) -> None:
    """A table under `title` (and the load average, with `load`): columns padded to their
    widest cell; with `markdown`, a Markdown table ready for BENCHMARKS.md, numbers
    right-aligned."""
    rows = [[str(cell) for cell in row] for row in rows]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    print(f"\n{title} [load average {loadavg()}]" if load else f"\n{title}")
    if not markdown:
        for row in [header, ["-" * w for w in widths], *rows]:
            print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
        sys.stdout.flush()
        return
    numeric = [
        i > 0 and all(NUMERIC.fullmatch(row[i] or "0") for row in rows) for i in range(len(header))
    ]

    def line(cells):
        padded = [
            c.rjust(w) if n else c.ljust(w) for c, w, n in zip(cells, widths, numeric, strict=True)
        ]
        return "| " + " | ".join(padded) + " |"

    print()
    print(line(header))
    rule = (
        "-" * (w + 1) + ":" if n else "-" * (w + 2) for w, n in zip(widths, numeric, strict=True)
    )
    print("|" + "|".join(rule) + "|")
    for row in rows:
        print(line(row))
    sys.stdout.flush()
