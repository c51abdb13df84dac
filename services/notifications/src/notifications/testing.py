"""Fakes of the outside systems, for tests of notifications (never used by the service itself)."""

from notifications.adapters.email_message import Email, message_id
from notifications.adapters.sms import Sms


class FakeEmailSender:
    """Records sent emails; errors queued in ``failures`` are raised by the next sends."""

    def __init__(self, *failures: Exception) -> None:
        self.sent: list[Email] = []
        self.failures = list(failures)
        self.closed = False

    def send(self, email: Email) -> str:
        if self.failures:
            raise self.failures.pop(0)
        self.sent.append(email)
        return message_id(email.idempotency_key)

    def close(self) -> None:
        self.closed = True


class FakeSmsSender:
    """Records sent SMS; errors queued in ``failures`` are raised by the next sends."""

    def __init__(self, *failures: Exception) -> None:
        self.sent: list[Sms] = []
        self.failures = list(failures)
        self.closed = False

    def send(self, sms: Sms) -> str:
        if self.failures:
            raise self.failures.pop(0)
        self.sent.append(sms)
        return f"fake-sms-{sms.idempotency_key}"

    def close(self) -> None:
        self.closed = True
