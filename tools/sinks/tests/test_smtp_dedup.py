import smtplib
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path

import pytest

from devsinks.reading import read_mail
from devsinks.smtp_sink import SmtpSink

pytestmark = pytest.mark.integration  # real servers on loopback, real processes


def mail(message_id: str) -> EmailMessage:
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = "a@example.com", "b@example.com", "hi"
    message["Message-ID"] = message_id
    message.set_content("hello")
    return message


@pytest.fixture
def sink(tmp_path: Path) -> Iterator[SmtpSink]:
    with SmtpSink(tmp_path / "mail", "127.0.0.1", 0) as running:
        yield running


def send(sink: SmtpSink, message: EmailMessage) -> None:
    with smtplib.SMTP("127.0.0.1", sink.port) as client:
        client.send_message(message)


def test_a_resent_message_id_is_accepted_but_stored_once(sink: SmtpSink, tmp_path: Path) -> None:
    send(sink, mail("<n1@signup.local>"))
    send(sink, mail("<n1@signup.local>"))
    send(sink, mail("<n2@signup.local>"))
    assert [m["Message-ID"] for m in read_mail(tmp_path / "mail")] == [
        "<n1@signup.local>",
        "<n2@signup.local>",
    ]
    assert (tmp_path / "mail" / "duplicates.log").read_text() == "<n1@signup.local>\n"


def test_message_ids_are_remembered_across_restarts(tmp_path: Path) -> None:
    for _ in range(2):
        with SmtpSink(tmp_path / "mail", "127.0.0.1", 0) as running:
            send(running, mail("<same@signup.local>"))
    assert len(read_mail(tmp_path / "mail")) == 1
