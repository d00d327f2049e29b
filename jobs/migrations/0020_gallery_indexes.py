"""The galleries at size (issue 25, bench/gallery.py): indexes per space for their pages,
counts, filters and model lists, and on PostgreSQL a trigram index for the prompt search.

The search is Django's icontains, which PostgreSQL runs as `UPPER(prompt) LIKE UPPER('%term%')`;
a GIN index of pg_trgm's trigrams on exactly that expression answers it, part of a word
included ("boa" finds "boat"). pg_trgm is a trusted extension from PostgreSQL 13 on, so the
database's owner may create it without being a superuser (README, Production settings).
SQLite has neither, and keeps scanning: it is the zero-configuration first run, not a studio of
a million jobs. Django's Meta cannot name an index on an expression with an operator class
that only PostgreSQL has, hence RunPython, on PostgreSQL only.
"""

from django.conf import settings
from django.db import migrations, models


def create_trigram_index(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    # The expression must be exactly what icontains compiles to on PostgreSQL
    # (UPPER("jobs_job"."prompt"::text)), or the planner will not use the index.
    schema_editor.execute(
        "CREATE INDEX IF NOT EXISTS job_prompt_trgm ON jobs_job"
        " USING gin (UPPER(prompt) gin_trgm_ops)"
    )
    # The planner's statistics of UPPER(prompt) come with the index's first ANALYZE: without
    # them it cannot tell a rare word from a common one.
    schema_editor.execute("ANALYZE jobs_job")


def drop_trigram_index(apps, schema_editor):
    # The extension stays: something else may use it, and it costs nothing unused.
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("DROP INDEX IF EXISTS job_prompt_trgm")


class Migration(migrations.Migration):

    dependencies = [
        ('jobs', '0019_job_groups'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddIndex(
            model_name='job',
            index=models.Index(condition=models.Q(('deleted_at__isnull', True)), fields=['owner', '-created_at', '-id'], include=('team', 'group', 'group_position', 'status', 'model', 'starred_at', 'expired_at', 'stored_bytes'), name='job_gallery_owner'),
        ),
        migrations.AddIndex(
            model_name='job',
            index=models.Index(condition=models.Q(('deleted_at__isnull', True), ('team__isnull', False)), fields=['team', '-created_at', '-id'], include=('owner', 'group', 'group_position', 'status', 'model', 'starred_at', 'expired_at', 'stored_bytes'), name='job_gallery_team'),
        ),
        migrations.AddIndex(
            model_name='job',
            index=models.Index(condition=models.Q(('deleted_at__isnull', True)), fields=['owner', 'model'], include=('team',), name='job_models_owner'),
        ),
        migrations.AddIndex(
            model_name='job',
            index=models.Index(condition=models.Q(('deleted_at__isnull', True), ('team__isnull', False)), fields=['team', 'model'], include=('owner',), name='job_models_team'),
        ),
        migrations.RunPython(create_trigram_index, drop_trigram_index),
    ]
