"""The galleries' prompt search as people use it, on PostgreSQL (the trigram index) and on
SQLite (a scan) alike: words in any order, part of a word, a quoted phrase, whatever the case,
never anyone else's work; and a search with more matches than it counts says so honestly."""

import itertools
import re
from datetime import timedelta
from unittest import mock

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jobs.models import Job, JobGroup
from jobs.selectors import jobs as job_selectors
from jobs.selectors.groups import group_leads_only
from tests.factories import team_with
from tests.helpers import visible_text

GALLERY = reverse("jobs:list")


def make_job(owner, prompt, **fields):
    return Job.objects.create(owner=owner, prompt=prompt, status=Job.Status.SUCCEEDED, **fields)


def titles(response) -> list[str]:
    """The cards' titles, in the order they show."""
    assert response.status_code == 200
    return re.findall(
        r'class="job-card-title"><a href="[^"]+">([^<]*)</a>', response.content.decode()
    )


def search(client, query, url=GALLERY, **more) -> list[str]:
    return sorted(titles(client.get(url, {"q": query, **more})))


def signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_search_finds_part_of_a_word(alice_client, alice):
    make_job(alice, "A paper boat on a river")
    make_job(alice, "A heron at dawn")

    assert search(alice_client, "boa") == ["A paper boat on a river"]
    assert search(alice_client, "ERO") == ["A heron at dawn"]


def test_every_word_must_be_in_the_prompt_in_any_order(alice_client, alice):
    make_job(alice, "A heron lands on a wooden pier")
    make_job(alice, "A heron in a field")
    make_job(alice, "An empty pier")

    assert search(alice_client, "pier heron") == ["A heron lands on a wooden pier"]
    assert search(alice_client, "  HERON   ") == [
        "A heron in a field",
        "A heron lands on a wooden pier",
    ]


def test_a_quoted_phrase_matches_only_those_words_together(alice_client, alice):
    make_job(alice, "A lighthouse at golden hour")
    make_job(alice, "A golden retriever for an hour")

    assert search(alice_client, '"golden hour"') == ["A lighthouse at golden hour"]
    assert search(alice_client, "golden hour") == [
        "A golden retriever for an hour",
        "A lighthouse at golden hour",
    ]
    # An unclosed quote is only punctuation.
    assert search(alice_client, '"golden') == [
        "A golden retriever for an hour",
        "A lighthouse at golden hour",
    ]


def test_percent_and_underscore_match_only_themselves(alice_client, alice):
    make_job(alice, "Sales up 100% in snake_case letters")
    make_job(alice, "100 cats in snake case")

    assert search(alice_client, "100%") == ["Sales up 100% in snake_case letters"]
    assert search(alice_client, "snake_case") == ["Sales up 100% in snake_case letters"]


def test_a_word_no_prompt_has_finds_nothing_and_says_so(alice_client, alice):
    make_job(alice, "A paper boat on a river")

    response = alice_client.get(GALLERY, {"q": "zeppelin"})

    assert titles(response) == []
    assert "No videos match these filters" in visible_text(response)


def test_my_search_never_shows_bobs_jobs_or_a_teams_i_am_not_in(alice_client, alice, bob):
    elsewhere = team_with("Elsewhere", members=[bob])
    make_job(alice, "my boat")
    make_job(bob, "bobs boat")
    make_job(bob, "bobs team boat", team=elsewhere)

    assert search(alice_client, "boat") == ["my boat"]


def test_a_teams_search_finds_every_members_jobs_and_no_other_teams(alice, bob, django_user_model):
    carol = django_user_model.objects.create_user("carol", password="carol-password-1")
    design = team_with("Design", members=[alice, bob])
    other = team_with("Other", members=[carol])
    make_job(alice, "alices boat for design", team=design)
    make_job(bob, "bobs boat for design", team=design)
    make_job(bob, "bobs own boat")
    make_job(carol, "carols boat for another team", team=other)
    videos = reverse("teams:videos", args=[design.pk])

    assert search(signed_in(bob), "BOAT", videos) == [
        "alices boat for design",
        "bobs boat for design",
    ]
    assert signed_in(carol).get(videos, {"q": "boat"}).status_code == 404


def test_a_search_combines_with_the_filters(alice_client, alice):
    make_job(alice, "storm at sea", model="ir/test-video")
    make_job(alice, "storm at sea", model="openai/sora-2")
    make_job(alice, "calm at sea", model="ir/test-video")

    assert len(search(alice_client, "sea storm", model="ir/test-video")) == 1


