import smtplib
import socket
from email.message import EmailMessage
from pathlib import Path

import pytest

from devsinks.reading import read_mail
from devsinks.smtp_sink import SmtpSink

pytestmark = pytest.mark.integration  # real servers on loopback, real processes


def make_message(subject: str = "Welcome") -> EmailMessage:
    message = EmailMessage()
    message["From"] = "noreply@signup.test"
    message["To"] = "alice@example.com"
    message["Subject"] = subject
    message.set_content("Hello Alice,\n.leading dot\nbye\n")
    return message


def stored_files(maildir: Path) -> list[Path]:
    return sorted((maildir / "new").iterdir())


def test_message_is_stored_in_maildir(smtp_sink: SmtpSink, maildir: Path) -> None:
    with smtplib.SMTP("127.0.0.1", smtp_sink.port, timeout=5) as client:
        client.send_message(make_message(), to_addrs=["alice@example.com", "bcc@example.org"])
    [message] = read_mail(maildir)
    assert message["Subject"] == "Welcome"
    assert message["To"] == "alice@example.com"
    assert message["X-Envelope-To"] == "alice@example.com, bcc@example.org"
    assert message["X-Envelope-From"] == "<noreply@signup.test>"
    assert message.get_content() == "Hello Alice,\r\n.leading dot\r\nbye\r\n"


def test_raw_bytes_are_kept_exactly(smtp_sink: SmtpSink, maildir: Path) -> None:
    raw = (
        b"From: a@x.test\r\nTo: b@y.test\r\nSubject: raw\r\n\r\n"
        b"line one\r\n..two dots\r\n\xc3\xbc 8bit\r\n"
    )
    with smtplib.SMTP("127.0.0.1", smtp_sink.port, timeout=5) as client:
        client.sendmail("a@x.test", ["b@y.test"], raw)
    [path] = stored_files(maildir)
    envelope = b"X-Envelope-From: <a@x.test>\r\nX-Envelope-To: b@y.test\r\n"
    assert path.read_bytes() == envelope + raw


@pytest.mark.parametrize("mechanism", ["LOGIN", "PLAIN"])
def test_any_credentials_are_accepted_without_tls(
    smtp_sink: SmtpSink, maildir: Path, mechanism: str
) -> None:
    with smtplib.SMTP("127.0.0.1", smtp_sink.port, timeout=5) as client:
        client.ehlo()
        assert client.has_extn("auth")
        client.user, client.password = "anyone", "anything"
        code, _ = client.auth(mechanism, getattr(client, f"auth_{mechanism.lower()}"))
        assert code == 235
        client.send_message(make_message())
    assert len(read_mail(maildir)) == 1


def test_plain_smtp_without_ehlo_or_auth(smtp_sink: SmtpSink, maildir: Path) -> None:
    with smtplib.SMTP("127.0.0.1", smtp_sink.port, timeout=5) as client:
        client.helo("client.test")
        client.sendmail("a@x.test", ["b@y.test"], b"Subject: helo\r\n\r\nbody\r\n")
    assert [message["Subject"] for message in read_mail(maildir)] == ["helo"]


def test_messages_are_read_in_delivery_order(smtp_sink: SmtpSink, maildir: Path) -> None:
    with smtplib.SMTP("127.0.0.1", smtp_sink.port, timeout=5) as client:
        for index in range(5):
            client.send_message(make_message(subject=f"message {index}"))
    assert [m["Subject"] for m in read_mail(maildir)] == [f"message {i}" for i in range(5)]


def test_stop_closes_open_sessions_and_the_listener(maildir: Path) -> None:
    sink = SmtpSink(maildir, port=0)
    sink.start()
    port = sink.port
    client = smtplib.SMTP("127.0.0.1", port, timeout=5)
    try:
        client.ehlo()
        sink.stop()
        with pytest.raises((smtplib.SMTPServerDisconnected, ConnectionError)):
            client.noop()
    finally:
        client.close()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=1)
