"""The cost reviews' roll-ups of the ledger (models/rollups.py), filled from the ledger as it
stands by one GROUP BY per table; bench/review.py fills its seeded ledger's with the same SQL."""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

# A UTC day and its month's first day, per database: PostgreSQL stores timestamptz, SQLite
# the UTC time as text.
DAY = {"postgresql": "(created_at AT TIME ZONE 'UTC')::date", "sqlite": "date(created_at)"}
MONTH = {
    "postgresql": "date_trunc('month', created_at AT TIME ZONE 'UTC')::date",
    "sqlite": "date(created_at, 'start of month')",
}
PENDING = "reconciliation = 'pending'"


def fill_sql(vendor: str) -> list[str]:
    """INSERT ... SELECT statements that fill the empty roll-ups from the whole ledger."""
    day, month = DAY[vendor], MONTH[vendor]
    user_span = """
        SELECT '{span}', {when}, user_id, team_id, sum(cost), count(*),
               coalesce(sum(possible_cost) FILTER (WHERE {pending}), 0)
        FROM jobs_costentry GROUP BY {when}, user_id, team_id"""
    return [
        f"""INSERT INTO jobs_ledgerday (day, team_id, model, cost, entries, pending_cost, unknown,
                                        to_check)
        SELECT {day}, team_id, model, sum(cost), count(*),
               coalesce(sum(possible_cost) FILTER (WHERE {PENDING}), 0),
               count(*) FILTER (WHERE outcome = 'unknown'), count(*) FILTER (WHERE {PENDING})
        FROM jobs_costentry GROUP BY {day}, team_id, model""",
        "INSERT INTO jobs_ledgeruserspan (span, day, user_id, team_id, cost, entries, pending_cost)"
        + user_span.format(span="day", when=day, pending=PENDING)
        + " UNION ALL"
        + user_span.format(span="month", when=month, pending=PENDING),
    ]


def ledger_to_rollups(apps, schema_editor):
    with schema_editor.connection.cursor() as cursor:
        for statement in fill_sql(schema_editor.connection.vendor):
            cursor.execute(statement)


class Migration(migrations.Migration):

    dependencies = [
        ('jobs', '0021_held_totals'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name='LedgerDay',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('day', models.DateField()),
                ('model', models.CharField(max_length=200)),
                ('cost', models.DecimalField(decimal_places=6, default=0, max_digits=16)),
                ('entries', models.BigIntegerField(default=0)),
                ('pending_cost', models.DecimalField(decimal_places=6, default=0, max_digits=16)),
                ('unknown', models.BigIntegerField(default=0)),
                ('to_check', models.BigIntegerField(default=0)),
                ('team', models.ForeignKey(null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='jobs.team')),
            ],
            options={
                'indexes': [models.Index(fields=['team', 'day'], name='ledgerday_team')],
                'constraints': [models.UniqueConstraint(fields=('day', 'team', 'model'), name='ledgerday_key', nulls_distinct=False)],
            },
        ),
        migrations.CreateModel(
            name='LedgerUserSpan',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('span', models.CharField(choices=[('day', 'day'), ('month', 'month')], max_length=5)),
                ('day', models.DateField()),
                ('cost', models.DecimalField(decimal_places=6, default=0, max_digits=16)),
                ('entries', models.BigIntegerField(default=0)),
                ('pending_cost', models.DecimalField(decimal_places=6, default=0, max_digits=16)),
                ('team', models.ForeignKey(null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='jobs.team')),
                ('user', models.ForeignKey(null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL)),
            ],
            options={
                'indexes': [models.Index(fields=['team', 'span', 'day'], name='ledgeruserspan_team'), models.Index(fields=['user', 'span', 'day'], name='ledgeruserspan_user')],
                'constraints': [models.UniqueConstraint(fields=('span', 'day', 'user', 'team'), name='ledgeruserspan_key', nulls_distinct=False)],
            },
        ),
        migrations.RunPython(ledger_to_rollups, migrations.RunPython.noop),
    ]
