"""The galleries' prompt search on an index per space (issue 25, bench/gallery.py).

Every prompt search is within a space: My videos (the person's jobs) or one team's. With one
trigram index over every prompt, PostgreSQL built the whole studio's bitmap of a common term
(125,000 matches of "golden hour" in 1 M jobs, 40-50 ms) and then ANDed it with the space's.
A GIN index on (owner_id, UPPER(prompt)) and one on (team_id, UPPER(prompt)), the first column
by btree_gin, lets one index scan find the space's matches only: a phrase in a team of 100,000,
52 -> 10 ms; a common word with a status filter, 38-42 -> 18 ms.

The studio-wide job_prompt_trgm index is then unused, but its expression gave the planner the
statistics of UPPER(prompt), without which it took every search for rare and chose sorted
bitmaps over a walk in order (a common word's later page: 10 -> 53 ms). From PostgreSQL 14 on,
statistics on the expression (CREATE STATISTICS) keep them for a fraction of the index's 77 MB
and of its writes, and the index goes; on 13 it stays. btree_gin, like pg_trgm, is a trusted
extension from PostgreSQL 13 on (README, Production settings).

CONCURRENTLY, so that a studio with millions of jobs keeps taking submits while the indexes are
built; hence a migration that is not atomic. A build that was interrupted (a deploy stopped
half-way) leaves an invalid index behind, which PostgreSQL keeps updating but never reads, and
which IF NOT EXISTS would keep: it is dropped and built again. SQLite has none of this and keeps
scanning.
"""

from django.db import migrations

NEW_INDEXES = {
    "job_prompt_owner": "(owner_id, UPPER(prompt) gin_trgm_ops) WHERE deleted_at IS NULL",
    "job_prompt_team": (
        "(team_id, UPPER(prompt) gin_trgm_ops) WHERE deleted_at IS NULL AND team_id IS NOT NULL"
    ),
}


def _has_expression_statistics(connection) -> bool:
    return connection.pg_version >= 140000


def _drop_if_invalid(schema_editor, name: str) -> None:
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(
            "SELECT NOT i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid"
            " WHERE c.relname = %s",
            [name],
        )
        row = cursor.fetchone()
    if row and row[0]:
        schema_editor.execute(f"DROP INDEX CONCURRENTLY {name}")


def index_per_space(apps, schema_editor):
    connection = schema_editor.connection
    if connection.vendor != "postgresql":
        return
    schema_editor.execute("CREATE EXTENSION IF NOT EXISTS btree_gin")
    # The expression must be exactly what icontains compiles to (UPPER("jobs_job"."prompt")),
    # or the planner will not use the index.
    for name, definition in NEW_INDEXES.items():
        _drop_if_invalid(schema_editor, name)
        schema_editor.execute(
            f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {name} ON jobs_job USING gin {definition}"
        )
    if _has_expression_statistics(connection):
        schema_editor.execute(
            "CREATE STATISTICS IF NOT EXISTS job_prompt_upper ON (UPPER(prompt)) FROM jobs_job"
        )
        schema_editor.execute("DROP INDEX CONCURRENTLY IF EXISTS job_prompt_trgm")
    schema_editor.execute("ANALYZE jobs_job")


def index_for_the_studio(apps, schema_editor):
    connection = schema_editor.connection
    if connection.vendor != "postgresql":
        return
    schema_editor.execute(
        "CREATE INDEX CONCURRENTLY IF NOT EXISTS job_prompt_trgm ON jobs_job"
        " USING gin (UPPER(prompt) gin_trgm_ops)"
    )
    if _has_expression_statistics(connection):
        schema_editor.execute("DROP STATISTICS IF EXISTS job_prompt_upper")
    for name in NEW_INDEXES:
        schema_editor.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {name}")
    schema_editor.execute("ANALYZE jobs_job")


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("jobs", "0024_storage_totals"),
    ]

    operations = [
        migrations.RunPython(index_per_space, index_for_the_studio),
    ]
