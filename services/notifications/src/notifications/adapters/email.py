"""Sending email over SMTP (stdlib smtplib): the interface, the real sender and a fake.

The notification id is the idempotency key: it becomes the ``Message-ID``, so a message sent
twice after a crash is recognisable as one by the receiving side.
"""

import re
import smtplib
import ssl
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate
from typing import Protocol

from signup_shared.errors import PermanentError, TransientError
from signup_shared.logging import mask

MESSAGE_ID_DOMAIN = "signup.local"
_ADDRESS = re.compile(r"[^\s<>@\"':,;]+@[^\s<>@\"':,;]+")


class EmailTransientError(TransientError):
    """The mail server could not take the message now (4xx, refused connection, timeout)."""


class EmailRejectedError(PermanentError):
    """The mail server refused the message for good (5xx)."""


@dataclass(frozen=True)
class Email:
    idempotency_key: uuid.UUID
    to: str
    subject: str
    text: str


class EmailSender(Protocol):
    def send(self, email: Email) -> str:
        """Hand the email over; returns the provider's message id."""
        ...


def message_id(idempotency_key: uuid.UUID) -> str:
    return f"<{idempotency_key}@{MESSAGE_ID_DOMAIN}>"


def build_message(email: Email, mail_from: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = mail_from
    message["To"] = email.to
    message["Subject"] = email.subject
    message["Date"] = formatdate(usegmt=True)
    message["Message-ID"] = message_id(email.idempotency_key)
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(email.text)
    return message


def _redacted(text: str) -> str:
    """Server replies often quote the recipient; keep addresses out of errors and logs."""
    return _ADDRESS.sub(lambda found: str(mask(found.group())), text)


def _reply_error(code: int, reply: bytes | str) -> TransientError | PermanentError:
    text = reply.decode(errors="replace") if isinstance(reply, bytes) else reply
    detail = f"SMTP {code}: {_redacted(text)}"
    return EmailRejectedError(detail) if 500 <= code < 600 else EmailTransientError(detail)


def classify(exc: Exception) -> TransientError | PermanentError:
    """Map an smtplib/socket failure to retry-later or give-up."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        replies = list(exc.recipients.values())
        if replies and all(500 <= code < 600 for code, _ in replies):
            return _reply_error(replies[0][0], replies[0][1])
        code, reply = replies[0] if replies else (0, b"recipient refused")
        return EmailTransientError(f"SMTP {code}: {_redacted(reply.decode(errors='replace'))}")
    if isinstance(exc, smtplib.SMTPResponseException):
        return _reply_error(exc.smtp_code, exc.smtp_error)
    if isinstance(exc, smtplib.SMTPNotSupportedError):
        return EmailRejectedError(f"SMTP server does not support it: {exc}")
    return EmailTransientError(f"SMTP unreachable: {type(exc).__name__}: {_redacted(str(exc))}")


SmtpFactory = Callable[..., smtplib.SMTP]


class SmtpEmailSender:
    """One SMTP connection per email; a welcome email is rare enough not to pool them."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        mail_from: str,
        starttls: bool = False,
        username: str | None = None,
        password: str | None = None,
        timeout: float = 10.0,
        tls_context: ssl.SSLContext | None = None,
        smtp_factory: SmtpFactory = smtplib.SMTP,
    ) -> None:
        self.host, self.port = host, port
        self.mail_from = mail_from
        self.starttls = starttls
        # Loading the CA certificates is slow: once per sender, not once per email.
        self.tls_context = tls_context or (ssl.create_default_context() if starttls else None)
        self.username, self.password = username, password
        self.timeout = timeout
        self._smtp_factory = smtp_factory

    def send(self, email: Email) -> str:
        message = build_message(email, self.mail_from)
        # smtplib.SMTPException, timeouts and socket errors are all OSErrors.
        try:
            smtp = self._smtp_factory(self.host, self.port, timeout=self.timeout)
        except OSError as exc:
            raise classify(exc) from exc
        try:
            if self.starttls:
                smtp.starttls(context=self.tls_context)
            if self.username:
                smtp.login(self.username, self.password or "")
            smtp.send_message(message)
        except OSError as exc:
            raise classify(exc) from exc
        finally:
            _quit(smtp)
        return str(message["Message-ID"])


def _quit(smtp: smtplib.SMTP) -> None:
    """Say goodbye; once the message was accepted, a failing QUIT must not make it a failure."""
    try:
        smtp.quit()
    except OSError:
        smtp.close()


class FakeEmailSender:
    """Records sent emails; errors queued in ``failures`` are raised by the next sends."""

    def __init__(self, *failures: Exception) -> None:
        self.sent: list[Email] = []
        self.failures = list(failures)

    def send(self, email: Email) -> str:
        if self.failures:
            raise self.failures.pop(0)
        self.sent.append(email)
        return message_id(email.idempotency_key)
