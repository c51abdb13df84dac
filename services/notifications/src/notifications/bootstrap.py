"""Wiring: builds the real dependencies of each notifications process from settings."""

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from notifications import consumers, models
from notifications.actions import DeliveryResult
from notifications.adapters.email import EmailSender, SmtpEmailSender
from notifications.adapters.sms import HttpSmsGateway
from notifications.settings import NotificationsSettings
from signup_shared import worker
from signup_shared.db import open_database
from signup_shared.messaging.topology import ConsumerQueue

SERVICE = "notifications"


def queues(settings: NotificationsSettings) -> list[ConsumerQueue]:
    return worker.queues(SERVICE, settings, consumers.SUBSCRIPTIONS)


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
        pool_size=settings.delivery_concurrency,
    )


def sms_sender(settings: NotificationsSettings) -> HttpSmsGateway:
    return HttpSmsGateway(
        settings.sms_base_url,
        settings.sms_token.get_secret_value(),
        timeout=settings.sms_timeout,
        max_connections=settings.delivery_concurrency,
    )


@dataclass
class Deliverers:
    """What delivering needs (the subscription's and the sweeper's), and how to let go of it."""

    settings: NotificationsSettings
    engine: Engine
    sessions: sessionmaker[Session]
    email: EmailSender
    sms: HttpSmsGateway
    pool: ThreadPoolExecutor = field(init=False)

    def __post_init__(self) -> None:
        self.pool = ThreadPoolExecutor(
            max_workers=max(1, self.settings.delivery_concurrency),
            thread_name_prefix="deliver",
        )

    def sweep(self) -> list[DeliveryResult]:
        return consumers.sweep(
            self.sessions,
            self.email,
            self.sms,
            grace=timedelta(seconds=self.settings.sweep_grace),
            batch_size=self.settings.sweep_batch_size,
        )

    def dependencies(self) -> dict[str, object]:
        return {"sessions": self.sessions, "email": self.email, "sms": self.sms, "pool": self.pool}

    def close(self) -> None:
        """Let running sends finish before their clients go away."""
        self.pool.shutdown(wait=True)
        self.email.close()
        self.sms.close()


def deliverers(settings: NotificationsSettings) -> Deliverers:
    engine, sessions = database(settings)
    return Deliverers(settings, engine, sessions, email_sender(settings), sms_sender(settings))


def consumer_worker(settings: NotificationsSettings) -> worker.ConsumerWorker:
    """Consume ``UserSignedUp``; beside it, sweep stale notifications and prune the inbox."""
    parts = deliverers(settings)
    return worker.ConsumerWorker(
        SERVICE,
        settings,
        consumers.SUBSCRIPTIONS,
        parts.engine,
        parts.sessions,
        models.InboxMessage,
        health_port=settings.http_port,
        dependencies=parts.dependencies(),
        jobs=[worker.Job("notifications.sweep", settings.sweep_interval, parts.sweep)],
        inbox_prune_interval=settings.inbox_prune_interval,
        on_close=parts.close,
    )
