import smtplib
import ssl
import uuid
from email.message import EmailMessage
from typing import Any, ClassVar

import pytest

from notifications.adapters.email import (
    Email,
    EmailRejectedError,
    EmailTransientError,
    FakeEmailSender,
    SmtpEmailSender,
    classify,
)
from signup_shared.errors import PermanentError, TransientError

KEY = uuid.UUID("0b6f8a5e-2f0c-4a53-9b8e-6d7f1c2a3b4c")
TLS = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
WELCOME = Email(KEY, "ada@example.com", "Welcome, Ada!", "Hi Ada Lovelace,\n")


class FakeSmtp:
    """Stands in for smtplib.SMTP: records the conversation, fails where told to."""

    instances: ClassVar[list["FakeSmtp"]] = []

    def __init__(self, host: str, port: int, timeout: float, fail: dict[str, Exception]) -> None:
        if "connect" in fail:
            raise fail["connect"]
        self.address, self.timeout, self.fail = (host, port), timeout, fail
        self.calls: list[str] = []
        self.sent: list[EmailMessage] = []
        self.login_as: tuple[str, str] | None = None
        self.tls_context: Any = None
        FakeSmtp.instances.append(self)

    def _step(self, name: str) -> None:
        self.calls.append(name)
        if name in self.fail:
            raise self.fail[name]

    def starttls(self, context: Any = None) -> None:
        self._step("starttls")
        self.tls_context = context

    def login(self, user: str, password: str) -> None:
        self._step("login")
        self.login_as = (user, password)

    def send_message(self, message: EmailMessage) -> dict[str, Any]:
        self._step("send_message")
        self.sent.append(message)
        return {}

    def quit(self) -> None:
        self._step("quit")

    def close(self) -> None:
        self.calls.append("close")


def sender(fail: dict[str, Exception] | None = None, **options: Any) -> SmtpEmailSender:
    FakeSmtp.instances = []

    def factory(host: str, port: int, timeout: float) -> Any:
        return FakeSmtp(host, port, timeout, fail or {})

    return SmtpEmailSender("mail.local", 2525, mail_from="Signup <welcome@signup.local>",
                           timeout=3.0, tls_context=TLS, smtp_factory=factory, **options)


def test_sends_a_plain_text_email_whose_message_id_is_the_idempotency_key() -> None:
    provider_id = sender().send(WELCOME)
    [smtp] = FakeSmtp.instances
    [message] = smtp.sent
    assert provider_id == message["Message-ID"] == f"<{KEY}@signup.local>"
    assert (message["From"], message["To"], message["Subject"]) == (
        "Signup <welcome@signup.local>", "ada@example.com", "Welcome, Ada!")
    assert message["Auto-Submitted"] == "auto-generated"
    assert message.get_content_type() == "text/plain"
    assert message.get_content() == "Hi Ada Lovelace,\n"
    assert (smtp.address, smtp.timeout) == (("mail.local", 2525), 3.0)
    assert smtp.calls == ["send_message", "quit"]


def test_uses_starttls_and_login_when_configured() -> None:
    sender(starttls=True, username="relay", password="pw").send(WELCOME)
    [smtp] = FakeSmtp.instances
    assert smtp.calls == ["starttls", "login", "send_message", "quit"]
    assert smtp.tls_context is TLS
    assert smtp.login_as == ("relay", "pw")


def test_a_failing_quit_after_the_message_was_accepted_is_not_a_failure() -> None:
    provider_id = sender({"quit": smtplib.SMTPServerDisconnected("gone")}).send(WELCOME)
    assert provider_id == f"<{KEY}@signup.local>"
    assert FakeSmtp.instances[0].calls == ["send_message", "quit", "close"]


@pytest.mark.parametrize(
    ("step", "error"),
    [
        ("connect", ConnectionRefusedError(111, "Connection refused")),
        ("connect", TimeoutError("timed out")),
        ("send_message", ConnectionResetError(104, "Connection reset by peer")),
        ("send_message", smtplib.SMTPServerDisconnected("Connection unexpectedly closed")),
        ("send_message", smtplib.SMTPDataError(451, b"4.3.0 try again later")),
        ("connect", smtplib.SMTPConnectError(421, b"too busy")),
        ("send_message",
         smtplib.SMTPRecipientsRefused({"ada@example.com": (450, b"4.2.1 mailbox busy")})),
    ],
)
def test_transient_failures_say_retry_later(step: str, error: Exception) -> None:
    with pytest.raises(EmailTransientError) as raised:
        sender({step: error}).send(WELCOME)
    assert isinstance(raised.value, TransientError)
    assert raised.value.__cause__ is error


@pytest.mark.parametrize(
    ("step", "error"),
    [
        ("send_message", smtplib.SMTPRecipientsRefused(
            {"ada@example.com": (550, b"5.1.1 <ada@example.com>: mailbox unknown")})),
        ("send_message", smtplib.SMTPSenderRefused(553, b"sender not allowed", "w@s.local")),
        ("send_message", smtplib.SMTPDataError(554, b"5.7.1 rejected as spam")),
        ("login", smtplib.SMTPAuthenticationError(535, b"bad credentials")),
        ("starttls", smtplib.SMTPNotSupportedError("STARTTLS extension not supported")),
    ],
)
def test_definitive_refusals_are_permanent(step: str, error: Exception) -> None:
    options = {"starttls": True, "username": "relay"}
    with pytest.raises(EmailRejectedError) as raised:
        sender({step: error}, **options).send(WELCOME)
    assert isinstance(raised.value, PermanentError)


def test_errors_carry_the_reply_code_but_not_the_recipient_address() -> None:
    error = classify(smtplib.SMTPRecipientsRefused(
        {"ada@example.com": (550, b"5.1.1 <ada@example.com>: Recipient address rejected")}))
    assert str(error) == "SMTP 550: 5.1.1 <a***@example.com>: Recipient address rejected"


def test_the_connection_is_closed_even_when_sending_fails() -> None:
    with pytest.raises(EmailTransientError):
        sender({"send_message": smtplib.SMTPDataError(421, b"closing")}).send(WELCOME)
    assert FakeSmtp.instances[0].calls[-1] == "quit"


def test_the_fake_records_sends_and_raises_queued_failures() -> None:
    fake = FakeEmailSender(EmailTransientError("down"))
    with pytest.raises(EmailTransientError):
        fake.send(WELCOME)
    assert fake.send(WELCOME) == f"<{KEY}@signup.local>"
    assert fake.sent == [WELCOME]
