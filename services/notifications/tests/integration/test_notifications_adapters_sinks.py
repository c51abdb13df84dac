"""The email and SMS adapters against the dev sinks over real sockets (started in process)."""

import smtplib
import socket
import threading
import uuid
from collections.abc import Iterator
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default
from pathlib import Path
from typing import Any

import pytest

from devsinks.reading import read_mail, read_sms
from devsinks.sms_http import SmsSink
from devsinks.smtp_sink import SmtpSink
from notifications import templates
from notifications.adapters.email_message import Email
from notifications.adapters.sms import HttpSmsGateway, Sms
from notifications.adapters.smtp import DeadlineSMTP, SmtpEmailSender

pytestmark = pytest.mark.integration
TOKEN = "integration-token"


def welcome(number: int, to: str = "ada@example.com") -> Email:
    return Email(uuid.uuid4(), to, f"Welcome #{number}", f"Hello number {number}\n")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class CountingFactory:
    """``DeadlineSMTP`` that counts the connections it opens."""

    def __init__(self) -> None:
        self.connections = 0
        self.lock = threading.Lock()

    def __call__(self, host: str, port: int, **options: Any) -> smtplib.SMTP:
        with self.lock:
            self.connections += 1
        return DeadlineSMTP(host, port, **options)


@pytest.fixture
def maildir(tmp_path: Path) -> Path:
    return tmp_path / "mail"


@pytest.fixture
def smtp_sink(maildir: Path) -> Iterator[SmtpSink]:
    with SmtpSink(maildir, port=0) as sink:
        yield sink


def smtp_sender(port: int, factory: CountingFactory, **options: Any) -> SmtpEmailSender:
    return SmtpEmailSender(
        "127.0.0.1",
        port,
        mail_from="Signup <welcome@signup.local>",
        timeout=5.0,
        smtp_factory=factory,
        **options,
    )


def test_one_connection_carries_every_email(smtp_sink: SmtpSink, maildir: Path) -> None:
    factory = CountingFactory()
    sender = smtp_sender(smtp_sink.port, factory)
    emails = [welcome(n) for n in range(5)] + [welcome(5, "zoë@exämple.com")]
    try:
        ids = [sender.send(email) for email in emails]
    finally:
        sender.close()
    stored = read_mail(maildir)
    assert [message["Message-ID"] for message in stored] == ids
    assert stored[-1]["To"] == "zoë@exämple.com"
    assert stored[0].get_content().splitlines() == ["Hello number 0"]
    assert factory.connections == 1


@pytest.mark.parametrize("check_after", [0.0, 3600.0])
def test_a_restarted_server_is_reconnected_to_and_nothing_is_sent_twice(
    maildir: Path, check_after: float
) -> None:
    """With ``check_after=0`` the NOOP finds the dead session; otherwise MAIL FROM does."""
    port, factory = free_port(), CountingFactory()
    sender = smtp_sender(port, factory, check_after=check_after)
    try:
        with SmtpSink(maildir, port=port):
            first = sender.send(welcome(1))
        with SmtpSink(maildir, port=port):
            second = sender.send(welcome(2))
    finally:
        sender.close()
    assert [message["Message-ID"] for message in read_mail(maildir)] == [first, second]
    assert factory.connections == 2


def test_threads_share_a_pool_of_two_sessions(smtp_sink: SmtpSink, maildir: Path) -> None:
    factory = CountingFactory()
    sender = smtp_sender(smtp_sink.port, factory, pool_size=2)
    sent: list[str] = []

    def send_five(thread: int) -> None:
        for number in range(5):
            sent.append(sender.send(welcome(thread * 10 + number)))

    threads = [threading.Thread(target=send_five, args=(i,)) for i in range(4)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        sender.close()
    assert sorted(message["Message-ID"] for message in read_mail(maildir)) == sorted(sent)
    assert len(sent) == 20
    assert factory.connections <= 2


def test_sms_from_several_threads_through_one_client(tmp_path: Path) -> None:
    with SmsSink(tmp_path / "sms", port=0, token=TOKEN) as sink:
        gateway = HttpSmsGateway(sink.url, TOKEN, max_connections=2)
        messages = [Sms(uuid.uuid4(), "+14155550123", f"Welcome #{n}") for n in range(12)]

        def send(batch: list[Sms]) -> None:
            for sms in batch:
                gateway.send(sms)

        threads = [threading.Thread(target=send, args=(messages[i::3],)) for i in range(3)]
        try:
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            gateway.send(messages[0])  # the same Idempotency-Key: answered, not stored again
        finally:
            gateway.close()
        stored = read_sms(tmp_path / "sms")
    assert sorted(str(record["body"]) for record in stored) == sorted(m.body for m in messages)


def test_the_sinks_maildir_holds_the_multipart_welcome_a_mail_client_opens(
    smtp_sink: SmtpSink, maildir: Path
) -> None:
    content = templates.welcome_email({"full_name": "Zoë <b>Eve</b>", "plan": "pro"})
    email = Email(uuid.uuid4(), "zoe@example.com", content.subject, content.text, content.html)
    sender = smtp_sender(smtp_sink.port, CountingFactory())
    try:
        sender.send(email)
    finally:
        sender.close()
    [path] = [p for p in maildir.rglob("*") if p.is_file() and p.parent.name == "new"]
    stored = message_from_bytes(path.read_bytes(), policy=default)
    assert isinstance(stored, EmailMessage)
    assert stored.get_content_type() == "multipart/alternative"
    assert stored["Subject"] == "Welcome to Signup Platform, Zoë!"
    text, html = stored.iter_parts()
    assert (text.get_content_type(), html.get_content_type()) == ("text/plain", "text/html")
    assert text.get_content_charset() == html.get_content_charset() == "utf-8"
    assert isinstance(html, EmailMessage) and "Zoë &lt;b&gt;Eve&lt;/b&gt;" in html.get_content()
