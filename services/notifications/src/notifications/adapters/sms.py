"""Sending SMS through the HTTP gateway (httpx): the interface, the real client and a fake.

``POST {base}/messages`` with ``Idempotency-Key: <notification id>``: the gateway answers a repeated
key with the message it already accepted, so retrying after an unclear outcome is safe.
"""

import re
import uuid
from dataclasses import dataclass
from typing import Protocol

import httpx

from signup_shared.errors import PermanentError, TransientError
from signup_shared.logging import mask

MAX_DETAIL = 300
_PHONE = re.compile(r"\+[1-9]\d{6,14}")


class SmsTransientError(TransientError):
    """The gateway could not take the message now (5xx, 429, timeout, connection error)."""


class SmsRejectedError(PermanentError):
    """The gateway refused the message for good (a 4xx other than 429)."""


@dataclass(frozen=True)
class Sms:
    idempotency_key: uuid.UUID
    to: str
    body: str


class SmsSender(Protocol):
    def send(self, sms: Sms) -> str:
        """Hand the SMS over; returns the gateway's message id. Safe from several threads."""
        ...

    def close(self) -> None:
        """Let go of every connection."""
        ...


def _detail(response: httpx.Response) -> str:
    text = _PHONE.sub(lambda found: str(mask(found.group())), response.text)
    return f"SMS gateway answered {response.status_code}: {text[:MAX_DETAIL]}"


def _gateway_id(response: httpx.Response) -> str:
    try:
        gateway_id = response.json().get("id")
    except (ValueError, AttributeError):
        gateway_id = None
    if not gateway_id:
        # Accepted but unreadable: retrying with the same key returns the id without a second SMS.
        raise SmsTransientError(f"{_detail(response)} (no message id)")
    return str(gateway_id)


def outcome(response: httpx.Response) -> str:
    """The gateway's message id for a 2xx; otherwise raise retry-later or give-up."""
    status = response.status_code
    if response.is_success:
        return _gateway_id(response)
    if status >= 500 or status == 429:
        raise SmsTransientError(_detail(response))
    raise SmsRejectedError(_detail(response))


class HttpSmsGateway:
    """One keep-alive httpx client shared by every sending thread (httpx clients are thread-safe).

    ``max_connections`` should match the number of threads that send at once: fewer makes
    them queue for a connection (up to ``timeout``), more keeps sockets nobody uses.
    """

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        timeout: float = 5.0,
        max_connections: int = 4,
        keepalive_expiry: float = 30.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.limits = httpx.Limits(
            max_connections=max(1, max_connections),
            max_keepalive_connections=max(1, max_connections),
            keepalive_expiry=keepalive_expiry,
        )
        self._client = httpx.Client(
            base_url=base_url,
            timeout=timeout,
            headers={"Authorization": f"Bearer {token}"},
            limits=self.limits,
            transport=transport,
        )

    def send(self, sms: Sms) -> str:
        try:
            response = self._client.post(
                "/messages",
                json={"to": sms.to, "body": sms.body},
                headers={"Idempotency-Key": str(sms.idempotency_key)},
            )
        except httpx.TransportError as exc:  # timeouts, refused or dropped connections
            raise SmsTransientError(f"SMS gateway unreachable: {exc!r}") from exc
        return outcome(response)

    def close(self) -> None:
        self._client.close()


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
