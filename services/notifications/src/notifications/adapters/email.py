"""Sending email over SMTP (stdlib smtplib): the interface, the real sender and a fake.

The notification id is the idempotency key: it becomes the ``Message-ID``, so a message sent
twice after a crash is recognisable as one by the receiving side.
"""

import collections
import contextlib
import functools
import io
import re
import smtplib
import ssl
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.generator import BytesGenerator
from email.header import Header
from email.message import EmailMessage
from email.policy import SMTPUTF8
from email.utils import format_datetime, formataddr, formatdate, parseaddr
from typing import NoReturn, Protocol

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
        """Hand the email over; returns the provider's message id. Safe from several threads."""
        ...

    def close(self) -> None:
        """Let go of every connection."""
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


@dataclass(frozen=True)
class SmtpEnvelope:
    """What one SMTP transaction carries: computed once per email, whatever the session."""

    sender: str
    recipient: str
    content: bytes
    international: bool

    @classmethod
    def of(cls, message: EmailMessage) -> "SmtpEnvelope":
        sender, recipient = parseaddr(str(message["From"]))[1], str(message["To"])
        international = not (sender + recipient).isascii()
        # As ``send_message`` does: UTF-8 headers only for an international address.
        policy = SMTPUTF8 if international else None
        with io.BytesIO() as flat:
            BytesGenerator(flat, policy=policy).flatten(message, linesep="\r\n")
            return cls(sender, recipient, flat.getvalue(), international)


# Hand-built messages -------------------------------------------------------------------------
# ``EmailMessage`` parses and refolds every header through ``email.headerregistry`` (about 0.9 ms
# per welcome email, the largest cost of this service in a profile). The welcome email is one
# plain-text part with a handful of headers, so it is written here directly, byte for byte what
# the receiving side would parse back from the ``EmailMessage`` version: the same headers, non-ASCII
# headers as RFC 2047 encoded words (raw UTF-8 only for an SMTPUTF8 message, as that policy
# writes them), a UTF-8 body as 7bit or 8bit. A body with a line too long for SMTP goes the slow,
# general way.
MAX_LINE_OCTETS = 998
_FOLD_AT = 78


def _one_line(value: str) -> str:
    """Header values never carry a line break (no header injection through a user's name)."""
    return " ".join(value.splitlines()) if ("\n" in value or "\r" in value) else value


def _header_text(name: str, value: str, international: bool) -> str:
    """``Name: value`` unfolded if short and ASCII (or UTF-8 allowed), else RFC 2047 words."""
    line = f"{name}: {value}"
    if (international or value.isascii()) and len(line) <= _FOLD_AT:
        return line
    if international:
        return line  # SMTPUTF8: raw UTF-8; long single-line headers stay well under 998 octets
    charset = "us-ascii" if value.isascii() else "utf-8"
    encoded = Header(value, charset, header_name=name).encode(maxlinelen=_FOLD_AT, linesep="\r\n")
    return f"{name}: {encoded}"


@functools.lru_cache(maxsize=16)
def _sender(mail_from: str) -> tuple[str, bytes, bytes]:
    """The envelope sender and the ``From`` line (ASCII-only, and for SMTPUTF8): once per sender."""
    name, address = parseaddr(mail_from)
    if name and not name.isascii():
        ascii_from = f"From: {formataddr((name, address), charset='utf-8')}"
    else:
        ascii_from = _header_text("From", _one_line(mail_from), international=False)
    utf8_from = _header_text("From", _one_line(mail_from), international=True)
    return address, ascii_from.encode("ascii"), utf8_from.encode()


def _body(text: str) -> tuple[bytes, str] | None:
    """The body with CRLF line ends and its transfer encoding; None if a line is too long."""
    body = text.encode()
    lines = body.splitlines()
    if any(len(line) > MAX_LINE_OCTETS for line in lines):
        return None
    return b"".join(line + b"\r\n" for line in lines), ("7bit" if body.isascii() else "8bit")


def envelope(email: Email, mail_from: str, now: datetime | None = None) -> "SmtpEnvelope":
    """The SMTP transaction of ``email``: sender, recipient, and the RFC 5322 message bytes."""
    sender, ascii_from, utf8_from = _sender(mail_from)
    recipient = _one_line(email.to)
    international = not (sender + recipient).isascii()
    body = _body(email.text)
    if body is None:
        return SmtpEnvelope.of(build_message(email, mail_from))
    content, transfer_encoding = body
    date = format_datetime(now or datetime.now(UTC))
    head = "\r\n".join(
        (
            _header_text("To", recipient, international),
            _header_text("Subject", _one_line(email.subject), international),
            f"Date: {date}",
            f"Message-ID: {message_id(email.idempotency_key)}",
            "Auto-Submitted: auto-generated",
            'Content-Type: text/plain; charset="utf-8"',
            f"Content-Transfer-Encoding: {transfer_encoding}",
            "MIME-Version: 1.0",
        )
    )
    from_line = utf8_from if international else ascii_from
    head_bytes = head.encode() if international else head.encode("ascii")
    return SmtpEnvelope(
        sender,
        recipient,
        b"".join((from_line, b"\r\n", head_bytes, b"\r\n\r\n", content)),
        international,
    )


class NotSentError(Exception):
    """The session failed before DATA: the server certainly does not have the message."""


