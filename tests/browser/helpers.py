"""What the browser tests share besides fixtures: the two screen sizes, where screenshots go,
watching for CSP reports, and logging in through the real form."""

from pathlib import Path

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"

DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}


def watch_for_csp(page, seen: list) -> None:
    """Append to `seen` every console message reporting a Content-Security-Policy block, and
    every uncaught page error."""
    page.on(
        "console",
        lambda message: (
            seen.append(message.text) if "Content Security Policy" in message.text else None
        ),
    )
    page.on("pageerror", lambda error: seen.append(str(error)))


def log_in(page, live_server, username="alice", password="alice-password-1"):  # noqa: S107 - the test user's
    """Log in through the real form, as a person would, and wait for the landing page."""
    page.goto(live_server.url + "/accounts/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url("**/jobs/new/")
