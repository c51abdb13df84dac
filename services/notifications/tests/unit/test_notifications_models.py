import uuid
from datetime import UTC, datetime

from notifications.models import (
    MAX_ERROR_LENGTH,
    Channel,
    Notification,
    NotificationStatus,
)

CREATED = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
LATER = datetime(2026, 11, 25, 12, 5, tzinfo=UTC)


def pending() -> Notification:
    return Notification(
        id=uuid.uuid4(),
        user_id=uuid.uuid4(),
        channel=Channel.EMAIL,
        recipient="ada@example.com",
        template="welcome_email",
        template_data={},
        status=NotificationStatus.PENDING,
        attempts=0,
        causing_event_id=uuid.uuid4(),
        created_at=CREATED,
        updated_at=CREATED,
    )


def test_a_failed_attempt_counts_and_keeps_the_error_but_stays_pending() -> None:
    notification = pending()
    notification.record_attempt(LATER, "SMTP 451: try later")
    assert (notification.attempts, notification.last_error) == (1, "SMTP 451: try later")
    assert notification.updated_at == LATER
    assert notification.is_pending


def test_mark_sent_records_provider_id_and_time_and_clears_the_last_error() -> None:
    notification = pending()
    notification.record_attempt(CREATED, "timeout")
    notification.record_attempt(LATER)
    notification.mark_sent("<id@signup.local>", LATER)
    assert notification.status is NotificationStatus.SENT
    assert (notification.provider_message_id, notification.sent_at) == ("<id@signup.local>", LATER)
    assert (notification.attempts, notification.last_error) == (2, None)
    assert not notification.is_pending


def test_mark_failed_ends_the_notification_with_its_reason() -> None:
    notification = pending()
    notification.mark_failed("SMS gateway answered 400")
    assert notification.status is NotificationStatus.FAILED
    assert notification.last_error == "SMS gateway answered 400"
    assert notification.sent_at is None


def test_errors_are_truncated_to_fit_the_row() -> None:
    notification = pending()
    notification.record_attempt(LATER, "x" * (MAX_ERROR_LENGTH + 50))
    assert len(notification.last_error or "") == MAX_ERROR_LENGTH
    notification.mark_failed("y" * (MAX_ERROR_LENGTH + 1))
    assert len(notification.last_error or "") == MAX_ERROR_LENGTH


def test_attempts_count_from_zero_on_an_unflushed_instance() -> None:
    notification = Notification(channel=Channel.SMS)
    notification.record_attempt(LATER)
    assert notification.attempts == 1
