"""Every URL of the project, walked as a stranger: nobody sees or touches another's work. Then
walked again across team boundaries: a member of one team, a removed member, a manager of
another team, a teammate looking at a personal job, and anonymous visitors."""

import re
from dataclasses import dataclass

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver

from jobs import services
from jobs.models import Job, Team
from jobs.services import tokens
from tests.factories import new_job, team_with

# Pages anyone may open: signing in and up, the admin's own login machinery, and the health check
# (which says only "ok" or which part is down).
PUBLIC = {"healthz", "login", "logout", "signup", "password_reset", "password_reset_done",
          "password_reset_confirm", "password_reset_complete", "admin:login", "admin:logout",
          "admin:jsi18n", "admin:view_on_site", "admin:password_change", "admin:password_change_done",
          "admin:index", "admin:app_list", "admin:autocomplete", "home", "password_change",
          "password_change_done",
          # Signing up with email verification, and the links sent by email: the signed token in
          # the link is the key, and a wrong one gets a page saying the link does not work.
          "signup_sent", "signup_verify", "signup_verify_resend", "account_email_confirm",
          # The API's OpenAPI description: the same for everyone, nothing of anyone's.
          "api:openapi",
          # For the people who run the studio, guarded by network and token rather than a
          # session (tests/test_metrics.py, tests/test_healthz_full.py test who may ask): here
          # the test client asks from loopback, which the development settings let in.
          "healthz_full", "metrics"}  # fmt: skip
# Public by design, but only with the secret token a share link carries. The walk fills in a
# wrong token: it must get 404 (405 for POST), from anyone, and give nothing away.
SHARE_LINKS = {"shared", "shared_video", "shared_poster"}
WRONG_TOKEN = "not-the-token-alice-shared"


def walk(patterns, prefix="", namespace=""):
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            space = f"{namespace}{pattern.namespace}:" if pattern.namespace else namespace
            yield from walk(pattern.url_patterns, prefix + str(pattern.pattern), space)
        elif isinstance(pattern, URLPattern) and pattern.name:
            yield f"{namespace}{pattern.name}", prefix + str(pattern.pattern)


def concrete(route: str, job: Job, team: Team | None = None) -> str | None:
    """A real path for `route`, aimed at alice's job and objects (and `team`, where a route
    names a team; the job's id otherwise, which names no team). None if it can't be filled."""
    path = route.lstrip("^").rstrip("$").replace("\\Z", "")
    path = path.replace("<uuid:team_id>", str(team.pk if team else job.pk))
    path = re.sub(r"<uuid:\w+>", str(job.pk), path)
    path = path.replace("<str:job_id>", str(job.pk))  # the API's, which parses it itself
    path = path.replace("^(?P<path>.*)", "anything/else")  # the API's catch-all 404
    path = path.replace("<id>", str(job.owner_id))
    path = path.replace("<str:token>", WRONG_TOKEN)
    path = re.sub(r"<path:object_id>|\(\?P<object_id>[^)]*\)", str(job.pk), path)
    if re.search(r"[<(\\]", path):
        return None
    return "/" + path


def every_url():
    return sorted(set(walk(get_resolver().url_patterns)))


@pytest.fixture
def alices_job(alice):
    # Finished and shared, so a wrong token proves the lookup is exact, and a stranger's share or
    # unshare would show as a change.
    return new_job(
        alice, "alice's secret", status=Job.Status.SUCCEEDED, share_token="alices-real-share-token"
    )


def refused(response) -> bool:
    """404, 403, 405, 401 (the API, without a token), or a redirect to a login page: anything
    but the content."""
    if response.status_code in (401, 403, 404, 405):
        return True
    return response.status_code == 302 and "login" in response["Location"]


@pytest.mark.parametrize(("name", "route"), [u for u in every_url() if u[0] not in PUBLIC])
def test_a_stranger_gets_nothing_from_any_url(client, bob, alices_job, name, route):
    """As an anonymous visitor and as bob, by GET and by POST: nothing of alice's, no change."""
    path = concrete(route, alices_job)
    if path is None:
        pytest.fail(f"{name} ({route}) has a parameter this test cannot fill: teach it")
    before = Job.objects.filter(pk=alices_job.pk).values().get()
    own_page = str(alices_job.pk) not in path and f"/{alices_job.owner_id}/" not in path

    for visitor in ("anonymous", "bob"):
        if visitor == "bob":
            client.force_login(bob)
        for method in ("get", "post"):
            response = getattr(client, method)(path)
            what = f"{method.upper()} {path} ({name}) as {visitor}: {response.status_code}"
            if name in SHARE_LINKS:
                assert response.status_code == (404 if method == "get" else 405), what
            elif visitor == "bob" and own_page and not name.startswith(("admin:", "costs:")):
                # bob's own pages (generate, My videos, Spending): fine, if nothing of alice's shows.
                assert response.status_code < 500, what
            else:
                assert refused(response), what
            # A streamed answer (bob's own data, as a .zip) is read whole here.
            body = b"".join(response.streaming_content) if response.streaming else response.content
            assert b"alice&#x27;s secret" not in body and b"alice's secret" not in body, what
            assert Job.objects.filter(pk=alices_job.pk).values().get() == before, what


