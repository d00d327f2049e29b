"""Accounts by email against a real SMTP server on loopback (tests/smtp.py) and a real worker:
the password reset, verification at sign-up (on and off), and a confirmed change of address.
Each message arrives once; a link that expired, was used or was damaged is explained."""

import re
import time

import pytest
from django.contrib.auth.models import User
from django.urls import reverse

from jobs.models import AccountEmail, OutgoingEmail
from tests.smtp import html_of, text_of

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("fast_passwords")]

LINK = re.compile(r"https?://[^/\s]+(/\S+)")


def link_in(message) -> str:
    """The path of the one link in a message's text."""
    return LINK.search(text_of(message)).group(1)


def settle(smtp_server, count: int):
    """Wait for `count` messages, then a moment more, so a duplicate would have arrived."""
    messages = smtp_server.mailbox.wait_for(count)
    time.sleep(0.5)
    assert len(smtp_server.mailbox.messages) == count, [m["Subject"] for m in messages]
    return smtp_server.mailbox.messages


def page_text(response) -> str:
    """The page without what differs on every response (CSRF tokens, CSP nonces)."""
    html = response.content.decode()
    html = re.sub(r'"X-CSRFToken": "[^"]+"', "", html)
    html = re.sub(r'name="csrfmiddlewaretoken" value="[^"]+"', "", html)
    return re.sub(r'nonce="[^"]+"', "", html)


@pytest.fixture
def carol(django_user_model):
    return django_user_model.objects.create_user("carol", "carol@example.com", "carol-old-pw-1")


# --- Password reset -----------------------------------------------------------------------------


def test_a_reset_is_one_email_whose_link_sets_a_new_password_once(
    worker, smtp_server, client, carol
):
    response = client.post(reverse("password_reset"), {"email": "CAROL@example.com"}, follow=True)
    assert "If an account uses that address" in response.content.decode()

    [message] = settle(smtp_server, 1)
    assert message["Subject"] == "Reset your VideoStudio password"
    assert message["X-Envelope-To"] == "carol@example.com"
    assert "Hello carol," in text_of(message)
    assert "Choose a new password" in html_of(message)
    path = link_in(message)
    assert text_of(message).count("http://127.0.0.1:8000/accounts/reset/") == 1  # STUDIO_URL

    page = client.get(path, follow=True)
    assert "Choose a new password" in page.content.decode()
    form_url = page.redirect_chain[-1][0]
    done = client.post(
        form_url,
        {"new_password1": "a-brand-new-pass-7", "new_password2": "a-brand-new-pass-7"},
        follow=True,
    )
    assert "Your password is changed" in done.content.decode()
    carol.refresh_from_db()
    assert carol.check_password("a-brand-new-pass-7")
    assert AccountEmail.objects.get(user=carol).is_verified  # the link proved the address

    again = client.get(path, follow=True)
    assert again.status_code == 200
    assert "This reset link does not work" in again.content.decode()
    assert "was already used" in again.content.decode()


def test_an_unknown_address_gets_the_same_answer_and_no_email(worker, smtp_server, client, carol):
    unknown = client.post(reverse("password_reset"), {"email": "nobody@example.com"}, follow=True)
    known = client.post(reverse("password_reset"), {"email": "carol@example.com"}, follow=True)

    assert unknown.redirect_chain == known.redirect_chain
    assert page_text(unknown) == page_text(known)
    [message] = settle(smtp_server, 1)
    assert message["X-Envelope-To"] == "carol@example.com"
    assert not OutgoingEmail.objects.filter(to="nobody@example.com").exists()


def test_resets_for_one_address_are_throttled_with_the_same_answer(
    worker, smtp_server, client, carol, settings
):
    settings.ACCOUNT_EMAILS_PER_HOUR = 2
    answers = set()
    for _ in range(4):
        # A second apart: requests within one second make the same token, so one message.
        time.sleep(1.05)
        response = client.post(
            reverse("password_reset"), {"email": "carol@example.com"}, follow=True
        )
        answers.add(page_text(response))

    assert len(answers) == 1  # nobody can tell the throttle from an unknown address
    settle(smtp_server, 2)
    assert OutgoingEmail.objects.filter(to="carol@example.com").count() == 2


