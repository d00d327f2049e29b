"""The Content-Security-Policy in a real browser: our pages work under it, and it bites."""

import pytest

from jobs.models import Job
from tests.browser.helpers import log_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_every_page_works_under_the_policy(
    live_server, simulator, catalog, page, violations, django_user_model
):
    root = django_user_model.objects.create_superuser("root", password="root-password-1")
    live = Job.objects.create(owner=root, prompt="still waiting", model="ir/test-video")
    log_in(page, live_server, "root", "root-password-1")

    for path in ("/jobs/new/", "/jobs/", f"/jobs/{live.pk}/", "/spending/", "/admin/",
                 "/admin/jobs/job/", f"/admin/jobs/job/{live.pk}/change/", "/admin/costs/",
                 "/admin/costs/reconciliation/", "/admin/auth/user/"):  # fmt: skip
        page.goto(live_server.url + path)
        page.wait_for_load_state("networkidle")
    page.goto(live_server.url + f"/jobs/{live.pk}/")
    with page.expect_response(lambda response: "/status" in response.url, timeout=10_000):
        pass  # the status fragment polls under the policy

    assert violations == []


def test_a_script_injected_into_a_page_does_not_run(
    live_server, simulator, catalog, page, violations, alice
):
    log_in(page, live_server, "alice", "alice-password-1")
    page.goto(live_server.url + "/jobs/new/")

    page.evaluate(
        """() => {
            const script = document.createElement("script");
            script.textContent = "window.injected = true";
            document.body.appendChild(script);
        }"""
    )

    assert page.evaluate("() => window.injected") is None
    assert any("script-src 'self'" in message for message in violations)


def test_an_upload_too_large_for_the_server_shows_a_page_that_says_so(
    live_server, simulator, catalog, page, alice, settings, tmp_path
):
    settings.REQUEST_MAX_BYTES = 1024 * 1024
    huge = tmp_path / "holiday.png"
    huge.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * (3 * 1024 * 1024))
    log_in(page, live_server, "alice", "alice-password-1")
    page.goto(live_server.url + "/jobs/new/")

    page.get_by_label("Prompt").fill("the beach, from this photo")
    page.get_by_label("Image").set_input_files(str(huge))
    page.get_by_role("button", name="Generate").click()

    page.get_by_role("heading", name="That was too large to accept").wait_for()
    assert "You sent 3 MB" in page.content()
    assert not Job.objects.filter(owner=alice).exists()