# Team boundaries --------------------------------------------------------------------------------

# Words that name each job's prompt; a page, fragment, file or API answer that carries one has
# shown that job.
PERSONAL_SECRET = "alice-personal-secret"
DESIGN_SECRET = "design-team-secret"
MARKETING_SECRET = "marketing-team-secret"


@dataclass(frozen=True)
class Scenario:
    visitor: str | None  # None: anonymous
    job: str  # the job the URL names
    team: str  # the team the URL names
    may_look: bool = False  # a teammate on a team job: reads are theirs, changes are not


# Who walks every URL, aimed at what. Who is where: alice and bob are in the Design team, rex
# was and has been removed, mallory manages the Marketing team.
SCENARIOS = {
    "a teammate at a personal job": Scenario("bob", "personal", "design"),
    "a removed member": Scenario("rex", "design_job", "design"),
    "a manager of another team": Scenario("mallory", "design_job", "design"),
    "an anonymous visitor": Scenario(None, "design_job", "design"),
    "a member of team A at team B": Scenario("bob", "marketing_job", "marketing"),
    "a teammate, who may look but not change": Scenario(
        "bob", "design_job", "design", may_look=True
    ),
}
# What each visitor must never be shown, whichever URL they open.
NEVER_SHOWN = {
    None: {PERSONAL_SECRET, DESIGN_SECRET, MARKETING_SECRET},
    "bob": {PERSONAL_SECRET, MARKETING_SECRET},
    "rex": {PERSONAL_SECRET, DESIGN_SECRET, MARKETING_SECRET},
    "mallory": {PERSONAL_SECRET, DESIGN_SECRET},
}
TEAMS_OF = {"bob": {"design"}, "mallory": {"marketing"}}


@pytest.fixture
def teams_world(alice, bob, django_user_model):
    """Finished and shared jobs, one personal and one in each team, and everyone's tokens."""
    rex = django_user_model.objects.create_user("rex", password="rex-password-1")
    mallory = django_user_model.objects.create_user("mallory", password="mallory-password-1")
    design = team_with("Design", members=[alice, bob, rex])
    marketing = team_with("Marketing", managers=[mallory])
    services.membership_remove(team=design, user=rex, by=None)
    done = Job.Status.SUCCEEDED
    jobs = {
        "personal": new_job(alice, PERSONAL_SECRET, status=done, share_token="share-personal"),
        "design_job": new_job(
            alice, DESIGN_SECRET, status=done, team=design, share_token="share-design"
        ),
        "marketing_job": new_job(
            mallory, MARKETING_SECRET, status=done, team=marketing, share_token="share-marketing"
        ),
    }
    users = {"bob": bob, "rex": rex, "mallory": mallory}
    keys = {name: tokens.token_create(user=user, name="script")[1] for name, user in users.items()}
    return {
        "jobs": jobs,
        "teams": {"design": design, "marketing": marketing},
        "users": users,
        "keys": keys,
    }


def _body(response) -> str:
    content = b"".join(response.streaming_content) if response.streaming else response.content
    return content.decode(errors="replace")


def _rows():
    return list(Job.objects.order_by("pk").values())


@pytest.mark.usefixtures("fast_passwords")
@pytest.mark.parametrize(("name", "route"), [u for u in every_url() if u[0] not in PUBLIC])
def test_nobody_crosses_a_team_boundary_at_any_url(teams_world, name, route):
    """Each scenario, by GET and by POST (with the visitor's API token on /v1/): refused where
    the URL names what is not theirs, and never a word of what they may not see, nor a change to
    any job."""
    before = _rows()
    for label, scenario in SCENARIOS.items():
        job = teams_world["jobs"][scenario.job]
        team = teams_world["teams"][scenario.team]
        path = concrete(route, job, team)
        if path is None:
            pytest.fail(f"{name} ({route}) has a parameter this test cannot fill: teach it")
        client = Client()
        extra = {}
        if scenario.visitor is not None:
            client.force_login(teams_world["users"][scenario.visitor])
            extra["HTTP_AUTHORIZATION"] = f"Bearer {teams_world['keys'][scenario.visitor]}"
        names_job = str(job.pk) in path or f"/{job.owner_id}/" in path
        names_team = str(team.pk) in path
        in_team = scenario.team in TEAMS_OF.get(scenario.visitor, set())

        for method in ("get", "post"):
            response = getattr(client, method)(path, **extra)
            what = f"{label}: {method.upper()} {path} ({name}): {response.status_code}"
            if name in SHARE_LINKS:
                assert response.status_code == (404 if method == "get" else 405), what
            elif (
                scenario.visitor is None
                or name.startswith(("admin:", "costs:"))
                or (names_job and not (scenario.may_look and method == "get"))
                or (names_team and not in_team)
            ):
                assert refused(response), what
            else:
                # Their own pages, their team's, or a teammate's job to look at.
                assert response.status_code < 500, what
            body = _body(response)
            for secret in NEVER_SHOWN[scenario.visitor]:
                assert secret not in body, f"{what} shows {secret}"
            assert _rows() == before, what
