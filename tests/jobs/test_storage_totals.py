"""The storage figures on PostgreSQL come from StorageTotal, which a trigger on the jobs table
keeps (migration 0024): whatever changes a job's files or where it counts, each gallery's figure
and each team's quota check stay equal to the sum over the jobs themselves."""

import pytest
import redis
from django.db import connections
from django.db.models import F
from django.db.models.functions import Coalesce

from jobs import selectors, services
from jobs.models import Job, StorageTotal
from tests.factories import TEST_MODEL
from tests.helpers import TEST_BROKER_URL, running_worker, wait_for
from tests.ledger_checks import team_with_members

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("catalog", "broker_url"),
    pytest.mark.skipif(
        connections["default"].vendor != "postgresql",
        reason="StorageTotal is kept by a PostgreSQL trigger; on SQLite the figures are sums",
    ),
]


def summed(jobs) -> tuple[int, int]:
    """(bytes, jobs not measured) of `jobs`, added up from the rows themselves."""
    rows = list(jobs.values_list("stored_bytes", flat=True))
    return sum(b or 0 for b in rows), sum(b is None for b in rows)


def assert_figures_match_jobs(people, teams):
    for team in teams:
        use = selectors.storage_for_team(team=team)
        assert (use.used, use.unmeasured) == summed(Job.objects.filter(team=team)), team.name
    for person in people:
        for team in [None, *teams]:
            space = selectors.Space(user=person, team=team)
            if team is not None and not team.memberships.filter(user=person).exists():
                continue  # the view shows a team's gallery to its members only
            use = selectors.storage_for_space(space=space)
            expected = summed(selectors.space_jobs(space=space))
            assert (use.used, use.unmeasured) == expected, (person.username, team)


def test_the_storage_figures_follow_every_change_of_a_jobs_files(django_user_model, simulator):
    alice, bob, carol = (django_user_model.objects.create_user(n) for n in ("al", "bo", "ca"))
    design = team_with_members("Design", [alice, bob])
    sound = team_with_members("Sound", [carol, alice])
    people, teams = [alice, bob, carol], [design, sound]
    redis.Redis.from_url(TEST_BROKER_URL).flushdb()

    def submit(owner, team=None, prompt="a kite"):
        return services.job_create(
            owner=owner, team=team, prompt=prompt, model=TEST_MODEL, size="auto",
            seconds="auto", response_format="url",
        )  # fmt: skip

    made = [submit(alice), submit(alice, design), submit(bob, design), submit(carol, sound)]
    made.append(submit(alice, sound, prompt="a drum"))
    # Stored for real: the video, then its poster, each adding to the job's stored_bytes.
    with running_worker(TEST_BROKER_URL):
        wait_for(
            lambda: Job.objects.filter(status=Job.Status.SUCCEEDED, poster__gt="").count() == 5,
            timeout=60,
            what="five videos stored with their posters",
        )
    assert all(job.stored_bytes > 0 for job in Job.objects.all())
    assert StorageTotal.objects.exists()
    assert_figures_match_jobs(people, teams)

    # A job from before sizes were recorded, then measured.
    legacy = Job.objects.create(owner=bob, team=design, prompt="old", stored_bytes=None)
    assert selectors.storage_for_team(team=design).unmeasured == 1
    assert_figures_match_jobs(people, teams)
    Job.objects.filter(pk=legacy.pk).update(stored_bytes=1234)
    assert_figures_match_jobs(people, teams)

    # Moved to another team and another maker by hand; a file added by SQL.
    Job.objects.filter(pk=made[1].pk).update(team=sound, owner=carol)
    assert_figures_match_jobs(people, teams)
    Job.objects.filter(pk=made[2].pk).update(stored_bytes=Coalesce("stored_bytes", 0) + 10)
    assert_figures_match_jobs(people, teams)

    # Deleted from the gallery (its files go, the row stays), a row deleted outright.
    assert services.job_delete(job=Job.objects.get(pk=made[0].pk))
    assert_figures_match_jobs(people, teams)
    Job.objects.filter(pk=legacy.pk).delete()
    assert_figures_match_jobs(people, teams)

    # Alice leaves Sound: what she made there is no longer in her My videos, but still the team's.
    services.membership_remove(team=sound, user=alice, by=None)
    assert_figures_match_jobs(people, [design, sound])
    mine = selectors.storage_for_space(space=selectors.Space(user=alice)).used
    drum = Job.objects.get(prompt="a drum")
    assert drum.stored_bytes > 0
    assert mine == summed(Job.objects.filter(owner=alice, deleted_at__isnull=True).exclude(
        team=sound))[0]  # fmt: skip

    # An account deleted: its personal files go, its team videos stay with the team.
    services.account_delete(user=bob)
    assert_figures_match_jobs([alice, carol], teams)

    # Every job's bytes doubled in one statement; then the table emptied at once.
    Job.objects.update(stored_bytes=F("stored_bytes") * 2)
    assert_figures_match_jobs([alice, carol], teams)
    with connections["default"].cursor() as cursor:
        cursor.execute(f"TRUNCATE {Job._meta.db_table} CASCADE")
    assert selectors.storage_for_team(team=design).used == 0
    assert not StorageTotal.objects.exists()