def test_an_expired_reset_link_is_explained(worker, smtp_server, client, carol, settings):
    settings.PASSWORD_RESET_TIMEOUT = 1
    client.post(reverse("password_reset"), {"email": "carol@example.com"})
    [message] = settle(smtp_server, 1)
    time.sleep(2.1)

    page = client.get(link_in(message), follow=True)

    assert page.status_code == 200
    assert "This reset link does not work" in page.content.decode()
    assert "Ask for a new link" in page.content.decode()


def test_a_damaged_reset_link_is_explained(client, db):
    page = client.get("/accounts/reset/Mg/not-a-token/", follow=True)
    assert page.status_code == 200
    assert "This reset link does not work" in page.content.decode()


def test_the_log_in_page_links_to_the_reset(client, db):
    html = client.get(reverse("login")).content.decode()
    assert f'<a href="{reverse("password_reset")}">Forgot your password?</a>' in html


# --- Verification at sign-up --------------------------------------------------------------------


def sign_up(client, username="dave", email="dave@example.com", **extra):
    return client.post(
        reverse("signup"),
        {
            "username": username,
            "email": email,
            "password1": "a-long-passphrase-9",
            "password2": "a-long-passphrase-9",
            **extra,
        },
        follow=True,
    )


def log_in(client, username="dave", password="a-long-passphrase-9"):  # noqa: S107 - sign_up's
    return client.post(reverse("login"), {"username": username, "password": password}, follow=True)


def test_with_verification_off_the_address_is_optional_and_nobody_waits(
    worker, smtp_server, client, settings
):
    settings.SIGNUP_EMAIL_VERIFICATION = False
    assert "Optional" in client.get(reverse("signup")).content.decode()

    response = sign_up(client, email="")

    assert "Signed in as <strong>dave</strong>" in response.content.decode()
    client.logout()
    assert "Signed in as <strong>dave</strong>" in log_in(client).content.decode()
    time.sleep(0.5)
    assert smtp_server.mailbox.messages == []


def test_an_address_is_unique_whatever_its_case(client, carol, settings):
    settings.SIGNUP_EMAIL_VERIFICATION = False
    response = sign_up(client, email="Carol@EXAMPLE.com")

    assert response.status_code == 200
    assert "Another account uses that address." in response.content.decode()
    assert not User.objects.filter(username="dave").exists()


def test_with_verification_on_the_address_is_required(client, settings):
    settings.SIGNUP_EMAIL_VERIFICATION = True
    response = sign_up(client, email="")

    assert "This field is required." in response.content.decode()
    assert not User.objects.filter(username="dave").exists()


def test_with_verification_on_log_in_waits_for_the_link(worker, smtp_server, client, settings):
    settings.SIGNUP_EMAIL_VERIFICATION = True
    response = sign_up(client)
    html = response.content.decode()
    assert "One more step: confirm your address" in html
    assert "dave@example.com" in html
    assert "Signed in as" not in html

    [message] = settle(smtp_server, 1)
    assert message["Subject"] == "Confirm your email address for VideoStudio"
    assert message["X-Envelope-To"] == "dave@example.com"
    assert "Confirm my address" in html_of(message)

    refused = log_in(client).content.decode()
    assert "Confirm your email address first: we sent a link to dave@example.com" in refused
    assert "send the link again" in refused
    assert "Signed in as" not in refused

    path = link_in(message)
    page = client.get(path).content.decode()
    assert "Confirm that <strong>dave@example.com</strong>" in page
    assert AccountEmail.objects.get(user__username="dave").must_verify  # GET changes nothing

    confirmed = client.post(path, follow=True).content.decode()
    assert "Your email address is confirmed. You can log in now." in confirmed
    assert "Signed in as <strong>dave</strong>" in log_in(client).content.decode()

    client.logout()
    again = client.post(path, follow=True).content.decode()
    assert "dave@example.com was already confirmed" in again
    assert len(smtp_server.mailbox.messages) == 1


