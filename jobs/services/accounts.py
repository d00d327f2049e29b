"""Accounts by email: the password reset message, verification at sign-up, and confirmed changes
of address. Every message goes through the outbox (services/mail.py); every link carries a
signed, expiring token that works once.

Links are signed with the secret key (django.core.signing) and carry what they are about: the
user, the address, and for a change a digest of the address it replaces. Following a link checks
the signature and its age, then applies the change with a conditional UPDATE naming the state
it expects, so a link that was used (or overtaken by another change) does nothing and says so.
"""

import hashlib
import logging
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core import signing
from django.core.cache import cache
from django.db import transaction
from django.urls import reverse
from django.utils import timezone
from django.utils.crypto import salted_hmac

from jobs.models import AccountEmail

from .mail import email_queue

logger = logging.getLogger(__name__)

VERIFY_SALT = "videostudio.accounts.signup-verify"
CHANGE_SALT = "videostudio.accounts.email-change"
RESEND_SALT = "videostudio.accounts.resend-verify"
# How long the "send the link again" button on the log-in page works after the password was
# checked.
RESEND_MAX_AGE = 15 * 60
THROTTLE_WINDOW = 3600


class LinkError(Exception):
    """A link from an email that cannot be used. The message is for the person who followed it."""


class EmailTakenError(Exception):
    """Another account already uses the address."""


# --- Throttle -----------------------------------------------------------------------------------


def account_email_allowed(*, address: str) -> bool:
    """Count one more link for `address` in its hour; False past ACCOUNT_EMAILS_PER_HOUR.

    1. Create the address's counter if it is new, for one hour from this first request.
    2. Increment it atomically (the cache is Redis, shared by every web process).
    3. Compare. The counter is keyed by a digest, so the cache never holds the address.
    """
    limit = settings.ACCOUNT_EMAILS_PER_HOUR
    if limit <= 0:
        return True
    digest = hashlib.sha256(address.strip().lower().encode()).hexdigest()[:32]
    key = f"account-emails:{digest}"
    cache.add(key, 0, timeout=THROTTLE_WINDOW)
    return cache.incr(key) <= limit


# --- Password reset -----------------------------------------------------------------------------


def password_reset_email_queue(*, user, uid: str, token: str) -> None:
    """Queue the reset link for `user` (PasswordResetForm found them by address). One message
    per token: the token changes with the time it was made, so each request is its own event."""
    path = reverse("password_reset_confirm", kwargs={"uidb64": uid, "token": token})
    email_queue(
        key=f"password-reset:{user.pk}:{token}",
        to=user.email,
        subject="Reset your VideoStudio password",
        template="password_reset",
        context={"person": user, "path": path, "lifetime": _link_lifetime()},
        user=user,
    )


def account_email_verified(*, user) -> None:
    """Record that `user` proved they read their current address (they followed a reset or
    verification link sent to it): it is confirmed, and log-in no longer waits for it."""
    AccountEmail.objects.update_or_create(
        user=user,
        defaults={
            "verified_email": user.email,
            "verified_at": timezone.now(),
            "must_verify": False,
        },
    )


# --- Verification at sign-up --------------------------------------------------------------------


def signup_verification_start(*, user) -> None:
    """A new account waits for its address: record that, and send the link.

    1. Mark the account as waiting (log-in refuses it until the link is followed).
    2. Queue the link, in the sign-up's transaction, so the account and its message commit together.
    """
    AccountEmail.objects.update_or_create(user=user, defaults={"must_verify": True})
    account_email_allowed(address=user.email)  # counts toward the address's hour
    _verification_queue(user=user)


def signup_verification_resend(*, resend_token: str) -> bool:
    """The log-in page's "send the link again", for someone whose password was just checked
    (the token says who, and is good for RESEND_MAX_AGE). False if the address had its share of
    links this hour or the token is no good; the page answers the same either way."""
    try:
        user_id = signing.loads(resend_token, salt=RESEND_SALT, max_age=RESEND_MAX_AGE)
    except signing.BadSignature:
        return False
    user = get_user_model().objects.filter(pk=user_id, is_active=True).first()
    if user is None or not user.email:
        return False
    if not AccountEmail.objects.filter(user=user, must_verify=True).exists():
        return False
    if not account_email_allowed(address=user.email):
        logger.info("verification link for user %s not sent: its hourly share is used", user.pk)
        return False
    _verification_queue(user=user)
    return True


def signup_resend_token(*, user) -> str:
    return signing.dumps(user.pk, salt=RESEND_SALT)


@dataclass(frozen=True)
class Verification:
    user: object
    email: str
    already_done: bool


def signup_verification_read(*, token: str) -> Verification:
    """What a verification link is about, or LinkError saying why it cannot be used."""
    payload = _load(token, salt=VERIFY_SALT)
    user = get_user_model().objects.filter(pk=payload.get("u")).first()
    if user is None or (user.email or "").lower() != str(payload.get("e", "")).lower():
        raise LinkError(
            "This link is for an address the account no longer has. Log in, or ask for a new link."
        )
    waiting = AccountEmail.objects.filter(user=user, must_verify=True).exists()
    return Verification(user=user, email=user.email, already_done=not waiting)


def signup_verify(*, token: str) -> Verification:
    """Follow a verification link.

    1. Read the link (signature, age, the account and its address).
    2. One conditional UPDATE clears `must_verify` only if the account still waits, so a link
       followed twice (or two tabs at once) confirms once; the second says it was already done.
    """
    verification = signup_verification_read(token=token)
    changed = AccountEmail.objects.filter(user=verification.user, must_verify=True).update(
        must_verify=False, verified_email=verification.email, verified_at=timezone.now()
    )
    return Verification(user=verification.user, email=verification.email, already_done=not changed)


