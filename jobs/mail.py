"""The SMTP server: the one module that talks to it (as jobs/imagerouter.py does to the provider).

Only the email task calls `deliver`; everything else queues a message with
services.mail.email_queue. With no EMAIL_HOST set, Django's console backend prints messages to
the worker's output instead (settings.py)."""

import smtplib

from django.conf import settings
from django.core.mail import EmailMultiAlternatives, get_connection


class DeliveryError(Exception):
    """The message was not accepted. `permanent`: the server refused it for good (a 5xx reply to
    the recipient or the data), so trying again cannot help; otherwise try again later (the
    server is down, busy, refused for now with a 4xx, or the log-in failed until an admin fixes
    the settings)."""

    def __init__(self, message: str, *, permanent: bool):
        super().__init__(message)
        self.permanent = permanent


def deliver(*, to: str, subject: str, text: str, html: str, message_id: str) -> None:
    """Hand one message to the SMTP server, or raise DeliveryError saying whether to retry."""
    message = EmailMultiAlternatives(
        subject=subject,
        body=text,
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[to],
        headers={"Message-ID": message_id},
        connection=get_connection(timeout=settings.EMAIL_TIMEOUT),
    )
    if html:
        message.attach_alternative(html, "text/html")
    try:
        message.send()
    except smtplib.SMTPRecipientsRefused as exc:
        codes = [code for code, _ in exc.recipients.values()]
        raise DeliveryError(
            f"the server refused the address: {_reply(*next(iter(exc.recipients.values())))}",
            permanent=all(code >= 500 for code in codes),
        ) from exc
    except smtplib.SMTPResponseException as exc:
        permanent = exc.smtp_code >= 500 and not isinstance(exc, smtplib.SMTPAuthenticationError)
        raise DeliveryError(
            f"the server answered {_reply(exc.smtp_code, exc.smtp_error)}", permanent=permanent
        ) from exc
    except (TimeoutError, smtplib.SMTPException, OSError) as exc:
        raise DeliveryError(
            f"could not reach the SMTP server {settings.EMAIL_HOST}:{settings.EMAIL_PORT} "
            f"({exc.__class__.__name__}: {exc})",
            permanent=False,
        ) from exc


def _reply(code: int, text) -> str:
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return f"{code} {text}".strip()