def test_the_log_in_page_sends_the_link_again_only_after_the_password(
    worker, smtp_server, client, settings
):
    settings.SIGNUP_EMAIL_VERIFICATION = True
    sign_up(client)
    settle(smtp_server, 1)

    wrong = log_in(client, password="not-the-password").content.decode()
    assert "send the link again" not in wrong and "dave@example.com" not in wrong

    time.sleep(1.05)  # a new link is a new token; tokens carry the time to the second
    refused = log_in(client).content.decode()
    resend = re.search(r'name="resend" value="([^"]+)"', refused).group(1)
    answer = client.post(reverse("signup_verify_resend"), {"resend": resend}, follow=True)
    assert "a new link is on its way" in answer.content.decode()
    second = settle(smtp_server, 2)[1]
    assert second["X-Envelope-To"] == "dave@example.com"

    forged = client.post(reverse("signup_verify_resend"), {"resend": "7"}, follow=True)
    assert forged.status_code == 200
    assert "a new link is on its way" in forged.content.decode()  # the same answer, no email
    time.sleep(0.5)
    assert len(smtp_server.mailbox.messages) == 2

    client.post(link_in(second))  # the newer link works
    assert "Signed in as <strong>dave</strong>" in log_in(client).content.decode()


def test_an_expired_or_damaged_verification_link_is_explained(
    worker, smtp_server, client, settings
):
    settings.SIGNUP_EMAIL_VERIFICATION = True
    settings.EMAIL_LINK_MAX_AGE = 1
    sign_up(client)
    path = link_in(settle(smtp_server, 1)[0])
    time.sleep(2.1)

    expired = client.post(path)
    assert expired.status_code == 200
    assert "This link has expired" in expired.content.decode()
    assert AccountEmail.objects.get(user__username="dave").must_verify

    damaged = client.get(path[:-8] + "tampered/")
    assert damaged.status_code == 200
    assert "This link is not complete or not one of ours" in damaged.content.decode()


def test_a_reset_link_followed_confirms_a_waiting_address_too(
    worker, smtp_server, client, settings
):
    settings.SIGNUP_EMAIL_VERIFICATION = True
    sign_up(client, email="Dave@EXAMPLE.COM")
    settle(smtp_server, 1)
    assert User.objects.get(username="dave").email == "Dave@example.com"  # domain lower-cased

    time.sleep(1.05)
    client.post(reverse("password_reset"), {"email": "dave@example.com"})
    reset = settle(smtp_server, 2)[1]
    assert reset["Subject"] == "Reset your VideoStudio password"
    form_url = client.get(link_in(reset), follow=True).redirect_chain[-1][0]
    client.post(form_url, {"new_password1": "another-pass-42", "new_password2": "another-pass-42"})

    assert (
        "Signed in as <strong>dave</strong>"
        in log_in(client, password="another-pass-42").content.decode()
    )


def test_turning_verification_off_lets_waiting_accounts_log_in(
    worker, smtp_server, client, settings
):
    settings.SIGNUP_EMAIL_VERIFICATION = True
    sign_up(client)
    settings.SIGNUP_EMAIL_VERIFICATION = False
    assert "Signed in as <strong>dave</strong>" in log_in(client).content.decode()


# --- Changing the address -----------------------------------------------------------------------


@pytest.fixture
def carol_client(client, carol):
    client.force_login(carol)
    return client


