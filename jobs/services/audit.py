"""The audit trail's one writer (AuditEvent), and who is making a change when the code that
makes it is Django's own (the admin's user pages, manage.py createsuperuser)."""

from contextlib import contextmanager
from contextvars import ContextVar

from jobs.models import AuditEvent
from jobs.security import client_ip

# The request being answered, so that a change caught by a signal (services/access.py) names
# who made it and from where. None outside a request: a command, a worker, the shell.
_current_request: ContextVar = ContextVar("audit_current_request", default=None)


def audit_record(
    *,
    action: str,
    summary: str,
    actor=None,
    team=None,
    user=None,
    before=None,
    after=None,
    address: str | None = None,
) -> AuditEvent:
    """Write one event, in the caller's transaction. `summary` names people only as {actor}
    and {user} (text from people goes through audit_quote); `before` and `after` hold what
    changed, never a person's name."""
    return AuditEvent.objects.create(
        actor=actor if actor is not None and actor.is_authenticated else None,
        action=action,
        team=team,
        user=user,
        summary=summary[:300],
        before=before,
        after=after,
        address=address,
    )


def request_actor() -> tuple[object | None, str | None]:
    """Who is making a change and from which address: the signed-in user of the request being
    answered, and its client address (security.client_ip, which respects TRUSTED_PROXY_COUNT);
    (None, None) outside a request."""
    request = _current_request.get()
    if request is None:
        return None, None
    user = getattr(request, "user", None)
    return (user if user is not None and user.is_authenticated else None), client_ip(request)


@contextmanager
def request_in_progress(request):
    token = _current_request.set(request)
    try:
        yield
    finally:
        _current_request.reset(token)


class AuditRequestMiddleware:
    """Makes the request known to request_actor while it is answered. After authentication."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        with request_in_progress(request):
            return self.get_response(request)
