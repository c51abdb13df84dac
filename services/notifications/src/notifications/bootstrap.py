"""Wiring: builds the real dependencies of each notifications process from settings."""

import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import timedelta

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from notifications import consumers, erasure_models, models, templates
from notifications.actions import Channel, DeliveryResult, Senders
from notifications.adapters.channel_pools import ChannelPools
from notifications.adapters.sms import HttpSmsGateway
from notifications.adapters.smtp import SmtpEmailSender
from notifications.settings import NotificationsSettings
from signup_shared import metrics, worker
from signup_shared.db import make_read_session_factory, open_database
from signup_shared.messaging.topology import ConsumerQueue
from signup_shared.outbox.relay import OutboxRelay
from signup_shared.outbox.runner import relay_from_settings

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
        timeout=settings.smtp_timeout_seconds,
        deadline=settings.smtp_deadline_seconds,
        pool_size=settings.delivery_concurrency,
    )


def sms_sender(settings: NotificationsSettings) -> HttpSmsGateway:
    return HttpSmsGateway(
        settings.sms_base_url,
        settings.sms_token.get_secret_value(),
        timeout=settings.sms_timeout_seconds,
        deadline=settings.sms_deadline_seconds,
        max_connections=settings.delivery_concurrency,
    )


class PendingDeliveries(Collector):
    """Notifications waiting per channel and the age of the oldest, read at scrape time."""

    def __init__(self, delivery: consumers.Delivery) -> None:
        self.delivery = delivery

    def collect(self) -> Iterable[GaugeMetricFamily]:
        pending = GaugeMetricFamily(
            "signup_notifications_pending",
            "Notifications owed and not yet sent or given up, by channel.",
            labels=["channel"],
        )
        oldest = GaugeMetricFamily(
            "signup_notifications_oldest_pending_delivery_seconds",
            "Age of the oldest notification still owed, by channel (0 when none).",
            labels=["channel"],
        )
        try:
            waiting = self.delivery.pending_by_channel()
        except Exception:  # the database is away: report nothing rather than fail the scrape
            return []
        for channel in Channel:
            count, age = waiting.get(channel, (0, 0.0))
            pending.add_metric([channel.value], count)
            oldest.add_metric([channel.value], age)
        return [pending, oldest]


@dataclass
class Deliverers:
    """What delivering needs (the subscription's and the sweeper's), and how to let go of it."""

    settings: NotificationsSettings
    engine: Engine
    sessions: sessionmaker[Session]
    email: SmtpEmailSender
    sms: HttpSmsGateway
    delivery: consumers.Delivery = field(init=False)

    def __post_init__(self) -> None:
        lanes: ChannelPools[uuid.UUID, DeliveryResult] = ChannelPools(
            [channel.value for channel in Channel], self.settings.delivery_concurrency
        )
        self.delivery = consumers.Delivery(
            self.sessions,
            Senders(self.email, self.sms),
            lanes,
            wait=self.settings.delivery_wait_seconds,
            reads=make_read_session_factory(self.engine),
        )

    def sweep(self) -> list[DeliveryResult]:
        return self.delivery.sweep(
            timedelta(seconds=self.settings.sweep_grace_seconds), self.settings.sweep_batch_size
        )

    def dependencies(self) -> dict[str, object]:
        return {"delivery": self.delivery}

    def close(self) -> None:
        """Let running sends finish (each within its deadline) before their clients go away."""
        self.delivery.lanes.shutdown(wait_seconds=max(self.email.deadline, self.sms.deadline))
        self.email.close()
        self.sms.close()


def deliverers(settings: NotificationsSettings) -> Deliverers:
    templates.warm_up()  # a broken template file fails the start, not the first send
    engine, sessions = database(settings)
    return Deliverers(settings, engine, sessions, email_sender(settings), sms_sender(settings))


def consumer_worker(settings: NotificationsSettings) -> worker.ConsumerWorker:
    """Consume ``UserSignedUp``; beside it, sweep stale notifications and prune the inbox;
    ``/metrics`` shows what waits on each channel."""
    parts = deliverers(settings)
    collector = PendingDeliveries(parts.delivery)
    metrics.register(collector)

    relay = erasure_relay(settings, parts.engine)

    def close() -> None:
        metrics.unregister(collector)
        relay.close()
        parts.close()

    return worker.ConsumerWorker(
        SERVICE,
        settings,
        consumers.SUBSCRIPTIONS,
        parts.engine,
        parts.sessions,
        models.InboxMessage,
        health_port=settings.consumer_health_port,
        dependencies=parts.dependencies(),
        jobs=[
            worker.Job("notifications.sweep", settings.sweep_interval_seconds, parts.sweep),
            worker.Job(f"{SERVICE}.prune_outbox", 3600.0, relay.prune),
        ],
        loops=[worker.Loop(f"{SERVICE}.relay_erasures", relay.follow)],
        inbox_prune_interval=settings.inbox_prune_interval_seconds,
        on_close=close,
    )


def erasure_relay(settings: NotificationsSettings, engine: Engine) -> OutboxRelay:
    """The relay of the ``UserErased`` outbox, run in the consumer process (woken at commit,
    a safety poll every ``erasure_relay_interval_seconds``): erasures are rare, so no relay
    process of its own (a deployment adds one by the same parts)."""
    return relay_from_settings(
        settings,
        engine,
        erasure_models.OutboxMessage,
        batch_size=100,
        poll_interval=settings.erasure_relay_interval_seconds,
        service=SERVICE,
    )
