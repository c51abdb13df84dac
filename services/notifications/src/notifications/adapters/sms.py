"""Sending SMS through the HTTP gateway (httpx): the interface, the errors and the real client.

``POST {base}/messages`` with ``Idempotency-Key: <notification id>``: the gateway answers a repeated
key with the message it already accepted, so retrying after an unclear outcome is safe.
"""

import re
import threading
import time
import typing
import uuid
from dataclasses import dataclass
from typing import Protocol

import httpcore
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


_deadline = threading.local()


def _bounded(timeout: float | None) -> float | None:
    """The timeout of one socket operation, cut to what is left of this thread's deadline."""
    deadline: float | None = getattr(_deadline, "at", None)
    if deadline is None:
        return timeout
    left = deadline - time.monotonic()
    if left <= 0:
        raise httpcore.ReadTimeout("SMS gateway deadline passed")
    return left if timeout is None else min(timeout, left)


class _DeadlineStream(httpcore.NetworkStream):
    """A network stream whose every read, write and TLS handshake ends by the thread's deadline.

    httpx's timeouts bound each phase (connect, each read, each write, pool); a gateway that
    answers one byte at a time never trips them. This bounds the request as a whole.
    """

    def __init__(self, stream: httpcore.NetworkStream) -> None:
        self._stream = stream

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._stream.read(max_bytes, _bounded(timeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._stream.write(buffer, _bounded(timeout))

    def close(self) -> None:
        self._stream.close()

    def start_tls(
        self,
        ssl_context: typing.Any,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        return _DeadlineStream(
            self._stream.start_tls(ssl_context, server_hostname, _bounded(timeout))
        )

    def get_extra_info(self, info: str) -> typing.Any:
        return self._stream.get_extra_info(info)


class _DeadlineBackend(httpcore.SyncBackend):
    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: typing.Any = None,
    ) -> httpcore.NetworkStream:
        stream = super().connect_tcp(host, port, _bounded(timeout), local_address, socket_options)
        return _DeadlineStream(stream)


def deadline_transport(limits: httpx.Limits) -> httpx.HTTPTransport:
    """httpx's transport with every socket operation bounded by the sending thread's deadline."""
    transport = httpx.HTTPTransport(limits=limits)
    pool = transport._pool
    if not hasattr(pool, "_network_backend"):  # pragma: no cover - an httpcore we do not know
        raise RuntimeError("httpcore's connection pool no longer takes a network backend")
    pool._network_backend = _DeadlineBackend()
    return transport


class HttpSmsGateway:
    """One keep-alive httpx client shared by every sending thread (httpx clients are thread-safe).

    Each send ends within ``deadline`` seconds in all (connecting, writing, every read of the
    answer), whatever the gateway trickles; ``timeout`` still bounds each phase.
    ``max_connections`` should match the number of threads that send at once: fewer makes
    them queue for a connection (up to ``timeout``), more keeps sockets nobody uses.
    """

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        timeout: float = 5.0,
        deadline: float = 15.0,
        max_connections: int = 4,
        keepalive_expiry: float = 30.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.limits = httpx.Limits(
            max_connections=max(1, max_connections),
            max_keepalive_connections=max(1, max_connections),
            keepalive_expiry=keepalive_expiry,
        )
        self.deadline = deadline
        self._client = httpx.Client(
            base_url=base_url,
            timeout=timeout,
            headers={"Authorization": f"Bearer {token}"},
            limits=self.limits,
            transport=transport or deadline_transport(self.limits),
        )

    def send(self, sms: Sms) -> str:
        _deadline.at = deadline = time.monotonic() + self.deadline
        try:
            response = self._client.post(
                "/messages",
                json={"to": sms.to, "body": sms.body},
                headers={"Idempotency-Key": str(sms.idempotency_key)},
            )
        except httpx.TransportError as exc:  # timeouts, refused or dropped connections
            if time.monotonic() >= deadline:
                detail = f"SMS gateway deadline of {self.deadline:g} s passed: {exc!r}"
                raise SmsTransientError(detail) from exc
            raise SmsTransientError(f"SMS gateway unreachable: {exc!r}") from exc
        finally:
            _deadline.at = None
        return outcome(response)

    def close(self) -> None:
        self._client.close()
