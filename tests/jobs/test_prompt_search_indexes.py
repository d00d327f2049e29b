"""The prompt search's indexes (migration 0025) on PostgreSQL: built again when a build was
interrupted, so the galleries' search never runs on an index PostgreSQL will not read."""

import importlib

import pytest
from django.db import IntegrityError, connection

from jobs.models import Job

pytestmark = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="the trigram indexes are PostgreSQL's"
)
migration = importlib.import_module("jobs.migrations.0025_prompt_search_per_space")


def index_state(name):
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT i.indisvalid, pg_get_indexdef(i.indexrelid) FROM pg_index i"
            " JOIN pg_class c ON c.oid = i.indexrelid WHERE c.relname = %s",
            [name],
        )
        return cursor.fetchone()


@pytest.mark.django_db(transaction=True)
def test_an_interrupted_index_build_is_built_again(alice, alice_client):
    """A CREATE INDEX CONCURRENTLY that fails half-way leaves an invalid index of that name;
    running the migration again replaces it with the search's index, and the search works."""
    Job.objects.create(owner=alice, prompt="A heron at dawn", status=Job.Status.SUCCEEDED)
    Job.objects.create(owner=alice, prompt="A paper boat", status=Job.Status.SUCCEEDED)
    with connection.cursor() as cursor:
        cursor.execute("DROP INDEX job_prompt_owner")
        # Two jobs of one owner break this unique build after it has begun: PostgreSQL leaves
        # the index behind, invalid, as after a deploy stopped mid-build.
        with pytest.raises(IntegrityError, match="could not create unique index"):
            cursor.execute(
                "CREATE UNIQUE INDEX CONCURRENTLY job_prompt_owner ON jobs_job (owner_id)"
            )
    assert index_state("job_prompt_owner")[0] is False

    with connection.schema_editor(atomic=False) as schema_editor:
        migration.index_per_space(None, schema_editor)

    valid, definition = index_state("job_prompt_owner")
    assert valid is True
    assert "USING gin (owner_id, upper(prompt) gin_trgm_ops)" in definition
    page = alice_client.get("/jobs/", {"q": "boa"}).content.decode()
    assert "A paper boat" in page and "A heron at dawn" not in page
