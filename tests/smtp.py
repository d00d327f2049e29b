"""A real SMTP server on loopback for the email tests (aiosmtpd), and what it received.

The `smtp_server` fixture (tests/conftest.py) points the studio's email settings at it. The
server can be told to refuse for a while with a temporary (4xx) or permanent (5xx) reply, to
answer slowly, or be stopped and started again on the same port (a server that is down)."""

import asyncio
import email
import threading
import time
from email import policy
from email.message import EmailMessage

from aiosmtpd.controller import Controller


class Mailbox:
    """What the server accepted, and how it should answer the next messages."""

    def __init__(self):
        self.messages: list[EmailMessage] = []
        self.refusals: list[str] = []  # replies to give, one per message, before accepting
        self.delay = 0.0  # seconds to wait before answering DATA
        self.refused = 0
        self.data_started = 0  # DATA commands begun (a sender is mid-send while it waits)
        self._lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):
        self.data_started += 1
        # A client that hangs up while this waits cancels it (aiosmtpd), so nothing is kept:
        # a server that had not said "250 OK" has not taken the message.
        if self.delay:
            await asyncio.sleep(self.delay)
        with self._lock:
            if self.refusals:
                self.refused += 1
                return self.refusals.pop(0)
            message = email.message_from_bytes(envelope.content, policy=policy.default)
            message["X-Envelope-To"] = ", ".join(envelope.rcpt_tos)
            self.messages.append(message)
        return "250 2.0.0 Message accepted for delivery"

    def refuse(self, times: int, reply: str = "451 4.3.0 Mailbox busy, try again later"):
        with self._lock:
            self.refusals = [reply] * times

    def to(self, address: str) -> list[EmailMessage]:
        return [m for m in self.messages if address in m["X-Envelope-To"]]

    def wait_for(self, count: int, timeout: float = 30) -> list[EmailMessage]:
        deadline = time.monotonic() + timeout
        while len(self.messages) < count:
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"expected {count} message(s) within {timeout} s, got {len(self.messages)}"
                )
            time.sleep(0.05)
        return self.messages


class SMTPServer:
    def __init__(self, port: int):
        self.port = port
        self.mailbox = Mailbox()
        self._controller = None

    def start(self) -> "SMTPServer":
        self._controller = Controller(self.mailbox, hostname="127.0.0.1", port=self.port)
        self._controller.start()
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None


def text_of(message: EmailMessage) -> str:
    return message.get_body(preferencelist=("plain",)).get_content()


def html_of(message: EmailMessage) -> str:
    return message.get_body(preferencelist=("html",)).get_content()
