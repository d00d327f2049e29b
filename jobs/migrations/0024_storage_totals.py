from django.db import migrations, models

# The scopes a job's files count at (as selectors.storage reads them): its team and the person
# who made it there, or its owner's personal space. The stripe is the owner's id modulo
# StorageTotal.STRIPES. A job's files count whatever its status: a deleted job has none
# (services.files clears stored_bytes), and stored_bytes NULL (files from before sizes were
# recorded) counts as unmeasured.
TRACK_STORAGE = """
CREATE FUNCTION jobs_storage_scopes(team uuid, owner integer) RETURNS text[]
LANGUAGE sql IMMUTABLE AS $$
    SELECT array_remove(ARRAY[
        CASE WHEN team IS NOT NULL THEN 'team:' || team END,
        CASE WHEN team IS NOT NULL AND owner IS NOT NULL THEN 'member:' || team || ':' || owner END,
        CASE WHEN team IS NULL AND owner IS NOT NULL THEN 'user:' || owner END
    ], NULL)
$$;

CREATE FUNCTION jobs_storage_add(team uuid, owner integer, bytes bigint, unmeasured integer)
RETURNS void LANGUAGE sql AS $$
    INSERT INTO jobs_storagetotal (scope, stripe, used, unmeasured)
    SELECT scope, mod(coalesce(owner, 0), 16), bytes, unmeasured
    FROM unnest(jobs_storage_scopes(team, owner)) AS scope
    ORDER BY scope
    ON CONFLICT (scope, stripe) DO UPDATE SET
        used = jobs_storagetotal.used + EXCLUDED.used,
        unmeasured = jobs_storagetotal.unmeasured + EXCLUDED.unmeasured
$$;

CREATE FUNCTION jobs_storage_track() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE'
        AND OLD.team_id IS NOT DISTINCT FROM NEW.team_id
        AND OLD.owner_id IS NOT DISTINCT FROM NEW.owner_id THEN
        -- The usual change (a video or poster stored, files deleted): one addition.
        PERFORM jobs_storage_add(
            NEW.team_id, NEW.owner_id,
            coalesce(NEW.stored_bytes, 0) - coalesce(OLD.stored_bytes, 0),
            (NEW.stored_bytes IS NULL)::integer - (OLD.stored_bytes IS NULL)::integer);
        RETURN NULL;
    END IF;
    IF TG_OP <> 'INSERT' THEN
        PERFORM jobs_storage_add(OLD.team_id, OLD.owner_id, -coalesce(OLD.stored_bytes, 0),
                                 -(OLD.stored_bytes IS NULL)::integer);
    END IF;
    IF TG_OP <> 'DELETE' THEN
        PERFORM jobs_storage_add(NEW.team_id, NEW.owner_id, coalesce(NEW.stored_bytes, 0),
                                 (NEW.stored_bytes IS NULL)::integer);
    END IF;
    RETURN NULL;
END
$$;

CREATE FUNCTION jobs_storage_reset() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM jobs_storagetotal;
    RETURN NULL;
END
$$;

-- WHEN, not a test inside the function: a job with nothing stored (every queued, running and
-- failed one) costs no function call, and neither does an update that changes neither what
-- it stores nor where it counts.
CREATE TRIGGER jobs_job_storage_inserted AFTER INSERT ON jobs_job FOR EACH ROW
    WHEN (NEW.stored_bytes IS DISTINCT FROM 0)
    EXECUTE FUNCTION jobs_storage_track();
CREATE TRIGGER jobs_job_storage_updated AFTER UPDATE ON jobs_job FOR EACH ROW
    WHEN ((OLD.stored_bytes IS DISTINCT FROM 0 OR NEW.stored_bytes IS DISTINCT FROM 0)
          AND (OLD.stored_bytes IS DISTINCT FROM NEW.stored_bytes
               OR OLD.team_id IS DISTINCT FROM NEW.team_id
               OR OLD.owner_id IS DISTINCT FROM NEW.owner_id))
    EXECUTE FUNCTION jobs_storage_track();
CREATE TRIGGER jobs_job_storage_deleted AFTER DELETE ON jobs_job FOR EACH ROW
    WHEN (OLD.stored_bytes IS DISTINCT FROM 0)
    EXECUTE FUNCTION jobs_storage_track();
CREATE TRIGGER jobs_job_storage_truncated AFTER TRUNCATE ON jobs_job
    FOR EACH STATEMENT EXECUTE FUNCTION jobs_storage_reset();

INSERT INTO jobs_storagetotal (scope, stripe, used, unmeasured)
SELECT scope, mod(coalesce(owner_id, 0), 16), sum(coalesce(stored_bytes, 0)),
       count(*) FILTER (WHERE stored_bytes IS NULL)
FROM jobs_job CROSS JOIN LATERAL unnest(jobs_storage_scopes(team_id, owner_id)) AS scope
WHERE stored_bytes IS DISTINCT FROM 0
GROUP BY 1, 2;
"""

UNTRACK_STORAGE = """
DROP TRIGGER jobs_job_storage_truncated ON jobs_job;
DROP TRIGGER jobs_job_storage_deleted ON jobs_job;
DROP TRIGGER jobs_job_storage_updated ON jobs_job;
DROP TRIGGER jobs_job_storage_inserted ON jobs_job;
DROP FUNCTION jobs_storage_reset();
DROP FUNCTION jobs_storage_track();
DROP FUNCTION jobs_storage_add(uuid, integer, bigint, integer);
DROP FUNCTION jobs_storage_scopes(uuid, integer);
"""


def track_storage(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        with schema_editor.connection.cursor() as cursor:
            cursor.execute(TRACK_STORAGE)  # several statements: no parameters


def untrack_storage(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        with schema_editor.connection.cursor() as cursor:
            cursor.execute(UNTRACK_STORAGE)


class Migration(migrations.Migration):
    dependencies = [
        ("jobs", "0023_budget_shares"),
    ]

    operations = [
        migrations.CreateModel(
            name="StorageTotal",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("scope", models.CharField(max_length=120)),
                ("stripe", models.PositiveSmallIntegerField()),
                ("used", models.BigIntegerField(default=0)),
                ("unmeasured", models.IntegerField(default=0)),
            ],
            options={
                "constraints": [
                    models.UniqueConstraint(fields=("scope", "stripe"), name="storagetotal_scope_stripe")
                ],
            },
        ),
        migrations.RunPython(track_storage, untrack_storage),
    ]
