"""Every URL of the project, walked as a stranger: nobody sees or touches another's work."""

import re

import pytest
from django.urls import URLPattern, URLResolver, get_resolver

from jobs.models import Job
from tests.factories import new_job

# Pages anyone may open: signing in and up, the admin's own login machinery, and the health check
# (which says only "ok" or which part is down).
PUBLIC = {"healthz", "login", "logout", "signup", "password_reset", "password_reset_done",
          "password_reset_confirm", "password_reset_complete", "admin:login", "admin:logout",
          "admin:jsi18n", "admin:view_on_site", "admin:password_change", "admin:password_change_done",
          "admin:index", "admin:app_list", "admin:autocomplete", "home", "password_change",
          "password_change_done",
          # The API's OpenAPI description: the same for everyone, nothing of anyone's.
          "api:openapi"}  # fmt: skip
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


def concrete(route: str, job: Job) -> str | None:
    """A real path for `route`, aimed at alice's job and objects. None if it can't be filled."""
    path = route.lstrip("^").rstrip("$").replace("\\Z", "")
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
            assert "alice&#x27;s secret" not in response.content.decode(), what
            assert Job.objects.filter(pk=alices_job.pk).values().get() == before, what
