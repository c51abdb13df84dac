import email
import email.policy
import smtplib
import ssl
import threading
import time
import uuid
from typing import Any

import pytest

from notifications.adapters.email_message import Email
from notifications.adapters.smtp import (
    EmailRejectedError,
    EmailTransientError,
    SmtpEmailSender,
    classify,
)
from notifications.testing import FakeEmailSender
from signup_shared.errors import PermanentError, TransientError

KEY = uuid.UUID("0b6f8a5e-2f0c-4a53-9b8e-6d7f1c2a3b4c")
TLS = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
WELCOME = Email(KEY, "ada@example.com", "Welcome, Ada!", "Hi Ada Lovelace,\n")
GONE = smtplib.SMTPServerDisconnected("Connection unexpectedly closed")


def welcome(number: int) -> Email:
    return Email(uuid.UUID(int=number), f"user{number}@example.com", "Welcome!", "Hi\n")


class Server:
    """The fake SMTP server all fake sessions talk to: what it accepted, where to fail."""

    def __init__(self, extensions: tuple[str, ...] = ("size",), hold: float = 0.0) -> None:
        self.extensions = extensions
        self.hold = hold
        self.sessions: list[FakeSmtp] = []
        self.accepted: list[email.message.EmailMessage] = []
        self.raw: list[bytes] = []
        self.failures: dict[str, list[BaseException | None]] = {}
        self.lock = threading.Lock()
        self.in_use = 0
        self.most_in_use = 0

    def fail(self, step: str, *errors: BaseException | None) -> None:
        """Queue what the next calls of ``step`` raise (``None``: that call succeeds)."""
        self.failures.setdefault(step, []).extend(errors)

    def factory(self, host: str, port: int, timeout: float, deadline: float) -> "FakeSmtp":
        self.check("connect")
        session = FakeSmtp(self, (host, port), timeout)
        self.sessions.append(session)
        return session

    def check(self, step: str) -> None:
        with self.lock:
            queued = self.failures.get(step)
            error = queued.pop(0) if queued else None
        if error is not None:
            raise error


class FakeSmtp:
    """Stands in for smtplib.SMTP: records the conversation, fails where the server says."""

    def __init__(self, server: Server, address: tuple[str, int], timeout: float) -> None:
        self.server, self.address, self.timeout = server, address, timeout
        self.calls: list[str] = []
        self.does_esmtp = False
        self.users = 0
        self.most_users = 0
        self.dropped = False
        self.login_as: tuple[str, str] | None = None
        self.tls_context: Any = None
        self.mail_options: list[str] = []

    def _step(self, name: str) -> None:
        self.calls.append(name)
        if self.dropped:
            raise smtplib.SMTPServerDisconnected("Connection unexpectedly closed")
        self.server.check(name)

    def ehlo_or_helo_if_needed(self) -> None:
        if not self.does_esmtp:
            self._step("ehlo")
            self.does_esmtp = True

    def has_extn(self, name: str) -> bool:
        return name in self.server.extensions

    def starttls(self, context: Any = None) -> None:
        self._step("starttls")
        self.tls_context = context

    def login(self, user: str, password: str) -> None:
        self._step("login")
        self.login_as = (user, password)

    def noop(self) -> tuple[int, bytes]:
        self._step("noop")
        return 250, b"OK"

    def mail(self, sender: str, options: list[str]) -> tuple[int, bytes]:
        with self.server.lock:
            self.users += 1
            self.most_users = max(self.most_users, self.users)
            self.server.in_use += 1
            self.server.most_in_use = max(self.server.most_in_use, self.server.in_use)
        self.mail_options = options
        self._step("mail")
        return 250, b"OK"

    def rcpt(self, recipient: str) -> tuple[int, bytes]:
        self._step("rcpt")
        return 250, b"OK"

    def data(self, content: bytes) -> tuple[int, bytes]:
        try:
            self._step("data")
            time.sleep(self.server.hold)
            # A server stores the message with its own line endings; the wire has CRLF.
            assert b"\n" not in content.replace(b"\r\n", b"")
            lines = content.replace(b"\r\n", b"\n")
            parsed = email.message_from_bytes(lines, policy=email.policy.default)
            with self.server.lock:
                self.server.raw.append(content)
                self.server.accepted.append(parsed)  # type: ignore[arg-type]
            return 250, b"OK queued"
        finally:
            with self.server.lock:
                self.users -= 1
                self.server.in_use -= 1

    def quit(self) -> None:
        self._step("quit")

    def close(self) -> None:
        self.calls.append("close")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def sender(server: Server, clock: Clock | None = None, **options: Any) -> SmtpEmailSender:
    return SmtpEmailSender(
        "mail.local",
        2525,
        mail_from="Signup <welcome@signup.local>",
        timeout=3.0,
        tls_context=TLS,
        smtp_factory=server.factory,
        clock=clock or Clock(),
        **options,
    )