def test_a_new_address_applies_only_after_its_link_and_the_old_one_is_told(
    worker, smtp_server, carol_client, carol
):
    page = carol_client.get(reverse("account_email")).content.decode()
    assert "Your address is <strong>carol@example.com</strong>" in page
    assert f'href="{reverse("account_email")}">Account</a>' in page

    response = carol_client.post(
        reverse("account_email"),
        {"email": "carol@new.example.org", "password": "carol-old-pw-1"},
        follow=True,
    )
    assert "We sent a link to carol@new.example.org" in response.content.decode()
    [confirm] = settle(smtp_server, 1)
    assert confirm["X-Envelope-To"] == "carol@new.example.org"
    assert confirm["Subject"] == "Confirm your new email address for VideoStudio"
    carol.refresh_from_db()
    assert carol.email == "carol@example.com"  # nothing changes before the link

    path = link_in(confirm)
    shown = carol_client.get(path).content.decode()
    assert "from <strong>carol@example.com</strong> to <strong>carol@new.example.org</strong>" in (
        shown
    )
    carol.refresh_from_db()
    assert carol.email == "carol@example.com"

    done = carol_client.post(path).content.decode()
    assert "Your address is now <strong>carol@new.example.org</strong>" in done
    carol.refresh_from_db()
    assert carol.email == "carol@new.example.org"

    notice = settle(smtp_server, 2)[1]
    assert notice["X-Envelope-To"] == "carol@example.com"
    assert notice["Subject"] == "Your VideoStudio email address was changed"
    assert "from carol@example.com to carol@new.example.org" in " ".join(text_of(notice).split())
    assert "tell your studio's admin at once" in html_of(notice)

    used = carol_client.post(path)
    assert used.status_code == 200
    assert "This link was already used: your address is carol@new.example.org." in (
        used.content.decode()
    )
    assert "(confirmed)" in carol_client.get(reverse("account_email")).content.decode()
    time.sleep(0.5)
    assert len(smtp_server.mailbox.messages) == 2


def test_changing_the_address_needs_the_password_and_a_free_new_address(
    carol_client, carol, django_user_model
):
    django_user_model.objects.create_user("erin", "erin@example.com", "pw")
    cases = {
        ("carol@new.example.org", "wrong"): "That is not your password.",
        ("ERIN@example.com", "carol-old-pw-1"): "Another account uses that address.",
        ("Carol@Example.com", "carol-old-pw-1"): "That is already your address.",
        ("not an address", "carol-old-pw-1"): "Enter a valid email address.",
    }
    for (email, password), error in cases.items():
        response = carol_client.post(
            reverse("account_email"), {"email": email, "password": password}
        )
        assert response.status_code == 200
        assert error in response.content.decode()
    assert not OutgoingEmail.objects.exists()


def test_a_change_link_overtaken_by_another_change_does_nothing(
    worker, smtp_server, carol_client, carol
):
    for address in ("first@example.org", "second@example.org"):
        carol_client.post(
            reverse("account_email"), {"email": address, "password": "carol-old-pw-1"}
        )
    first, second = sorted(settle(smtp_server, 2), key=lambda m: m["X-Envelope-To"])
    carol_client.post(link_in(second))
    carol.refresh_from_db()
    assert carol.email == "second@example.org"

    late = carol_client.post(link_in(first))

    assert late.status_code == 200
    assert "This link was overtaken: your address changed after it was sent." in (
        late.content.decode()
    )
    carol.refresh_from_db()
    assert carol.email == "second@example.org"


def test_a_change_link_works_without_being_logged_in_and_expires(
    worker, smtp_server, carol_client, carol, client, settings
):
    carol_client.post(
        reverse("account_email"), {"email": "carol@new.example.org", "password": "carol-old-pw-1"}
    )
    path = link_in(settle(smtp_server, 1)[0])
    client.logout()
    settings.EMAIL_LINK_MAX_AGE = 1
    time.sleep(2.1)

    expired = client.post(path)

    assert expired.status_code == 200
    assert "This link has expired: links work for 1 minute." in expired.content.decode()
    carol.refresh_from_db()
    assert carol.email == "carol@example.com"


def test_the_account_page_needs_a_log_in(client, db):
    response = client.get(reverse("account_email"))
    assert response.status_code == 302
    assert response.url.startswith(reverse("login"))


def test_guessing_the_password_on_the_account_page_is_paused_as_at_log_in(carol_client, settings):
    settings.AXES_FAILURE_LIMIT = 3
    for _ in range(3):
        carol_client.post(
            reverse("account_email"), {"email": "carol@new.example.org", "password": "guess"}
        )

    response = carol_client.post(
        reverse("account_email"), {"email": "carol@new.example.org", "password": "carol-old-pw-1"}
    )

    assert "Too many failed log-ins" in response.content.decode()
    assert not OutgoingEmail.objects.exists()