@pytest.mark.parametrize("query", ["", "storm"])
def test_more_videos_than_the_gallery_counts_say_more_than(alice_client, alice, monkeypatch, query):
    """A gallery counts its entries only so far (COUNT_LIMIT, 1,000 in the studio) and says
    "more than" beyond; each page further along counts further, so paging on works."""
    monkeypatch.setattr(job_selectors, "COUNT_LIMIT", 30)
    for number in range(60):
        make_job(alice, f"storm number {number}")

    first = alice_client.get(GALLERY, {"q": query})
    second = alice_client.get(GALLERY, {"q": query, "page": "2"})
    third = alice_client.get(GALLERY, {"q": query, "page": "3"})

    assert "1–24 of more than 30 videos" in visible_text(first)
    assert f'href="?q={query}&amp;page=2"' in first.content.decode()
    assert "25–48 of more than 48 videos" in visible_text(second)
    assert 'rel="next"' in second.content.decode()
    assert "49–60 of 60 videos" in visible_text(third)
    assert 'rel="next"' not in third.content.decode()
    shown = titles(first) + titles(second) + titles(third)
    assert sorted(shown) == sorted(f"storm number {n}" for n in range(60))


@pytest.mark.parametrize("query", ["", "storm"])
def test_videos_in_groups_count_once_when_the_videos_are_more_than_it_counts(
    alice_client, alice, monkeypatch, query
):
    """Past the bound in videos but not in entries: 10 made alone and 5 batches of 8 are 50
    videos and 15 entries. The count goes by the entries, so it is exact, not "more than"."""
    monkeypatch.setattr(job_selectors, "COUNT_LIMIT", 30)
    for number in range(10):
        make_job(alice, f"storm number {number}")
    for batch in range(5):
        group = JobGroup.objects.create(kind=JobGroup.Kind.BATCH, owner=alice)
        for position in range(8):
            make_job(
                alice, f"storm batch {batch} row {position}", group=group, group_position=position
            )

    response = alice_client.get(GALLERY, {"q": query})

    text = visible_text(response)
    assert " 15 videos" in text and "more than" not in text
    assert len(titles(response)) == 15


@pytest.mark.parametrize("query", ["", "storm"])
@pytest.mark.parametrize("page", ["99", "1" + "0" * 30])
def test_a_page_past_the_last_shows_the_last(alice_client, alice, query, page):
    for number in range(30):
        make_job(alice, f"storm number {number}")

    response = alice_client.get(GALLERY, {"q": query, "page": page})

    assert len(titles(response)) == 6
    assert "25–30 of 30 videos" in visible_text(response)


# --- Every page, whichever way it was counted -----------------------------------------------------

people = itertools.count()
A_JOB = st.tuples(
    st.one_of(st.none(), st.integers(0, 3)),  # made alone, or in one of four groups
    st.integers(0, 2),  # its place in the group: a repeat is a retry sharing its failed job's
    st.integers(0, 6),  # minutes after the first job: equal ones are made in the same instant
    st.sampled_from([Job.Status.SUCCEEDED, Job.Status.FAILED]),
    st.sampled_from(["storm at sea", "calm at sea"]),
)


@pytest.mark.django_db
@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    made=st.lists(A_JOB, max_size=24),
    status=st.sampled_from(["", Job.Status.FAILED]),
    query=st.sampled_from(["", "storm"]),
    bound=st.sampled_from([job_selectors.COUNT_LIMIT, 2, 5]),
    per_page=st.integers(1, 7),
)
def test_the_count_and_every_page_follow_the_group_rule(
    django_user_model, made, status, query, bound, per_page
):
    """Jobs made alone and in groups (with retries sharing a place and jobs made in the same
    instant), any filter, any page size, and a count bound as low as 2: the count and the pages
    show exactly the entries that group_leads_only names (the rule the gallery applies past
    its first read), each once, newest first. When the gallery reads its rows once and
    settles the count and every page from that one read, it must agree with that rule to the
    row."""
    person = django_user_model.objects.create(username=f"galleries-{next(people)}")
    groups = [JobGroup.objects.create(kind=JobGroup.Kind.BATCH, owner=person) for _ in range(4)]
    start = timezone.now() - timedelta(hours=1)
    for group, position, minute, job_status, prompt in made:
        job = Job.objects.create(owner=person, prompt=prompt, status=job_status)
        if group is not None:
            job.group, job.group_position = groups[group], position
        job.created_at = start + timedelta(minutes=minute)
        job.save(update_fields=["group", "group_position", "created_at"])
    space = job_selectors.Space(user=person)
    jobs = job_selectors.job_search(space=space, status=status, query=query)
    rule = list(group_leads_only(jobs).values_list("pk", flat=True))

    with mock.patch.object(job_selectors, "COUNT_LIMIT", bound):
        counted = job_selectors.gallery_entry_count(jobs=jobs)
        pages = []
        for offset in range(0, len(rule), per_page):
            at_least = offset + per_page
            counted_here = job_selectors.gallery_entry_count(jobs=jobs, at_least=at_least)
            page = job_selectors.gallery_page(
                jobs=jobs, offset=offset, limit=per_page, counted=counted_here
            )
            pages += [job.pk for job in page]

    if len(rule) > bound:
        assert (counted.count, counted.more) == (bound + 1, True)
    else:
        assert (counted.count, counted.more) == (len(rule), False)
    assert pages == rule
