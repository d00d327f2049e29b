"""PostgreSQL statistics for the cost review's (day, model) grouping.

Without them the planner guesses ~340,000 groups for a month instead of ~300 and aggregates on one
CPU; with them the review page for a month at a million jobs went from 302 to 228 ms median
(bench/review.py, BENCHMARKS.md). They take no disk space and cost nothing on insert. Django has
no operation for CREATE STATISTICS, and SQLite has no such thing, hence RunPython.
"""

from django.db import migrations


def create_statistics(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    # The expression must be exactly what TruncDate("created_at") compiles to with TIME_ZONE =
    # "UTC" (selectors.spend_by_day_and_model), or the planner will not match it.
    schema_editor.execute(
        "CREATE STATISTICS IF NOT EXISTS cost_day_model"
        " ON ((created_at AT TIME ZONE 'UTC')::date), model FROM jobs_costentry"
    )
    schema_editor.execute("ANALYZE jobs_costentry")


def drop_statistics(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("DROP STATISTICS IF EXISTS cost_day_model")


class Migration(migrations.Migration):
    dependencies = [("jobs", "0003_ledger_and_budgets")]
    operations = [migrations.RunPython(create_statistics, drop_statistics)]
