"""The welcome email as RFC 5322 bytes, written with the standard library's ``email`` package.

With an HTML part it is ``multipart/alternative`` (plain text first, then HTML: a client shows
the last part it can), each part declaring ``charset="utf-8"``. The boundary is derived from
the notification id, so a message is the same bytes whenever it is built (and its snapshot
stable); a body that happens to contain it takes the general path with a random boundary.
No ``List-Unsubscribe``: a welcome is a transactional message sent once per signup, not a
list anyone subscribes to (RFC 2369 headers belong on newsletters and digests).

Headers are encoded by ``email.policy.SMTP`` (RFC 2047 words for non-ASCII text) or, for an
address that needs it, ``email.policy.SMTPUTF8``. What does not depend on the recipient (the
sender, the fixed headers) is computed once per sender; per message only ``To``, ``Subject``,
``Date``, ``Message-ID`` and the body are written. A header value never carries a line break,
so nothing in a user's name can become a header of its own. The notification id is the
idempotency key: it becomes the ``Message-ID``, so a message sent twice after a crash is
recognisable as one by the receiving side.
"""

import functools
import io
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from email.generator import BytesGenerator
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP, SMTPUTF8, EmailPolicy
from email.utils import format_datetime, formatdate, parseaddr
from typing import Any

MESSAGE_ID_DOMAIN = "signup.local"
MAX_LINE_OCTETS = 998
_SHORT = 78
_FIXED_HEADERS = (
    "Auto-Submitted: auto-generated\r\n"
    'Content-Type: text/plain; charset="utf-8"\r\n'
    "Content-Transfer-Encoding: {encoding}\r\n"
    "MIME-Version: 1.0\r\n"
)
_MULTIPART_HEADERS = (
    "Auto-Submitted: auto-generated\r\n"
    'Content-Type: multipart/alternative; boundary="{boundary}"\r\n'
    "MIME-Version: 1.0\r\n"
)
# The CRLF before a delimiter belongs to the delimiter (RFC 2046 5.1.1), not to the part.
_PART_HEADERS = (
    '\r\n--{boundary}\r\nContent-Type: text/{subtype}; charset="utf-8"\r\n'
    "Content-Transfer-Encoding: {encoding}\r\n\r\n"
)


@dataclass(frozen=True)
class Email:
    idempotency_key: uuid.UUID
    to: str
    subject: str
    text: str
    html: str | None = None
    language: str = "en"
    """The ``Content-Language`` of the message (a BCP 47 tag; omitted if it is not one)."""


@dataclass(frozen=True)
class SmtpEnvelope:
    """What one SMTP transaction carries: computed once per email, whatever the session."""

    sender: str
    recipient: str
    content: bytes
    international: bool


def boundary(idempotency_key: uuid.UUID) -> str:
    return f"=_signup_{idempotency_key.hex}"


def message_id(idempotency_key: uuid.UUID) -> str:
    return f"<{idempotency_key}@{MESSAGE_ID_DOMAIN}>"


def one_line(value: str) -> str:
    """Header values never carry a line break (no header injection through a user's name)."""
    return " ".join(value.splitlines()) if ("\n" in value or "\r" in value) else value


def header(policy: "EmailPolicy[Any]", name: str, value: str) -> str:
    """``Name: value`` folded and encoded by ``policy`` (short ASCII values as they are)."""
    value = one_line(value)
    if value.isascii() and len(name) + len(value) + 2 <= _SHORT:
        return f"{name}: {value}\r\n"
    folded: str = policy.header_factory(name, value).fold(policy=policy)
    return folded


