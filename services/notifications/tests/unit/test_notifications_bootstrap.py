from typing import Any

import pytest
from pydantic import SecretStr

import notifications.__main__ as cli
from notifications import bootstrap
from notifications.settings import NotificationsSettings
from signup_shared.events import UserSignedUp


def test_the_queue_takes_user_signed_up_from_accounts_with_the_configured_retries() -> None:
    settings = NotificationsSettings(retry_delays=[500, 5_000], delivery_limit=4)
    [queue] = bootstrap.queues(settings)
    assert (queue.name, queue.routing_key) == (
        "notifications.user_signed_up",
        "accounts.user_signed_up",
    )
    assert (queue.retry_delays_ms, queue.delivery_limit) == ((500, 5_000), 4)
    assert queue.dlq_name == "notifications.user_signed_up.dlq"


def test_the_worker_delivers_on_a_bounded_pool_and_sweeps_beside_consuming() -> None:
    settings = NotificationsSettings(delivery_concurrency=3, sweep_interval=7.0, http_port=9001)
    worker = bootstrap.consumer_worker(settings)
    try:
        [subscription] = worker.subscriptions()
        assert subscription.events == (UserSignedUp,)
        assert subscription.batch_handler is not None
        assert set(worker.dependencies) == {"sessions", "email", "sms", "pool"}
        assert worker.dependencies["pool"]._max_workers == 3  # type: ignore[attr-defined]
        assert [(job.name, job.interval) for job in worker.jobs] == [("notifications.sweep", 7.0)]
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
        smtp_timeout=4.0,
        mail_from="Team <hi@signup.local>",
    )
    sender = bootstrap.email_sender(settings)
    assert (sender.host, sender.port, sender.timeout) == ("smtp.local", 587, 4.0)
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
    settings = NotificationsSettings(delivery_concurrency=6)
    email, sms = bootstrap.email_sender(settings), bootstrap.sms_sender(settings)
    try:
        assert sms.limits.max_connections == 6
        assert email._slots._value == 6  # type: ignore[attr-defined]
    finally:
        email.close()
        sms.close()
