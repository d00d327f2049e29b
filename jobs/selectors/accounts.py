"""Reads about a person's own account: whether their address is confirmed, and whether log-in
waits for it."""

from django.conf import settings

from jobs.models import AccountEmail


def signup_waits_for_verification(*, user) -> bool:
    """True while SIGNUP_EMAIL_VERIFICATION is on and `user` signed up under it without following
    the link yet. Turning the setting off lets such accounts log in."""
    if not settings.SIGNUP_EMAIL_VERIFICATION:
        return False
    return AccountEmail.objects.filter(user=user, must_verify=True).exists()


def email_is_verified(*, user) -> bool:
    """Whether `user` proved they read their current address by following a link sent to it."""
    record = AccountEmail.objects.filter(user=user).first()
    if record is None:
        return False
    record.user = user
    return record.is_verified
