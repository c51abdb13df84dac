"""aiosmtpd handler that delivers every received message into a Maildir."""

import logging
import mailbox
from pathlib import Path
from typing import Any

from aiosmtpd.smtp import SMTP, AuthResult, Envelope, Session

from .masking import mask_email, mask_emails

log = logging.getLogger("devsinks.smtp")

ACCEPTED = "250 2.0.0 Message accepted for delivery"
LOCAL_ERROR = "451 4.3.0 Requested action aborted: local error in processing"


def accept_any_credentials(
    server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
) -> AuthResult:
    return AuthResult(success=True)


def envelope_headers(mail_from: str | None, rcpt_tos: list[str]) -> bytes:
    lines = [
        f"X-Envelope-From: <{mail_from or ''}>",
        f"X-Envelope-To: {', '.join(rcpt_tos)}",
    ]
    return "".join(f"{line}\r\n" for line in lines).encode("utf-8")


def stored_bytes(envelope: Envelope) -> bytes:
    content = envelope.original_content or b""
    return envelope_headers(envelope.mail_from, envelope.rcpt_tos) + content


class MaildirHandler:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        for folder in ("tmp", "new", "cur"):
            (directory / folder).mkdir(parents=True, exist_ok=True)
        self.maildir = mailbox.Maildir(directory, factory=None, create=True)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        try:
            key = self.maildir.add(stored_bytes(envelope))
        except OSError:
            log.exception("could not store a message in %s", self.directory)
            return LOCAL_ERROR
        log.info(
            "stored mail %s from %s to %s (%d bytes)",
            key,
            mask_email(envelope.mail_from or ""),
            mask_emails(envelope.rcpt_tos),
            len(envelope.original_content or b""),
        )
        return ACCEPTED