def _verification_queue(*, user) -> None:
    token = signing.dumps({"u": user.pk, "e": user.email}, salt=VERIFY_SALT, compress=True)
    email_queue(
        key=f"signup-verify:{user.pk}:{_digest(token)}",
        to=user.email,
        subject="Confirm your email address for VideoStudio",
        template="signup_verify",
        context={
            "person": user,
            "path": reverse("signup_verify", args=[token]),
            "lifetime": _link_lifetime(),
        },
        user=user,
    )


# --- Changing the address -----------------------------------------------------------------------


def email_in_use(*, address: str, exclude_user=None) -> bool:
    users = get_user_model().objects.filter(email__iexact=address.strip())
    if exclude_user is not None:
        users = users.exclude(pk=exclude_user.pk)
    return users.exists()


def email_change_request(*, user, new_email: str) -> bool:
    """Send a confirmation link to the NEW address; nothing changes until it is followed.
    False if that address had its share of links this hour (nothing is sent)."""
    if not account_email_allowed(address=new_email):
        return False
    token = signing.dumps(
        {"u": user.pk, "e": new_email, "o": _address_digest(user.email)},
        salt=CHANGE_SALT,
        compress=True,
    )
    email_queue(
        key=f"email-change:{user.pk}:{_digest(token)}",
        to=new_email,
        subject="Confirm your new email address for VideoStudio",
        template="email_change_confirm",
        context={
            "person": user,
            "old_email": user.email,
            "new_email": new_email,
            "path": reverse("account_email_confirm", args=[token]),
            "lifetime": _link_lifetime(),
        },
        user=user,
    )
    return True


@dataclass(frozen=True)
class EmailChange:
    user: object
    old_email: str
    new_email: str


def email_change_read(*, token: str) -> EmailChange:
    """What an address-change link would do, or LinkError saying why it cannot be used."""
    payload = _load(token, salt=CHANGE_SALT)
    user = get_user_model().objects.filter(pk=payload.get("u"), is_active=True).first()
    new_email = str(payload.get("e", ""))
    if user is None:
        raise LinkError("This link is for an account that no longer exists.")
    if (user.email or "").lower() == new_email.lower():
        raise LinkError(f"This link was already used: your address is {new_email}.")
    if payload.get("o") != _address_digest(user.email):
        raise LinkError(
            "This link was overtaken: your address changed after it was sent. "
            "Ask for a new link on your account page."
        )
    if email_in_use(address=new_email, exclude_user=user):
        raise LinkError(f"{new_email} is now used by another account, so it cannot be yours too.")
    return EmailChange(user=user, old_email=user.email, new_email=new_email)


def email_change_confirm(*, token: str) -> EmailChange:
    """Follow the link sent to the new address.

    1. Read the link (signature, age, the account, the address it replaces, the new one free).
    2. One conditional UPDATE sets the new address only if the account still has the old one,
       so a link works once and a link overtaken by another change does nothing.
    3. Record the new address as confirmed (the link proved it), and queue a notice to the OLD
       address, in the same transaction: whoever reads it learns of the change even if it was
       not them.
    """
    change = email_change_read(token=token)
    User = get_user_model()
    with transaction.atomic():
        changed = User.objects.filter(pk=change.user.pk, email=change.old_email).update(
            email=change.new_email
        )
        if not changed:
            raise LinkError("This link was already used, or your address changed meanwhile.")
        change.user.email = change.new_email
        account_email_verified(user=change.user)
        email_queue(
            key=f"email-changed:{change.user.pk}:{_digest(token)}",
            to=change.old_email,
            subject="Your VideoStudio email address was changed",
            template="email_changed_notice",
            context={
                "person": change.user,
                "old_email": change.old_email,
                "new_email": change.new_email,
            },
            user=change.user,
        )
    logger.info("user %s changed their email address", change.user.pk)
    return change


# --- Helpers ------------------------------------------------------------------------------------


def _load(token: str, *, salt: str) -> dict:
    try:
        payload = signing.loads(token, salt=salt, max_age=settings.EMAIL_LINK_MAX_AGE)
    except signing.SignatureExpired:
        raise LinkError(
            f"This link has expired: links work for {_link_lifetime()}. Ask for a new one."
        ) from None
    except signing.BadSignature:
        raise LinkError(
            "This link is not complete or not one of ours. Copy the whole link from the email, "
            "or ask for a new one."
        ) from None
    if not isinstance(payload, dict):
        raise LinkError("This link is not one of ours. Ask for a new one.")
    return payload


def _address_digest(address: str) -> str:
    """The address a change replaces, as a digest: the token travels in an email to the new
    address, and its payload is readable (signed, not encrypted)."""
    return salted_hmac(CHANGE_SALT, (address or "").lower()).hexdigest()[:20]


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()[:24]


def _link_lifetime() -> str:
    """How long links work, in words: "24 hours", "1 hour" (or minutes, for short test links)."""
    seconds = settings.EMAIL_LINK_MAX_AGE
    if seconds < 3600:
        minutes = max(1, seconds // 60)
        return f"{minutes} minute{'s' if minutes != 1 else ''}"
    hours = round(seconds / 3600)
    return f"{hours} hour{'s' if hours != 1 else ''}"
