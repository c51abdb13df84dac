"""The welcome as it leaves: snapshots of every rendered template (plan x part), and every
message parsed back with the standard library's parser.

Refresh the snapshots after an intended change of a template file by running this module with
``NOTIFICATIONS_UPDATE_SNAPSHOTS=1`` in the environment, and review the diff of
``tests/snapshots`` like code.
"""

import os
import uuid
from datetime import UTC, datetime
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default
from pathlib import Path

import html5lib
import pytest

from notifications import templates
from notifications.adapters.email_message import Email, boundary, envelope

SNAPSHOTS = Path(__file__).parents[1] / "snapshots"
UPDATE = os.environ.get("NOTIFICATIONS_UPDATE_SNAPSHOTS") == "1"
KEY = uuid.UUID("0b6f8a5e-2f0c-4a53-9b8e-6d7f1c2a3b4c")
SENT_AT = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
MAIL_FROM = "Signup Platform <welcome@signup.local>"
HOSTILE = ["<script>alert(1)</script>", '"><img src=x onerror=alert(1)>']


def matches_snapshot(name: str, actual: str | bytes) -> None:
    path = SNAPSHOTS / name
    data = actual if isinstance(actual, bytes) else actual.encode()
    if UPDATE:
        path.write_bytes(data)
    assert path.exists(), f"no snapshot {path.name}: run with NOTIFICATIONS_UPDATE_SNAPSHOTS=1"
    assert data == path.read_bytes(), f"{path.name} changed: review, then refresh the snapshot"


def message(  # type: ignore[no-untyped-def]
    full_name: str = "Ada Lovelace", plan: str = "pro", to: str = "ada@example.com", locale="en"
):
    content = templates.welcome_email({"full_name": full_name, "plan": plan, "locale": locale})
    email = Email(KEY, to, content.subject, content.text, content.html, content.language)
    return envelope(email, MAIL_FROM, SENT_AT).content


def parsed(raw: bytes) -> EmailMessage:
    parsed_message = message_from_bytes(raw, policy=default)
    assert isinstance(parsed_message, EmailMessage)
    return parsed_message


def parts(mail: EmailMessage) -> dict[str, str]:
    """The parts of a multipart/alternative welcome by content type (line ends as ``\\n``),
    each checked on the way."""
    assert mail.get_content_type() == "multipart/alternative"
    found: dict[str, str] = {}
    for part in mail.iter_parts():
        assert isinstance(part, EmailMessage)
        assert part.get_content_charset() == "utf-8"
        found[part.get_content_type()] = part.get_content().replace("\r\n", "\n")
    assert list(found) == ["text/plain", "text/html"]
    return found


def well_formed(page: str) -> None:
    html5lib.HTMLParser(strict=True).parse(page)  # raises on any parse error


@pytest.mark.parametrize("language", ["en", "de"])
@pytest.mark.parametrize("plan", templates.PLANS)
def test_each_rendered_part_matches_its_snapshot(plan: str, language: str) -> None:
    data = {"full_name": "Ada Lovelace", "plan": plan, "locale": language}
    email, sms = templates.welcome_email(data), templates.welcome_sms(data)
    stem = f"welcome_{plan}" if language == "en" else f"welcome_{plan}.{language}"
    matches_snapshot(f"{stem}.subject.txt", email.subject + "\n")
    matches_snapshot(f"{stem}.txt", email.text)
    matches_snapshot(f"{stem}.html", email.html)
    matches_snapshot(f"{stem}.sms.txt", sms.body + "\n")
    matches_snapshot(f"{stem}.eml", message(plan=plan, locale=language))


@pytest.mark.parametrize("plan", templates.PLANS)
def test_every_message_parses_back_with_both_parts_declared_and_well_formed(plan: str) -> None:
    mail = parsed(message(plan=plan))
    assert mail["Message-ID"] == f"<{KEY}@signup.local>"
    assert mail["Date"].datetime == SENT_AT
    assert mail["From"].addresses[0].addr_spec == "welcome@signup.local"
    assert mail["Subject"] == "Welcome to Signup Platform, Ada!"
    assert mail["Auto-Submitted"] == "auto-generated"
    assert "List-Unsubscribe" not in mail  # transactional: not a list
    found = parts(mail)
    assert found["text/plain"].startswith("Hi Ada Lovelace,")
    well_formed(found["text/html"])


@pytest.mark.parametrize("plan", templates.PLANS)
def test_a_german_welcome_parses_back_in_german_with_its_language_declared(plan: str) -> None:
    mail = parsed(message(full_name="Jürgen Groß", plan=plan, locale="de-DE"))
    assert (mail["Subject"], mail["Content-Language"]) == (
        "Willkommen bei Signup Platform, Jürgen!",
        "de",
    )
    found = parts(mail)
    assert found["text/plain"].startswith("Hallo Jürgen Groß,")
    assert '<html lang="de">' in found["text/html"]
    well_formed(found["text/html"])


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_names_stay_text_in_the_sent_html(name: str) -> None:
    found = parts(parsed(message(full_name=f"Eve {name}")))
    document = html5lib.parse(found["text/html"], namespaceHTMLElements=False)
    assert document.findall(".//script") == [] and document.findall(".//img") == []
    assert f"Hi Eve {name}," in "".join(document.find("body").itertext())
    well_formed(found["text/html"])


@pytest.mark.parametrize(
    "name", ["Eve\r\nBcc: victim@example.com", "Eve\nBcc: victim@example.com", "Eve\rX-Evil: 1"]
)
def test_a_line_break_in_a_name_never_becomes_a_header(name: str) -> None:
    for first in (name, name.replace("Eve", "", 1)):  # the break in the first name, too
        mail = parsed(message(full_name=first))
        assert "Bcc" not in mail and "X-Evil" not in mail
        assert set(mail.keys()) == {
            "From",
            "To",
            "Subject",
            "Date",
            "Message-ID",
            "Content-Language",
            "Auto-Submitted",
            "Content-Type",
            "MIME-Version",
        }
        parts(mail)


def test_a_non_ascii_name_is_an_encoded_word_in_the_subject_and_utf8_in_the_parts() -> None:
    raw = message(full_name="Zoë Ångström")
    head = raw.split(b"\r\n\r\n", 1)[0]
    assert head.isascii() and b"=?utf-8?" in head
    mail = parsed(raw)
    assert mail["Subject"] == "Welcome to Signup Platform, Zoë!"
    found = parts(mail)
    assert "Hi Zoë Ångström," in found["text/plain"] and "Zoë Ångström" in found["text/html"]


def test_the_general_path_writes_the_same_parts_when_a_line_is_too_long() -> None:
    content = templates.welcome_email({"full_name": "Ada Lovelace", "plan": "team"})
    long_html = content.html.replace("</body>", "<p>" + "x" * 2000 + "</p></body>")
    raw = envelope(
        Email(KEY, "ada@example.com", content.subject, content.text, long_html), MAIL_FROM, SENT_AT
    ).content
    assert all(len(line) <= 998 for line in raw.split(b"\r\n"))
    found = parts(parsed(raw))
    assert found["text/plain"] == content.text
    assert found["text/html"].rstrip("\n") == long_html.rstrip("\n")


def test_a_body_holding_the_boundary_takes_a_random_one() -> None:
    content = templates.welcome_email({"full_name": boundary(KEY), "plan": "free"})
    raw = envelope(
        Email(KEY, "ada@example.com", content.subject, content.text, content.html),
        MAIL_FROM,
        SENT_AT,
    ).content
    mail = parsed(raw)
    assert mail.get_boundary() != boundary(KEY)
    assert parts(mail)["text/plain"] == content.text