def test_sends_a_plain_text_email_whose_message_id_is_the_idempotency_key() -> None:
    server = Server()
    provider_id = sender(server).send(WELCOME)
    [smtp] = server.sessions
    [message] = server.accepted
    assert provider_id == message["Message-ID"] == f"<{KEY}@signup.local>"
    assert (message["From"], message["To"], message["Subject"]) == (
        "Signup <welcome@signup.local>",
        "ada@example.com",
        "Welcome, Ada!",
    )
    assert message["Auto-Submitted"] == "auto-generated"
    assert message.get_content_type() == "text/plain"
    assert message.get_content() == "Hi Ada Lovelace,\n"
    assert (smtp.address, smtp.timeout) == (("mail.local", 2525), 3.0)
    assert smtp.calls == ["ehlo", "mail", "rcpt", "data"]
    assert smtp.mail_options == [f"SIZE={len(server.raw[0])}"]


def test_one_connection_serves_every_send() -> None:
    server = Server()
    smtp_sender = sender(server, starttls=True, username="relay", password="pw")
    for number in range(5):
        smtp_sender.send(welcome(number))
    [smtp] = server.sessions
    assert smtp.calls[:3] == ["starttls", "login", "ehlo"]
    assert smtp.calls.count("data") == 5
    assert (smtp.tls_context, smtp.login_as) == (TLS, ("relay", "pw"))
    assert len(server.accepted) == 5


def test_a_session_idle_longer_than_check_after_answers_a_noop_before_reuse() -> None:
    server, clock = Server(), Clock()
    smtp_sender = sender(server, clock, check_after=5.0)
    smtp_sender.send(welcome(1))
    clock.now += 5.0
    smtp_sender.send(welcome(2))
    clock.now += 5.1
    smtp_sender.send(welcome(3))
    [smtp] = server.sessions
    assert smtp.calls.count("noop") == 1
    assert smtp.calls.index("noop") > 4  # before the third send only


def test_a_session_that_fails_its_noop_is_replaced() -> None:
    server, clock = Server(), Clock()
    smtp_sender = sender(server, clock, check_after=5.0)
    smtp_sender.send(welcome(1))
    server.sessions[0].dropped = True
    clock.now += 60
    smtp_sender.send(welcome(2))
    first, second = server.sessions
    assert first.calls[-2:] == ["noop", "close"]
    assert second.calls == ["ehlo", "mail", "rcpt", "data"]
    assert len(server.accepted) == 2


@pytest.mark.parametrize("step", ["ehlo", "mail", "rcpt"])
@pytest.mark.parametrize("error", [GONE, ConnectionResetError(104, "reset"), BrokenPipeError()])
def test_a_connection_dropped_before_data_is_replaced_once_and_the_email_sent(
    step: str, error: BaseException
) -> None:
    server = Server()
    smtp_sender = sender(server)
    smtp_sender.send(welcome(1))
    server.sessions[0].does_esmtp = step != "ehlo"
    server.fail(step, error)
    smtp_sender.send(welcome(2))
    first, second = server.sessions
    assert first.calls[-1] == "close" and first.calls.count("data") == 1
    assert second.calls.count("data") == 1
    assert [m["Message-ID"] for m in server.accepted] == [
        f"<{uuid.UUID(int=1)}@signup.local>",
        f"<{uuid.UUID(int=2)}@signup.local>",
    ]


