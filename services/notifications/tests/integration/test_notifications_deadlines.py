"""Deadlines and channels apart, over real sockets: a mail server that drips one byte at a time
or never answers is given up on at the deadline, and SMS go out meanwhile."""

import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from devsinks.reading import read_sms
from devsinks.sms_http import SmsSink
from notifications.actions import Channel, DeliveryResult, Outcome, PendingRef, Senders
from notifications.adapters.channel_pools import ChannelPools
from notifications.adapters.email_message import Email
from notifications.adapters.sms import HttpSmsGateway, Sms, SmsTransientError
from notifications.adapters.smtp import EmailTransientError, SmtpEmailSender

pytestmark = pytest.mark.integration
TOKEN = "deadline-token"
GREETING = b"220 slow.example ESMTP\r\n"


class SlowServer:
    """Accepts connections, then sends ``reply`` one byte every ``every`` seconds (an empty
    reply: never says anything). Keeps each connection open until stopped."""

    def __init__(self, reply: bytes, every: float) -> None:
        self.reply, self.every = reply, every
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.05)  # so that stopping is noticed between accepts
        self.port: int = self.listener.getsockname()[1]
        self.stopping = threading.Event()
        self.accepted = 0
        self.thread = threading.Thread(target=self._serve, daemon=True)

    def __enter__(self) -> "SlowServer":
        self.thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stopping.set()
        self.thread.join(5)
        self.listener.close()

    def _serve(self) -> None:
        while not self.stopping.is_set():
            try:
                connection, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.accepted += 1
            threading.Thread(target=self._drip, args=(connection,), daemon=True).start()

    def _drip(self, connection: socket.socket) -> None:
        with connection:
            for byte in self.reply:
                if self.stopping.wait(self.every):
                    return
                try:
                    connection.sendall(bytes([byte]))
                except OSError:
                    return
            self.stopping.wait()


def email_sender(port: int, deadline: float) -> SmtpEmailSender:
    return SmtpEmailSender(
        "127.0.0.1", port, mail_from="Signup <w@signup.local>", timeout=5.0, deadline=deadline
    )


WELCOME = Email(uuid.uuid4(), "ada@example.com", "Welcome", "Hi\n")


@pytest.mark.parametrize(
    ("reply", "every"),
    [(GREETING * 100, 0.05), (b"", 1.0)],
    ids=["drips-one-byte-at-a-time", "never-answers"],
)
def test_an_smtp_send_ends_at_its_deadline_as_a_transient_failure(
    reply: bytes, every: float
) -> None:
    with SlowServer(reply, every) as server:
        sender = email_sender(server.port, deadline=0.6)
        started = time.monotonic()
        with pytest.raises(EmailTransientError, match=r"deadline"):
            sender.send(WELCOME)
        elapsed = time.monotonic() - started
        sender.close()
    assert 0.5 <= elapsed < 1.5
    assert server.accepted == 1


def test_an_sms_send_ends_at_its_total_deadline_though_every_read_succeeds() -> None:
    answer = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 20\r\n\r\n"
    with SlowServer(answer * 10, 0.05) as server:
        gateway = HttpSmsGateway(
            f"http://127.0.0.1:{server.port}", TOKEN, timeout=5.0, deadline=0.6
        )
        started = time.monotonic()
        with pytest.raises(SmsTransientError, match="deadline"):
            gateway.send(Sms(uuid.uuid4(), "+14155550123", "Welcome"))
        elapsed = time.monotonic() - started
        gateway.close()
    assert 0.5 <= elapsed < 1.5


@pytest.fixture
def sms_sink(tmp_path: Path) -> Iterator[SmsSink]:
    with SmsSink(tmp_path / "sms", port=0, token=TOKEN) as sink:
        yield sink


def test_sms_go_out_at_once_while_the_mail_server_is_stuck(
    sms_sink: SmsSink, tmp_path: Path
) -> None:
    """Both lanes as the worker runs them, with the real senders: the emails wait for their
    deadline on their own lane; every SMS is stored within a fraction of it."""
    with SlowServer(GREETING * 100, 0.05) as smtp:
        email = email_sender(smtp.port, deadline=1.5)
        sms = HttpSmsGateway(sms_sink.url, TOKEN, max_connections=2)
        senders = Senders(email, sms)
        lanes: ChannelPools[uuid.UUID, DeliveryResult] = ChannelPools(["email", "sms"], 2)
        emails = [uuid.uuid4() for _ in range(4)]
        texts = [uuid.uuid4() for _ in range(10)]

        def job(notification_id: uuid.UUID, channel: Channel) -> DeliveryResult:
            try:
                if channel is Channel.EMAIL:
                    senders.email.send(Email(notification_id, "ada@example.com", "Hi", "Hi\n"))
                else:
                    senders.sms.send(Sms(notification_id, "+14155550123", "Welcome"))
            except (EmailTransientError, SmsTransientError) as exc:
                return DeliveryResult(notification_id, Outcome.RETRY_LATER, exc)
            return DeliveryResult(notification_id, Outcome.SENT)

        def bound(ref: PendingRef) -> Callable[[], DeliveryResult]:
            return lambda: job(ref.id, ref.channel)

        pending = [PendingRef(uuid.uuid4(), i, Channel.EMAIL) for i in emails] + [
            PendingRef(uuid.uuid4(), i, Channel.SMS) for i in texts
        ]
        try:
            started = time.monotonic()
            first = lanes.run(
                [(r.id, r.channel.value, bound(r)) for r in pending],
                wait=0.8,
            )
            sms_done = time.monotonic() - started
            assert set(first) == set(texts)  # every SMS, no email yet
            assert sms_done < 1.0
            emails_again = [r for r in pending if r.channel is Channel.EMAIL]
            later = lanes.run([(r.id, "email", bound(r)) for r in emails_again], None)
            emails_done = time.monotonic() - started
        finally:
            lanes.shutdown(wait_seconds=10)
            email.close()
            sms.close()
    assert {r.outcome for r in later.values()} == {Outcome.RETRY_LATER}
    assert emails_done < 2 * 1.5 + 1.0  # two rounds of two sessions, each within its deadline
    assert len(read_sms(tmp_path / "sms")) == len(texts)