def build_message(email: Email, mail_from: str) -> EmailMessage:
    """The welcome email as an ``EmailMessage`` (the general path, for bodies with long lines)."""
    message = EmailMessage(policy=SMTP)
    message["From"] = mail_from
    message["To"] = one_line(email.to)
    message["Subject"] = one_line(email.subject)
    message["Date"] = formatdate(usegmt=True)
    message["Message-ID"] = message_id(email.idempotency_key)
    message["Auto-Submitted"] = "auto-generated"
    if _LANGUAGE_TAG.fullmatch(email.language):
        message["Content-Language"] = email.language
    message.set_content(email.text)
    if email.html is not None:
        message.add_alternative(email.html, subtype="html")
    return message


def flatten(message: EmailMessage, international: bool) -> bytes:
    """As ``smtplib.send_message`` does: UTF-8 headers only for an international address."""
    with io.BytesIO() as flat:
        policy = SMTPUTF8 if international else SMTP
        BytesGenerator(flat, policy=policy).flatten(message, linesep="\r\n")
        return flat.getvalue()


@dataclass(frozen=True)
class _Sender:
    address: str
    ascii_from: str
    utf8_from: str


@functools.lru_cache(maxsize=16)
def _sender(mail_from: str) -> _Sender:
    """The envelope sender and its ``From`` line for either policy: once per sender."""
    name, address = parseaddr(one_line(mail_from))
    mailbox = Address(display_name=name, addr_spec=address)
    return _Sender(
        address, header(SMTP, "From", str(mailbox)), header(SMTPUTF8, "From", str(mailbox))
    )


_LANGUAGE_TAG = re.compile(r"[A-Za-z]{2,8}(?:-[A-Za-z0-9]{1,8})*")


def _content_language(language: str) -> str:
    """The ``Content-Language`` header line; empty when ``language`` is not a language tag."""
    return f"Content-Language: {language}\r\n" if _LANGUAGE_TAG.fullmatch(language) else ""


def _body(text: str) -> tuple[bytes, str] | None:
    """The body with CRLF line ends and its transfer encoding; None if a line is too long."""
    body = text.encode()
    lines = body.splitlines()
    if any(len(line) > MAX_LINE_OCTETS for line in lines):
        return None
    return b"".join(line + b"\r\n" for line in lines), ("7bit" if body.isascii() else "8bit")


def _content(email: Email) -> tuple[str, bytes] | None:
    """The MIME headers of the content and the body (CRLF line ends), or None when the general
    path must write it (a line too long for 8bit, or the boundary found in a part)."""
    text = _body(email.text)
    if text is None:
        return None
    if email.html is None:
        return _FIXED_HEADERS.format(encoding=text[1]), text[0]
    html = _body(email.html)
    mark = boundary(email.idempotency_key)
    if html is None or mark in email.text or mark in email.html:
        return None
    parts = b"".join(
        (
            _PART_HEADERS.format(boundary=mark, subtype="plain", encoding=text[1]).encode(),
            text[0],
            _PART_HEADERS.format(boundary=mark, subtype="html", encoding=html[1]).encode(),
            html[0],
            f"\r\n--{mark}--\r\n".encode(),
        )
    )
    return _MULTIPART_HEADERS.format(boundary=mark), parts


def envelope(email: Email, mail_from: str, now: datetime | None = None) -> SmtpEnvelope:
    """The SMTP transaction of ``email``: sender, recipient and the message bytes."""
    sender = _sender(mail_from)
    recipient = one_line(email.to)
    international = not (sender.address + recipient).isascii()
    content = _content(email)
    if content is None:
        return SmtpEnvelope(
            sender.address,
            recipient,
            flatten(build_message(email, mail_from), international),
            international,
        )
    content_headers, body = content
    policy = SMTPUTF8 if international else SMTP
    head = "".join(
        (
            sender.utf8_from if international else sender.ascii_from,
            header(policy, "To", recipient),
            header(policy, "Subject", email.subject),
            f"Date: {format_datetime(now or datetime.now(UTC))}\r\n",
            f"Message-ID: {message_id(email.idempotency_key)}\r\n",
            _content_language(email.language),
            content_headers,
        )
    )
    return SmtpEnvelope(sender.address, recipient, head.encode() + b"\r\n" + body, international)
