"""Wiring: builds the real dependencies of each notifications process from settings."""

import threading
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from notifications import consumers, models
from notifications.actions import DeliveryResult
from notifications.adapters.email import EmailSender, SmtpEmailSender
from notifications.adapters.sms import HttpSmsGateway, SmsSender
from notifications.settings import NotificationsSettings
from signup_shared.db import open_database
from signup_shared.events import Envelope, UserSignedUp
from signup_shared.messaging import topology
from signup_shared.messaging.consumer import ConsumerRuntime, Handler, Subscription
from signup_shared.messaging.handlers import exactly_once, session_handler
from signup_shared.messaging.topology import ConsumerQueue
from signup_shared.periodic import every
from signup_shared.process import Check, database_ready

SERVICE = "notifications"


def user_signed_up_queue(settings: NotificationsSettings) -> ConsumerQueue:
    return topology.consumer_queue(
        SERVICE, "accounts", "user_signed_up", settings.retry_delays, settings.delivery_limit
    )


def queues(settings: NotificationsSettings) -> list[ConsumerQueue]:
    return [user_signed_up_queue(settings)]


def database(settings: NotificationsSettings) -> tuple[Engine, sessionmaker[Session]]:
    return open_database(settings.database_url, settings.database_pool_size)


def email_sender(settings: NotificationsSettings) -> SmtpEmailSender:
    password = settings.smtp_password.get_secret_value() if settings.smtp_password else None
    return SmtpEmailSender(
        settings.smtp_host,
        settings.smtp_port,
        mail_from=settings.mail_from,
        starttls=settings.smtp_starttls,
        username=settings.smtp_username,
        password=password,
        timeout=settings.smtp_timeout,
    )


def sms_sender(settings: NotificationsSettings) -> HttpSmsGateway:
    return HttpSmsGateway(
        settings.sms_base_url, settings.sms_token.get_secret_value(), timeout=settings.sms_timeout
    )


def user_signed_up_handler(
    sessions: sessionmaker[Session], consumer: str, email: EmailSender, sms: SmsSender
) -> Handler:
    """Record the welcome notifications exactly once, then deliver what the event still owes.

    A redelivery finds the recording done (inbox) but still delivers what is pending: that is
    how the broker's retries reach a notification whose first sending failed.
    """
    record = session_handler(
        sessions, exactly_once(consumer, models.InboxMessage, consumers.on_user_signed_up)
    )

    def handle(envelope: Envelope[Any]) -> None:
        record(envelope)
        consumers.deliver_for_event(sessions, email, sms, envelope.id)

    return handle


@dataclass
class Worker:
    """Everything a consume or sweep process holds, and how to let go of it."""

    settings: NotificationsSettings
    engine: Engine
    sessions: sessionmaker[Session]
    email: EmailSender
    sms: HttpSmsGateway
    jobs: list[threading.Thread] = field(default_factory=list)

    def sweep(self) -> list[DeliveryResult]:
        return consumers.sweep(
            self.sessions,
            self.email,
            self.sms,
            grace=timedelta(seconds=self.settings.sweep_grace),
            batch_size=self.settings.sweep_batch_size,
        )

    def prune_inbox(self) -> int:
        return consumers.prune_inbox(
            self.sessions, timedelta(days=self.settings.inbox_retention_days)
        )

    def consumer(self) -> ConsumerRuntime:
        queue = user_signed_up_queue(self.settings)
        handler = user_signed_up_handler(self.sessions, queue.name, self.email, self.sms)
        return ConsumerRuntime(
            SERVICE,
            self.settings.amqp_url,
            [Subscription(queue, (UserSignedUp,), handler)],
            prefetch=self.settings.prefetch_count,
            heartbeat=self.settings.amqp_heartbeat,
            confirm_timeout=self.settings.confirm_timeout,
        )

    def start_background_jobs(self, stop: threading.Event) -> None:
        self.jobs = [
            every(self.settings.sweep_interval, self.sweep, stop, "notifications.sweep"),
            every(self.settings.inbox_prune_interval, self.prune_inbox, stop,
                  "notifications.prune_inbox"),
        ]

    def close(self) -> None:
        """Let a running sweep finish its current send before its clients go away."""
        for job in self.jobs:
            job.join(timeout=self.settings.smtp_timeout + self.settings.sms_timeout)
        self.sms.close()
        self.engine.dispose()


def worker(settings: NotificationsSettings) -> Worker:
    engine, sessions = database(settings)
    return Worker(settings, engine, sessions, email_sender(settings), sms_sender(settings))


def health_checks(engine: Engine, runtime: ConsumerRuntime) -> dict[str, Check]:
    return {"database": database_ready(engine), "broker": lambda: runtime.connected}


