"""On PostgreSQL the status poll's one query is a prepared statement, and it is the only one:
behind a transaction-mode PgBouncer without prepared-statement support, a deployer turns it off
with DATABASE_PREPARED_STATEMENTS=false and nothing is prepared at all."""

import pytest
from django.db import connection

from tests.factories import running
from tests.helpers import database_settings, live_poll, status_fragment

postgresql_only = pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="prepared statements are PostgreSQL's; .ci/run runs the suite on PostgreSQL",
)


def prepared_statements() -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        return [row[0] for row in cursor.fetchall()]


@postgresql_only
def test_the_unchanged_poll_is_the_one_prepared_statement(alice_client, alice):
    job = running(alice, for_seconds=1)
    query = live_poll(alice_client, job)  # the page itself: many queries, none prepared

    for _ in range(3):
        assert status_fragment(alice_client, job, **query).status_code == 204

    (statement,) = prepared_statements()
    assert '"django_session"' in statement and '"jobs_job"' in statement


@postgresql_only
def test_with_prepared_statements_off_nothing_is_prepared(alice_client, alice, monkeypatch):
    options = dict(connection.settings_dict["OPTIONS"])
    options.pop("prepare_threshold")
    monkeypatch.setitem(connection.settings_dict, "OPTIONS", options)
    job = running(alice, for_seconds=1)
    query = live_poll(alice_client, job)

    for _ in range(3):
        assert status_fragment(alice_client, job, **query).status_code == 204

    assert prepared_statements() == []


def test_the_setting_turns_preparing_on_by_default_and_off_when_false():
    postgres = {"DATABASE_URL": "postgres://studio:pw@db.example.com:5432/studio"}

    assert "prepare_threshold" in database_settings(**postgres)["OPTIONS"]
    off = database_settings(**postgres, DATABASE_PREPARED_STATEMENTS="false")
    assert "prepare_threshold" not in off.get("OPTIONS", {})
    assert "prepare_threshold" not in database_settings().get("OPTIONS", {})  # SQLite
