"""The hand-built welcome message: what a receiver parses back equals the ``EmailMessage`` one."""

import email
import email.policy
import uuid
from datetime import UTC, datetime

import pytest

from notifications.adapters.email_message import (
    MAX_LINE_OCTETS,
    Email,
    SmtpEnvelope,
    build_message,
    envelope,
    flatten,
    message_id,
)

KEY = uuid.UUID("0b6f8a5e-2f0c-4a53-9b8e-6d7f1c2a3b4c")
FROM = "Signup Platform <welcome@signup.local>"
NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
HEADERS = (
    "From",
    "To",
    "Subject",
    "Message-ID",
    "Auto-Submitted",
    "Content-Type",
    "Content-Transfer-Encoding",
    "MIME-Version",
)


def parsed(content: bytes) -> email.message.EmailMessage:
    message = email.message_from_bytes(content, policy=email.policy.default)
    assert isinstance(message, email.message.EmailMessage)
    assert not message.defects
    return message


@pytest.mark.parametrize(
    "welcome",
    [
        Email(KEY, "ada@example.com", "Welcome to Signup Platform, Ada!", "Hi Ada Lovelace,\n"),
        Email(
            KEY,
            "zoe@example.com",
            "Welcome to Signup Platform, Zoë!",
            "Hi Zoë Ångström,\n\nthank you.\n",
        ),
        Email(KEY, "zoë@example.com", "Welcome, Zoë!", "Hi Zoë,\n"),  # SMTPUTF8
        Email(KEY, "ada@example.com", "Welcome, " + "Ada " * 30, "no final newline"),
        Email(KEY, "ada@example.com", "Bienvenue, " + "Zoë " * 30, "Hi\n"),
    ],
)
def test_parses_back_to_what_the_email_message_version_says(welcome: Email) -> None:
    built = envelope(welcome, FROM)
    international = not ("welcome@signup.local" + welcome.to).isascii()
    reference = SmtpEnvelope(
        "welcome@signup.local",
        welcome.to,
        flatten(build_message(welcome, FROM), international),
        international,
    )
    assert (built.sender, built.recipient, built.international) == (
        reference.sender,
        reference.recipient,
        reference.international,
    )
    mine, theirs = parsed(built.content), parsed(reference.content)
    for name in HEADERS:
        assert str(mine[name]) == str(theirs[name]), name
    assert mine.get_content() == theirs.get_content()
    assert all(len(line) <= MAX_LINE_OCTETS for line in built.content.split(b"\r\n"))


def test_non_ascii_headers_are_rfc_2047_encoded_words_unless_smtputf8() -> None:
    plain = envelope(Email(KEY, "zoe@example.com", "Hallo Zoë!", "Hi\n"), FROM)
    head = plain.content.split(b"\r\n\r\n")[0]
    assert head.isascii()
    assert b"Subject: Hallo =?utf-8?q?Zo=C3=AB!?=" in head
    assert parsed(plain.content)["Subject"] == "Hallo Zoë!"
    international = envelope(Email(KEY, "zoë@example.com", "Hallo Zoë!", "Hi\n"), FROM)
    assert international.international
    assert "Subject: Hallo Zoë!".encode() in international.content


def test_a_non_ascii_sender_name_is_encoded_once() -> None:
    built = envelope(Email(KEY, "ada@example.com", "Hi", "Hi\n"), "Anmeldung Zoë <w@signup.local>")
    assert built.sender == "w@signup.local"
    assert b"From: Anmeldung =?utf-8?q?Zo=C3=AB?= <w@signup.local>\r\n" in built.content
    assert parsed(built.content)["From"] == "Anmeldung Zoë <w@signup.local>"


def test_the_message_id_is_stable_and_the_date_is_the_given_time() -> None:
    welcome = Email(KEY, "ada@example.com", "Hi", "Hi\n")
    first, second = envelope(welcome, FROM, NOW), envelope(welcome, FROM, NOW)
    assert first == second
    message = parsed(first.content)
    assert message["Message-ID"] == message_id(KEY) == f"<{KEY}@signup.local>"
    assert message["Date"].datetime == NOW


def test_lines_end_in_crlf_and_the_body_is_7bit_when_ascii() -> None:
    built = envelope(Email(KEY, "ada@example.com", "Hi", "one\ntwo\n"), FROM)
    assert b"\n" not in built.content.replace(b"\r\n", b"")
    assert built.content.endswith(b"\r\n\r\none\r\ntwo\r\n")
    assert b"Content-Transfer-Encoding: 7bit\r\n" in built.content


@pytest.mark.parametrize("subject", ["Hi\r\nBcc: eve@example.com", "Zoë\nBcc: eve@example.com"])
def test_a_line_break_in_a_header_value_cannot_inject_a_header(subject: str) -> None:
    built = envelope(Email(KEY, "ada@example.com", subject, "Hi\n"), FROM)
    message = parsed(built.content)
    assert message["Bcc"] is None
    assert message["Subject"] == " ".join(subject.splitlines())


def test_a_line_break_in_the_recipient_cannot_inject_a_header() -> None:
    built = envelope(Email(KEY, "ada@example.com\r\nBcc: eve@example.com", "Hi", "Hi\n"), FROM)
    assert parsed(built.content)["Bcc"] is None
    assert b"\r\nBcc:" not in built.content


def test_a_body_line_too_long_for_smtp_is_encoded_the_general_way() -> None:
    long_line = "x" * (MAX_LINE_OCTETS + 1) + "\n"
    built = envelope(Email(KEY, "ada@example.com", "Hi", long_line), FROM)
    message = parsed(built.content)
    assert message["Content-Transfer-Encoding"] in ("quoted-printable", "base64")
    # (as before: the general way flattens with CRLF inside the encoded body too)
    assert message.get_content().replace("\r\n", "\n") == long_line
    assert all(len(line) <= MAX_LINE_OCTETS for line in built.content.split(b"\r\n"))
