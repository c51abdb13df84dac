import pytest

from stats.settings import StatsSettings


def test_defaults_work_on_a_developer_machine(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "AMQP_URL",
        "STATS_AMQP_URL",
        "STATS_DATABASE_URL",
        "STATS_HTTP_PORT",
        "STATS_CONSUMER_HTTP_PORT",
    ):
        monkeypatch.delenv(name, raising=False)

    settings = StatsSettings()

    assert settings.service_name == "stats"
    assert settings.database_url == (
        "postgresql+psycopg://stats:local-dev-stats@127.0.0.1:5432/stats"
    )
    assert settings.web_port == 8003
    assert settings.consumer_health_port == 8013
    assert settings.inbox_prune_interval_seconds == 3600.0
    assert settings.amqp_url == "amqp://stats:local-dev-stats@127.0.0.1:5672//"


def test_settings_come_from_prefixed_environment_variables(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("STATS_HTTP_PORT", "9003")
    monkeypatch.setenv("STATS_CONSUMER_HTTP_PORT", "9013")
    monkeypatch.setenv("STATS_DATABASE_URL", "postgresql+psycopg://db/stats_x")
    monkeypatch.setenv("STATS_RETRY_DELAYS", "[500, 5000]")
    monkeypatch.setenv("AMQP_URL", "amqp://broker//")

    settings = StatsSettings()

    assert (settings.web_port, settings.consumer_health_port) == (9003, 9013)
    assert settings.database_url == "postgresql+psycopg://db/stats_x"
    assert settings.retry_delays == [500, 5000]
    assert settings.amqp_url == "amqp://broker//"
