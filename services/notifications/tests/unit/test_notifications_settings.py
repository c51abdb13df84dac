import pytest

from notifications.settings import NotificationsSettings


def test_defaults_work_on_a_developer_machine(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AMQP_URL", "NOTIFICATIONS_SMTP_PORT", "NOTIFICATIONS_SMS_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    settings = NotificationsSettings()
    assert settings.database_url == (
        "postgresql+psycopg://notifications:local-dev-notifications@127.0.0.1:5432/notifications"
    )
    assert settings.http_port == 8001
    assert (settings.smtp_host, settings.smtp_port, settings.smtp_starttls) == (
        "127.0.0.1",
        1025,
        False,
    )
    assert settings.smtp_username is None and settings.smtp_password is None
    assert settings.mail_from == "Signup Platform <welcome@signup.local>"
    assert settings.smtp_timeout == 10.0
    assert settings.sms_base_url == "http://127.0.0.1:8025"
    assert settings.sms_token.get_secret_value() == "local-dev-token"
    assert settings.sms_timeout == 5.0
    assert (settings.smtp_deadline_seconds, settings.sms_deadline_seconds) == (30.0, 15.0)
    assert settings.delivery_wait_seconds == 2.0
    assert (settings.sweep_interval, settings.sweep_grace) == (15.0, 30.0)
    assert settings.inbox_retention_days == 7


def test_environment_overrides_with_the_service_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NOTIFICATIONS_SMTP_PORT", "2525")
    monkeypatch.setenv("NOTIFICATIONS_SMS_TOKEN", "s3cret")
    monkeypatch.setenv("NOTIFICATIONS_SWEEP_GRACE", "120")
    monkeypatch.setenv("NOTIFICATIONS_SMTP_DEADLINE_SECONDS", "45")
    settings = NotificationsSettings()
    assert settings.smtp_deadline_seconds == 45.0
    assert settings.smtp_port == 2525
    assert settings.sweep_grace == 120.0
    assert settings.sms_token.get_secret_value() == "s3cret"
    assert "s3cret" not in repr(settings)
