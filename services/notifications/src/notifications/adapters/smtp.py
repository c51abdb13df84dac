"""Sending email over SMTP (stdlib smtplib): the interface, the errors and the real sender.

Every send has a total deadline (``deadline`` seconds for connecting, every command and the
reply to each, however slowly the bytes trickle in): ``DeadlineSMTP`` sets the time left as the
socket timeout before every read and write (``smtp_deadline``), so a server that drips one byte
every few seconds is given up on when the deadline passes, as a transient failure the caller
retries later.
"""

import collections
import contextlib
import re
import smtplib
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import NoReturn, Protocol

from notifications.adapters.email_message import Email, SmtpEnvelope, envelope, message_id
from notifications.adapters.smtp_deadline import DeadlineExceededError as DeadlineExceededError
from notifications.adapters.smtp_deadline import DeadlineSMTP
from signup_shared.errors import PermanentError, TransientError
from signup_shared.logging import mask

_ADDRESS = re.compile(r"[^\s<>@\"':,;]+@[^\s<>@\"':,;]+")


class EmailTransientError(TransientError):
    """The mail server could not take the message now (4xx, refused connection, timeout)."""


class EmailRejectedError(PermanentError):
    """The mail server refused the message for good (5xx)."""


class EmailSender(Protocol):
    def send(self, email: Email) -> str:
        """Hand the email over; returns the provider's message id. Safe from several threads."""
        ...

    def close(self) -> None:
        """Let go of every connection."""
        ...


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
"""Called as ``factory(host, port, timeout=..., deadline=...)``; ``DeadlineSMTP`` by default."""


@dataclass
class _Session:
    smtp: smtplib.SMTP
    last_used: float


class SmtpEmailSender:
    """Sends over at most ``pool_size`` kept SMTP sessions, shared safely by several threads.

    Each send ends within ``deadline`` seconds (connecting included). A session idle for more
    than ``check_after`` seconds answers a NOOP before it is used again. A session found dead,
    or one that fails before DATA, is replaced once and the email sent on the new one (the
    server cannot have it). A failure during or after DATA is not retried here: the caller
    retries later with the same Message-ID, which the receiving side deduplicates.
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
        deadline: float = 30.0,
        tls_context: ssl.SSLContext | None = None,
        smtp_factory: SmtpFactory = DeadlineSMTP,
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
        self.deadline = deadline
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
            deadline = time.monotonic() + self.deadline
            session = self._checkout(deadline)
            try:
                transmit(session.smtp, smtp_envelope)
            except NotSentError:  # the server cannot have it: once more, on a new session
                _close(session.smtp)
                session = self._connect(deadline)
                _transmit_or_close(session.smtp, smtp_envelope, deadline)
            except BaseException as exc:
                _close(session.smtp)
                _raise_classified(exc, deadline)
            self._checkin(session)
        return message_id(email.idempotency_key)

    def close(self) -> None:
        """Say goodbye on every idle session; sessions in use close when their send ends."""
        with self._lock:
            self._closed = True
            idle, self._idle = list(self._idle), collections.deque()
        for session in idle:
            _quit(session.smtp)

    def _checkout(self, deadline: float) -> _Session:
        """The most recently used idle session that still answers, else a new one."""
        while True:
            with self._lock:
                session = self._idle.pop() if self._idle else None
            if session is None:
                return self._connect(deadline)
            if isinstance(session.smtp, DeadlineSMTP):
                session.smtp.deadline = deadline
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

    def _connect(self, deadline: float) -> _Session:
        try:
            smtp = self._smtp_factory(self.host, self.port, timeout=self.timeout, deadline=deadline)
        except OSError as exc:
            _raise_classified(exc, deadline)
        try:
            if self.starttls:
                smtp.starttls(context=self.tls_context)
            if self.username:
                smtp.login(self.username, self.password or "")
        except OSError as exc:
            _close(smtp)
            _raise_classified(exc, deadline)
        return _Session(smtp, self._clock())


def _transmit_or_close(smtp: smtplib.SMTP, envelope: SmtpEnvelope, deadline: float) -> None:
    try:
        transmit(smtp, envelope)
    except BaseException as exc:
        _close(smtp)
        _raise_classified(exc, deadline)


def _raise_classified(exc: BaseException, deadline: float) -> NoReturn:
    """smtplib errors, timeouts and socket errors (all OSErrors) as retry-later or give-up."""
    cause = exc.__cause__ if isinstance(exc, NotSentError) else exc
    if isinstance(cause, OSError) and time.monotonic() >= deadline:
        # smtplib reports a timed-out read as a disconnection: the deadline is the reason.
        raise EmailTransientError(f"SMTP deadline passed: {_redacted(str(cause))}") from cause
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
    """Say goodbye; a failing QUIT only means the server left first (bounded by a short
    deadline of its own)."""
    if isinstance(smtp, DeadlineSMTP):
        smtp.deadline = time.monotonic() + min(5.0, smtp.timeout)
    try:
        smtp.quit()
    except OSError:
        _close(smtp)
