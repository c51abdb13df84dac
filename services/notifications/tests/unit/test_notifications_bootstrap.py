from email import message_from_bytes
from email.policy import default
from pathlib import Path
from types import MethodType
from typing import Any

import pytest
from pydantic import SecretStr

import notifications.__main__ as cli
from notifications import bootstrap, consumers
from notifications.actions import Channel
from notifications.settings import NotificationsSettings
from signup_contracts import UserErasureRequested
from signup_shared.events import UserSignedUp, UserSignedUpV2
from signup_shared.outbox.relay import OutboxRelay


@pytest.fixture(autouse=True)
def _not_our_parent(monkeypatch: pytest.MonkeyPatch) -> None:
    """``main`` would ask the kernel to end the test run itself with its parent (and watch it)."""
    monkeypatch.setattr("signup_shared.cli.lifecycle.die_with_parent", lambda: True)


def test_the_queue_takes_user_signed_up_from_accounts_with_the_configured_retries() -> None:
    settings = NotificationsSettings(retry_delays=[500, 5_000], delivery_limit=4)
    queue, erasures = bootstrap.queues(settings)
    assert (queue.name, queue.routing_key, queue.other_keys) == (
        "notifications.user_signed_up",
        "accounts.user_signed_up.v2",  # the default: it reads v2
        ("accounts.user_signed_up",),  # unbound at start
    )
    assert (erasures.name, erasures.routing_key) == (
        "notifications.user_erasure_requested",
        "accounts.user_erasure_requested",
    )
    assert (queue.retry_delays_ms, queue.delivery_limit) == ((500, 5_000), 4)
    assert queue.dlq_name == "notifications.user_signed_up.dlq"