def transmit(smtp: smtplib.SMTP, envelope: SmtpEnvelope) -> None:
    """One mail transaction with smtplib's public MAIL, RCPT and DATA commands.

    Unlike ``send_message`` it tells a failure before DATA (raised as ``NotSentError``: sending
    again cannot duplicate) from one during or after it (the server may have the message).
    """
    try:
        smtp.ehlo_or_helo_if_needed()
        options: list[str] = []
        if envelope.international:
            if not smtp.has_extn("smtputf8"):
                raise smtplib.SMTPNotSupportedError(
                    "the address needs SMTPUTF8, which the server does not offer"
                )
            options += ["SMTPUTF8", "BODY=8BITMIME"]
        if smtp.does_esmtp and smtp.has_extn("size"):
            options.append(f"SIZE={len(envelope.content)}")
        code, reply = smtp.mail(envelope.sender, options)
        if code != 250:
            raise smtplib.SMTPSenderRefused(code, reply, envelope.sender)
        code, reply = smtp.rcpt(envelope.recipient)
        if code not in (250, 251):
            raise smtplib.SMTPRecipientsRefused({envelope.recipient: (code, reply)})
    except (smtplib.SMTPServerDisconnected, ConnectionError) as exc:
        raise NotSentError from exc
    code, reply = smtp.data(envelope.content)
    if code != 250:
        raise smtplib.SMTPDataError(code, reply)


SmtpFactory = Callable[..., smtplib.SMTP]


@dataclass
class _Session:
    smtp: smtplib.SMTP
    last_used: float


class SmtpEmailSender:
    """Sends over at most ``pool_size`` kept SMTP sessions, shared safely by several threads.

    A session idle for more than ``check_after`` seconds answers a NOOP before it is used again.
    A session found dead, or one that fails before DATA, is replaced once and the email sent on
    the new one (the server cannot have it). A failure during or after DATA is not retried here:
    the caller retries later with the same Message-ID, which the receiving side deduplicates.
    """

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
        pool_size: int = 4,
        check_after: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.host, self.port = host, port
        self.mail_from = mail_from
        self.starttls = starttls
        # Loading the CA certificates is slow: once per sender, not once per connection.
        self.tls_context = tls_context or (ssl.create_default_context() if starttls else None)
        self.username, self.password = username, password
        self.timeout = timeout
        self.check_after = check_after
        self._smtp_factory = smtp_factory
        self._clock = clock
        self._slots = threading.BoundedSemaphore(max(1, pool_size))
        self._lock = threading.Lock()
        self._idle: collections.deque[_Session] = collections.deque()
        self._closed = False

    def send(self, email: Email) -> str:
        smtp_envelope = envelope(email, self.mail_from)
        with self._slots:
            session = self._checkout()
            try:
                transmit(session.smtp, smtp_envelope)
            except NotSentError:  # the server cannot have it: once more, on a new session
                _close(session.smtp)
                session = self._connect()
                _transmit_or_close(session.smtp, smtp_envelope)
            except BaseException as exc:
                _close(session.smtp)
                _raise_classified(exc)
            self._checkin(session)
        return message_id(email.idempotency_key)

    def close(self) -> None:
        """Say goodbye on every idle session; sessions in use close when their send ends."""
        with self._lock:
            self._closed = True
            idle, self._idle = list(self._idle), collections.deque()
        for session in idle:
            _quit(session.smtp)

    def _checkout(self) -> _Session:
        """The most recently used idle session that still answers, else a new one."""
        while True:
            with self._lock:
                session = self._idle.pop() if self._idle else None
            if session is None:
                return self._connect()
            if self._clock() - session.last_used <= self.check_after or _answers(session.smtp):
                return session
            _close(session.smtp)

    def _checkin(self, session: _Session) -> None:
        session.last_used = self._clock()
        with self._lock:
            if not self._closed:
                self._idle.append(session)
                return
        _quit(session.smtp)

    def _connect(self) -> _Session:
        try:
            smtp = self._smtp_factory(self.host, self.port, timeout=self.timeout)
        except OSError as exc:
            raise classify(exc) from exc
        try:
            if self.starttls:
                smtp.starttls(context=self.tls_context)
            if self.username:
                smtp.login(self.username, self.password or "")
        except OSError as exc:
            _close(smtp)
            raise classify(exc) from exc
        return _Session(smtp, self._clock())


def _transmit_or_close(smtp: smtplib.SMTP, envelope: SmtpEnvelope) -> None:
    try:
        transmit(smtp, envelope)
    except BaseException as exc:
        _close(smtp)
        _raise_classified(exc)


def _raise_classified(exc: BaseException) -> NoReturn:
    """smtplib errors, timeouts and socket errors (all OSErrors) as retry-later or give-up."""
    cause = exc.__cause__ if isinstance(exc, NotSentError) else exc
    if isinstance(cause, OSError):
        raise classify(cause) from cause
    raise exc


def _answers(smtp: smtplib.SMTP) -> bool:
    try:
        code, _ = smtp.noop()
    except OSError:
        return False
    return code == 250


def _close(smtp: smtplib.SMTP) -> None:
    """Drop a session that failed or is no longer trusted (no QUIT: it may hang)."""
    with contextlib.suppress(OSError):
        smtp.close()


def _quit(smtp: smtplib.SMTP) -> None:
    """Say goodbye; a failing QUIT only means the server left first."""
    try:
        smtp.quit()
    except OSError:
        _close(smtp)


class FakeEmailSender:
    """Records sent emails; errors queued in ``failures`` are raised by the next sends."""

    def __init__(self, *failures: Exception) -> None:
        self.sent: list[Email] = []
        self.failures = list(failures)
        self.closed = False

    def send(self, email: Email) -> str:
        if self.failures:
            raise self.failures.pop(0)
        self.sent.append(email)
        return message_id(email.idempotency_key)

    def close(self) -> None:
        self.closed = True
