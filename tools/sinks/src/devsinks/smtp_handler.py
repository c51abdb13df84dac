"""aiosmtpd handler that delivers every received message into a Maildir."""

import logging
import mailbox
from email.parser import BytesHeaderParser
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


def message_id(raw: bytes) -> str | None:
    value = BytesHeaderParser().parsebytes(raw).get("Message-ID")
    return str(value).strip() if value else None


class MaildirHandler:
    """Stores each message once per Message-ID, as mailbox providers such as Gmail do.

    A sender that re-sends after a crash (it cannot know whether the first attempt arrived)
    reuses the Message-ID, so the mailbox still shows one message; each suppressed copy is
    recorded in ``duplicates.log`` beside the Maildir folders.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        for folder in ("tmp", "new", "cur"):
            (directory / folder).mkdir(parents=True, exist_ok=True)
        self.maildir = mailbox.Maildir(directory, factory=None, create=True)
        self.seen = {
            mid
            for folder in ("new", "cur")
            for path in (directory / folder).iterdir()
            if (mid := message_id(path.read_bytes())) is not None
        }

    def _record_duplicate(self, mid: str) -> None:
        with (self.directory / "duplicates.log").open("a") as duplicates:
            duplicates.write(f"{mid}\n")

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        mid = message_id(envelope.original_content or b"")
        if mid is not None and mid in self.seen:
            self._record_duplicate(mid)
            log.info("duplicate %s accepted, not stored again", mid)
            return ACCEPTED
        try:
            key = self.maildir.add(stored_bytes(envelope))
            if mid is not None:
                self.seen.add(mid)
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
