"""The galleries' prompt search as people use it, on PostgreSQL (the trigram index) and on
SQLite (a scan) alike: words in any order, part of a word, a quoted phrase, whatever the case,
never anyone else's work; and a search with more matches than it counts says so honestly."""

import re

import pytest
from django.test import Client
from django.urls import reverse

from jobs.models import Job, JobGroup
from jobs.selectors import jobs as job_selectors
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