def test_a_connection_dropped_during_data_is_not_resent_here() -> None:
    server = Server()
    smtp_sender = sender(server)
    server.fail("data", GONE)
    with pytest.raises(EmailTransientError) as raised:
        smtp_sender.send(WELCOME)
    assert raised.value.__cause__ is GONE
    [smtp] = server.sessions
    assert smtp.calls == ["ehlo", "mail", "rcpt", "data", "close"]
    smtp_sender.send(WELCOME)  # the caller's retry: a new session, the same Message-ID
    assert len(server.sessions) == 2
    assert [m["Message-ID"] for m in server.accepted] == [f"<{KEY}@signup.local>"]


def test_two_sessions_failing_before_data_is_a_transient_error_without_a_third() -> None:
    server = Server()
    server.fail("mail", GONE, GONE)
    with pytest.raises(EmailTransientError):
        sender(server).send(WELCOME)
    assert len(server.sessions) == 2
    assert all(smtp.calls[-1] == "close" for smtp in server.sessions)


def test_reconnecting_after_a_drop_can_fail_too() -> None:
    server = Server()
    server.fail("mail", GONE)
    server.fail("connect", None, ConnectionRefusedError(111, "refused"))
    smtp_sender = sender(server)
    with pytest.raises(EmailTransientError):
        smtp_sender.send(welcome(1))  # first connect works, its MAIL drops, reconnect refused
    assert len(server.sessions) == 1


@pytest.mark.parametrize(
    ("step", "error"),
    [
        ("connect", ConnectionRefusedError(111, "Connection refused")),
        ("connect", TimeoutError("timed out")),
        ("connect", smtplib.SMTPConnectError(421, b"too busy")),
        ("mail", TimeoutError("timed out")),
        ("mail", smtplib.SMTPSenderRefused(421, b"closing", "w@s.local")),
        ("data", ConnectionResetError(104, "Connection reset by peer")),
        ("data", smtplib.SMTPDataError(451, b"4.3.0 try again later")),
        (
            "rcpt",
            smtplib.SMTPRecipientsRefused({"ada@example.com": (450, b"4.2.1 mailbox busy")}),
        ),
    ],
)
def test_transient_failures_say_retry_later(step: str, error: Exception) -> None:
    server = Server()
    server.fail(step, error)
    with pytest.raises(EmailTransientError) as raised:
        sender(server).send(WELCOME)
    assert isinstance(raised.value, TransientError)
    assert raised.value.__cause__ is error


@pytest.mark.parametrize(
    ("step", "error"),
    [
        (
            "rcpt",
            smtplib.SMTPRecipientsRefused(
                {"ada@example.com": (550, b"5.1.1 <ada@example.com>: mailbox unknown")}
            ),
        ),
        ("mail", smtplib.SMTPSenderRefused(553, b"sender not allowed", "w@s.local")),
        ("data", smtplib.SMTPDataError(554, b"5.7.1 rejected as spam")),
        ("login", smtplib.SMTPAuthenticationError(535, b"bad credentials")),
        ("starttls", smtplib.SMTPNotSupportedError("STARTTLS extension not supported")),
    ],
)
def test_definitive_refusals_are_permanent(step: str, error: Exception) -> None:
    server = Server()
    server.fail(step, error)
    with pytest.raises(EmailRejectedError) as raised:
        sender(server, starttls=True, username="relay").send(WELCOME)
    assert isinstance(raised.value, PermanentError)


