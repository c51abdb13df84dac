import pytest

from audit import __main__ as cli
from audit import bootstrap
from audit.models import InboxMessage
from audit.settings import AuditSettings
from signup_shared.events import UserSignedUp, UserSignedUpV2


@pytest.fixture(autouse=True)
def _not_our_parent(monkeypatch: pytest.MonkeyPatch) -> None:
    """``main`` would ask the kernel to end the test run itself with its parent (and watch it)."""
    monkeypatch.setattr("signup_shared.cli.lifecycle.die_with_parent", lambda: True)


@pytest.fixture
def settings(monkeypatch: pytest.MonkeyPatch) -> AuditSettings:
    monkeypatch.delenv("AUDIT_CATCH_UP_FROM", raising=False)
    return AuditSettings(
        retry_delays=[1_000, 5_000],
        delivery_limit=4,
        consumer_batch_size=7,
        consumer_health_port=9014,
    )


def test_one_queue_named_after_the_service_bound_to_the_signups(settings) -> None:
    [queue] = bootstrap.queues(settings)

    assert (queue.name, queue.routing_key, queue.other_keys) == (
        "audit.user_signed_up",
        "accounts.user_signed_up.v2",  # the default version (AUDIT_USER_SIGNED_UP_VERSION)
        ("accounts.user_signed_up",),
    )
    assert (queue.retry_delays_ms, queue.delivery_limit) == ((1_000, 5_000), 4)


def test_the_worker_consumes_the_queue_with_both_versions_in_batches(settings) -> None:
    worker = bootstrap.consumer_worker(settings)
    runtime = worker.runtime()

    [subscription] = runtime.subscriptions
    assert subscription.events == (UserSignedUp, UserSignedUpV2)
    assert subscription.batch_handler is not None
    assert (runtime.service, runtime.batch_size) == ("audit", 7)
    assert (worker.health_port, worker.inbox_model) == (9014, InboxMessage)
    worker.engine.dispose()


def test_settings_follow_the_other_services(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUDIT_CATCH_UP_FROM", "first")
    monkeypatch.setenv("AUDIT_CONSUMER_HEALTH_PORT", "9999")

    settings = AuditSettings()

    assert (settings.catch_up_from, settings.consumer_health_port) == ("first", 9999)
    assert settings.database_url.endswith("/audit") and "audit:" in settings.amqp_url


def test_the_cli_offers_the_consumer_commands_and_catch_up(capsys) -> None:
    with pytest.raises(SystemExit):
        cli.main(["web"])

    assert "invalid choice: 'web'" in capsys.readouterr().err
    assert cli.COMMANDS.keys() == {"consume", "migrate", "topology"}


def test_catch_up_sets_the_start_and_exits_after_it(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[AuditSettings] = []
    monkeypatch.setattr(cli, "run_worker", lambda worker: seen.append(worker.settings))
    monkeypatch.setattr(
        bootstrap, "consumer_worker", lambda settings: type("W", (), {"settings": settings})()
    )
    monkeypatch.setattr("signup_shared.cli.configure_logging", lambda *_args: None)
    monkeypatch.setitem(cli.COMMANDS, "consume", cli.consume)

    cli.main(["catch-up", "--from", "2026-01-01T00:00:00Z"])
    cli.main(["consume", "--catch-up-from", "first"])

    assert [(s.catch_up_from, s.catch_up_then_exit) for s in seen] == [
        ("2026-01-01T00:00:00Z", True),
        ("first", False),
    ]
