"""PostgreSQL's JIT compiler is off for the studio's connections: it compiled the galleries'
counts over a team's 100,000 jobs for up to 2 s, for 25 ms of work (bench/gallery.py).
DATABASE_JIT=true leaves the server's own setting, for a pooler that refuses the option."""

import pytest
from django.db import connection

from tests.helpers import database_settings

POSTGRES = {"DATABASE_URL": "postgres://studio:pw@db.example.com:5432/studio"}


@pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="JIT is PostgreSQL's; .ci/run runs the suite on PostgreSQL",
)
@pytest.mark.django_db
def test_the_studios_connections_run_without_jit():
    with connection.cursor() as cursor:
        cursor.execute("SHOW jit")
        assert cursor.fetchone()[0] == "off"


def test_jit_is_off_by_default_and_left_to_the_server_when_asked():
    assert database_settings(**POSTGRES)["OPTIONS"]["options"] == "-c jit=off"
    assert "options" not in database_settings(**POSTGRES, DATABASE_JIT="true")["OPTIONS"]
    assert "options" not in database_settings().get("OPTIONS", {})  # SQLite


def test_the_urls_own_options_are_kept():
    url = POSTGRES["DATABASE_URL"] + "?options=-c%20statement_timeout%3D5s"
    options = database_settings(DATABASE_URL=url)["OPTIONS"]["options"]
    assert options == "-c statement_timeout=5s -c jit=off"