def test_replies_that_are_not_ok_become_the_matching_error() -> None:
    class Refusing(FakeSmtp):
        def rcpt(self, recipient: str) -> tuple[int, bytes]:
            self._step("rcpt")
            return 550, b"5.1.1 no such user"

    server = Server()
    smtp_sender = SmtpEmailSender(
        "mail.local",
        2525,
        mail_from="welcome@signup.local",
        smtp_factory=lambda host, port, timeout, deadline: Refusing(server, (host, port), timeout),
    )
    with pytest.raises(EmailRejectedError, match="SMTP 550"):
        smtp_sender.send(WELCOME)


def test_a_session_that_saw_a_refusal_is_not_reused() -> None:
    server = Server()
    smtp_sender = sender(server)
    server.fail("data", smtplib.SMTPDataError(554, b"rejected"))
    with pytest.raises(EmailRejectedError):
        smtp_sender.send(welcome(1))
    smtp_sender.send(welcome(2))
    assert len(server.sessions) == 2
    assert server.sessions[0].calls[-1] == "close"


def test_an_international_address_uses_smtputf8_when_offered() -> None:
    server = Server(extensions=("smtputf8",))
    sender(server).send(Email(KEY, "zoë@example.com", "Bienvenue", "Salut\n"))
    [smtp] = server.sessions
    assert smtp.mail_options == ["SMTPUTF8", "BODY=8BITMIME"]
    assert server.accepted[0]["To"] == "zoë@example.com"


def test_an_international_address_without_smtputf8_is_refused_for_good() -> None:
    with pytest.raises(EmailRejectedError, match="SMTPUTF8"):
        sender(Server(extensions=())).send(Email(KEY, "zoë@example.com", "Hi", "Hi\n"))


def test_errors_carry_the_reply_code_but_not_the_recipient_address() -> None:
    error = classify(
        smtplib.SMTPRecipientsRefused(
            {"ada@example.com": (550, b"5.1.1 <ada@example.com>: Recipient address rejected")}
        )
    )
    assert str(error) == "SMTP 550: 5.1.1 <a***@example.com>: Recipient address rejected"


def test_threads_sending_through_a_pool_of_two_never_share_a_session() -> None:
    server = Server(hold=0.0005)
    smtp_sender = sender(server, pool_size=2)
    start = threading.Barrier(8)
    errors: list[BaseException] = []

    def send_five(thread: int) -> None:
        start.wait()
        try:
            for number in range(5):
                smtp_sender.send(welcome(thread * 10 + number))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=send_five, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(server.accepted) == 40
    assert len(server.sessions) <= 2
    assert all(smtp.most_users == 1 for smtp in server.sessions)
    assert server.most_in_use <= 2


def test_close_quits_idle_sessions_and_those_in_use_when_their_send_ends() -> None:
    server = Server()
    smtp_sender = sender(server, pool_size=2)
    smtp_sender.send(welcome(1))
    in_use = smtp_sender._checkout(time.monotonic() + 30)
    smtp_sender.send(welcome(2))
    smtp_sender.close()
    assert server.sessions[1].calls[-1] == "quit"
    assert in_use.smtp is server.sessions[0] and "quit" not in in_use.smtp.calls
    smtp_sender._checkin(in_use)
    assert in_use.smtp.calls[-1] == "quit"
    assert not smtp_sender._idle


def test_a_failing_quit_on_close_is_not_an_error() -> None:
    server = Server()
    smtp_sender = sender(server)
    smtp_sender.send(WELCOME)
    server.fail("quit", GONE)
    smtp_sender.close()
    assert server.sessions[0].calls[-2:] == ["quit", "close"]


def test_the_fake_records_sends_and_raises_queued_failures() -> None:
    fake = FakeEmailSender(EmailTransientError("down"))
    with pytest.raises(EmailTransientError):
        fake.send(WELCOME)
    assert fake.send(WELCOME) == f"<{KEY}@signup.local>"
    assert fake.sent == [WELCOME]
    fake.close()
    assert fake.closed
