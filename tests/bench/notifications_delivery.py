"""Micro benchmark: CPU per signup of notifications' own work, run by hand.

    .venv/bin/python tests/bench/notifications_delivery.py [--signups N] [--batch B]
                                                            [--profile FILE]

Through the real subscription code (``on_user_signed_up`` in a transaction per batch, as the
runtime does after its inbox claim, then ``deliver_welcome`` on the channel lanes), a scratch
PostgreSQL database with the migrations applied, the real ``SmtpEmailSender`` (message built and
flattened) talking to a null SMTP session, and the fake SMS sender. JSON logs at INFO to
/dev/null, as in production. Prints this process's CPU (utime+stime, every thread) per signup,
the SQL statements per signup, and with ``--profile`` writes a cProfile of the main thread's
recording plus a profile of one synchronous delivery loop.
"""

import argparse
import cProfile
import os
import smtplib
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from pathlib import Path
from typing import TypeVar, cast

from sqlalchemy import event
from sqlalchemy.orm import Session, sessionmaker

import notifications
from notifications import consumers
from notifications.actions import DeliveryResult, Senders
from notifications.adapters.channel_pools import ChannelPools
from notifications.adapters.smtp import SmtpEmailSender
from notifications.testing import FakeSmsSender
from signup_contracts.testing import user_signed_up
from signup_shared.db import make_read_session_factory, make_session_factory
from signup_shared.events import Envelope, UserSignedUp
from signup_shared.logging import configure_logging
from signup_shared.testing import migrated_database

MIGRATIONS = Path(notifications.__file__).parent / "migrations"
T = TypeVar("T")


class NullSmtp:
    """An SMTP session that accepts everything at no cost (the sink's CPU is not ours)."""

    does_esmtp = True

    def __init__(self, *_args: object, **_kwargs: object) -> None:
        self.sizes: list[int] = []

    def ehlo_or_helo_if_needed(self) -> None:
        return None

    def has_extn(self, name: str) -> bool:
        return name == "size"

    def mail(self, _sender: str, _options: Sequence[str]) -> tuple[int, bytes]:
        return 250, b"OK"

    def rcpt(self, _recipient: str) -> tuple[int, bytes]:
        return 250, b"OK"

    def data(self, content: bytes) -> tuple[int, bytes]:
        self.sizes.append(len(content))
        return 250, b"OK"

    def noop(self) -> tuple[int, bytes]:
        return 250, b"OK"

    def quit(self) -> None:
        return None

    def close(self) -> None:
        return None


class InlineLanes(ChannelPools[uuid.UUID, DeliveryResult]):
    """Runs each delivery in the caller's thread (for a profile of one thread)."""

    def __init__(self) -> None:
        super().__init__([], 1)

    def submit(self, key: uuid.UUID, channel: str, job: Callable[[], T]) -> "Future[T]":  # type: ignore[override]
        future: Future[T] = Future()
        future.set_result(job())
        return future


def events(count: int) -> list[Envelope[UserSignedUp]]:
    return [
        user_signed_up(
            email=f"user{n}-{uuid.uuid4().hex[:8]}@example.com",
            full_name="Zoë Ångström" if n % 4 == 0 else "Ada Lovelace",
            phone="+14155550123" if n % 2 == 0 else None,
        )
        for n in range(count)
    ]


def run(
    sessions: sessionmaker[Session],
    batches: list[list[Envelope[UserSignedUp]]],
    lanes: ChannelPools[uuid.UUID, DeliveryResult],
    reads: sessionmaker[Session] | None = None,
) -> None:
    email = SmtpEmailSender(
        "127.0.0.1",
        25,
        mail_from="Signup Platform <welcome@signup.local>",
        smtp_factory=cast(Callable[..., smtplib.SMTP], NullSmtp),
    )
    delivery = consumers.Delivery(
        sessions, Senders(email, FakeSmsSender()), lanes, wait=None, reads=reads
    )
    for batch in batches:
        with sessions() as session, session.begin():
            batch_step = consumers.on_user_signed_up.batch_step
            if batch_step is not None:
                batch_step(session, batch)
            else:
                for envelope in batch:
                    consumers.on_user_signed_up(session, envelope)
        errors = consumers.deliver_welcome(batch, delivery=delivery)
        assert not errors, errors
    email.close()


def cpu() -> float:
    times = os.times()
    return times.user + times.system


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--signups", type=int, default=2000)
    parser.add_argument("--batch", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--profile", type=Path)
    args = parser.parse_args()
    sys.stdout = sys.stderr = open(os.devnull, "w")  # noqa: SIM115 - the JSON logs go nowhere
    report = sys.__stdout__
    assert report is not None
    configure_logging("notifications", "INFO", "json")
    with migrated_database("notifbench", MIGRATIONS) as engine:
        sessions = make_session_factory(engine)
        reads = make_read_session_factory(engine)  # as bootstrap wires it
        statements = [0]
        event.listen(
            engine,
            "before_cursor_execute",
            lambda *_a: statements.__setitem__(0, statements[0] + 1),
        )

        def batched(count: int) -> list[list[Envelope[UserSignedUp]]]:
            made = events(count)
            return [made[i : i + args.batch] for i in range(0, count, args.batch)]

        lanes: ChannelPools[uuid.UUID, DeliveryResult] = ChannelPools(["email", "sms"], 4)
        try:
            run(sessions, batched(args.warmup), lanes, reads)
            measured = batched(args.signups)
            statements[0] = 0
            started_cpu, started = cpu(), time.perf_counter()
            run(sessions, measured, lanes, reads)
            used, elapsed = cpu() - started_cpu, time.perf_counter() - started
        finally:
            lanes.shutdown()
        print(
            f"{args.signups} signups (1 email each, SMS for half), batch {args.batch}: "
            f"{used / args.signups * 1000:.2f} ms CPU per signup, "
            f"{statements[0] / args.signups:.1f} SQL statements per signup, "
            f"{args.signups / elapsed:.0f} signups/s wall",
            file=report,
        )
        if args.profile:
            profiler = cProfile.Profile()
            profiler.enable()
            run(sessions, batched(args.signups // 2), InlineLanes(), reads)
            profiler.disable()
            profiler.dump_stats(args.profile)
            print(
                f"profile of {args.signups // 2} signups in one thread: {args.profile}", file=report
            )
        engine.dispose()


if __name__ == "__main__":
    main()
