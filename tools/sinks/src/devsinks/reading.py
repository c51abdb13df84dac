"""Read back what the sinks stored, for assertions in tests."""

import mailbox
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path

from .sms_records import parse_json_lines
from .sms_store import MESSAGES_FILE


def read_mail(maildir: Path | str) -> list[EmailMessage]:
    """Messages in the Maildir (`new` and `cur`), oldest delivery first; [] if it does not exist."""
    if not Path(maildir).is_dir():
        return []
    box = mailbox.Maildir(maildir, factory=None, create=False)
    parser = BytesParser(policy=policy.default)
    dated = sorted((box.get_message(key).get_date(), key) for key in box.iterkeys())
    return [parser.parsebytes(box.get_bytes(key)) for _, key in dated]


def read_sms(directory: Path | str) -> list[dict[str, object]]:
    """Stored SMS records in arrival order; [] if nothing was stored yet."""
    path = Path(directory) / MESSAGES_FILE
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return []
    return parse_json_lines(data)