def test_the_version_setting_binds_the_queue_to_v1(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NOTIFICATIONS_USER_SIGNED_UP_VERSION", "1")
    queue, _ = bootstrap.queues(NotificationsSettings())
    assert (queue.name, queue.routing_key, queue.other_keys) == (
        "notifications.user_signed_up",  # the same queue, whatever the version
        "accounts.user_signed_up",
        ("accounts.user_signed_up.v2",),
    )


def test_a_version_the_handler_does_not_read_stops_the_start() -> None:
    with pytest.raises(ValueError, match="NOTIFICATIONS_USER_SIGNED_UP_VERSION=3"):
        bootstrap.queues(NotificationsSettings(user_signed_up_version=3))


def test_the_worker_delivers_on_a_lane_per_channel_and_sweeps_beside_consuming() -> None:
    settings = NotificationsSettings(
        delivery_concurrency=3,
        sweep_interval_seconds=7.0,
        consumer_health_port=9001,
        delivery_wait_seconds=0.75,
    )
    worker = bootstrap.consumer_worker(settings)
    try:
        subscription, erasures = worker.subscriptions()
        assert subscription.events == (UserSignedUp, UserSignedUpV2)
        assert erasures.events == (UserErasureRequested,)
        assert subscription.batch_handler is not None
        assert set(worker.dependencies) == {"delivery"}
        delivery = worker.dependencies["delivery"]
        assert isinstance(delivery, consumers.Delivery)
        assert delivery.lanes.workers_per_channel == {"email": 3, "sms": 3}
        assert delivery.wait == 0.75
        assert [(job.name, job.interval) for job in worker.jobs] == [
            ("notifications.sweep", 7.0),
            ("notifications.prune_outbox", 3600.0),
        ]
        # the erasure relay waits for commits (LISTEN) instead of polling every second
        [relay] = worker.loops
        assert relay.name == "notifications.relay_erasures"
        assert isinstance(relay.run, MethodType) and relay.run.__func__ is OutboxRelay.follow
        assert relay.run.__self__.poll_interval == 30.0
        assert worker.health_port == 9001
    finally:
        assert worker.on_close is not None
        worker.on_close()
        worker.engine.dispose()


def test_the_email_sender_is_configured_from_settings() -> None:
    settings = NotificationsSettings(
        smtp_host="smtp.local",
        smtp_port=587,
        smtp_username="relay",
        smtp_password=SecretStr("pw"),
        smtp_timeout_seconds=4.0,
        smtp_deadline_seconds=12.5,
        mail_from="Team <hi@signup.local>",
    )
    sender = bootstrap.email_sender(settings)
    assert (sender.host, sender.port, sender.timeout) == ("smtp.local", 587, 4.0)
    assert sender.deadline == 12.5
    assert (sender.username, sender.password, sender.mail_from) == (
        "relay",
        "pw",
        "Team <hi@signup.local>",
    )
    assert sender.starttls is False and sender.tls_context is None


def test_the_cli_offers_the_service_commands() -> None:
    assert sorted(cli.COMMANDS) == ["consume", "migrate", "sweep", "topology"]
    with pytest.raises(SystemExit):
        cli.main(["publish"])


def test_the_cli_runs_the_chosen_command_with_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    ran: list[tuple[str, Any]] = []
    monkeypatch.setattr(
        "signup_shared.cli.configure_logging", lambda *args: ran.append(("logging", args[0]))
    )
    monkeypatch.setitem(cli.COMMANDS, "sweep", lambda settings: ran.append(("sweep", settings)))
    cli.main(["sweep"])
    assert ran[0] == ("logging", "notifications-sweep")
    assert ran[1][0] == "sweep" and isinstance(ran[1][1], NotificationsSettings)


def test_the_senders_keep_as_many_connections_as_deliveries_run_at_once() -> None:
    settings = NotificationsSettings(delivery_concurrency=6, sms_deadline_seconds=7.5)
    email, sms = bootstrap.email_sender(settings), bootstrap.sms_sender(settings)
    try:
        assert sms.limits.max_connections == 6
        assert sms.deadline == 7.5
        assert email._slots._value == 6  # type: ignore[attr-defined]
    finally:
        email.close()
        sms.close()


class Waiting:
    def __init__(self, answer: Any) -> None:
        self.answer = answer

    def pending_by_channel(self) -> Any:
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


def test_the_pending_deliveries_gauges_show_every_channel() -> None:
    collector = bootstrap.PendingDeliveries(Waiting({Channel.EMAIL: (4, 95.5)}))  # type: ignore[arg-type]
    pending, oldest = collector.collect()
    assert [(s.labels["channel"], s.value) for s in pending.samples] == [("email", 4), ("sms", 0)]
    assert oldest.name == "signup_notifications_oldest_pending_delivery_seconds"
    assert [(s.labels["channel"], s.value) for s in oldest.samples] == [
        ("email", 95.5),
        ("sms", 0.0),
    ]


def test_the_gauges_report_nothing_while_the_database_is_away() -> None:
    assert list(bootstrap.PendingDeliveries(Waiting(OSError("down"))).collect()) == []  # type: ignore[arg-type]


def test_preview_writes_an_eml_and_its_html_for_a_plan(tmp_path: Path) -> None:
    out = tmp_path / "preview" / "team.eml"
    cli.main(["preview", "--plan", "team", "--out", str(out)])
    mail = message_from_bytes(out.read_bytes(), policy=default)
    assert mail.get_content_type() == "multipart/alternative"
    assert [part.get_content_type() for part in mail.iter_parts()] == ["text/plain", "text/html"]
    page = out.with_suffix(".html").read_text(encoding="utf-8")
    assert "Invite your teammates" in page and page.startswith("<!DOCTYPE html>")
    assert mail["Content-Language"] == "en"


def test_preview_renders_a_locale_and_says_when_it_falls_back_to_english(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    german = tmp_path / "de.eml"
    cli.main(["preview", "--plan", "team", "--locale", "de-AT", "--out", str(german)])
    mail = message_from_bytes(german.read_bytes(), policy=default)
    assert (mail["Subject"], mail["Content-Language"]) == (
        "Willkommen bei Signup Platform, Ada!",
        "de",
    )
    assert "Laden Sie Ihre Teammitglieder ein" in german.with_suffix(".html").read_text("utf-8")
    assert "no catalog" not in capsys.readouterr().err
    cli.main(["preview", "--plan", "team", "--locale", "de_DE", "--out", str(german)])
    assert "no catalog" not in capsys.readouterr().err
    french = tmp_path / "fr.eml"
    cli.main(["preview", "--plan", "team", "--locale", "fr", "--out", str(french)])
    assert "no catalog for 'fr': the welcome is in en" in capsys.readouterr().err
    assert message_from_bytes(french.read_bytes(), policy=default)["Content-Language"] == "en"
