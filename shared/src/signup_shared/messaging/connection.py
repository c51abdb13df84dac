"""Broker connections: one or several broker addresses, failover between them, named connections.

``AMQP_URL`` may list several nodes of one cluster separated by ``;``, e.g.
``amqp://u:p@rabbit-1:5672/%2F;amqp://u:p@rabbit-2:5672/%2F;amqp://u:p@rabbit-3:5672/%2F``.
Every address is a complete URL (credentials and virtual host included); they must all name the
same virtual host. ``connect`` tries each address once, in a random order so that the instances
of a service spread over the nodes, and returns the first connection that opens (kombu's
failover over ``alternates``). When none answers it raises one of ``CONNECTION_ERRORS``, and the
caller's reconnect loop waits a jittered, growing delay (``signup_shared.backoff``) before the
next round. Publisher confirms and consumer acks are per connection, so a failover is a
reconnect like any other: unconfirmed messages are published again, unacked ones redelivered.

A blocking client sends heartbeats only while it is called, so a connection that sits quiet for
two heartbeat intervals is closed by the broker. ``KeepAlive`` services a connection that is not
in use from a small timer thread (``service_idle``: read what arrived, send a heartbeat when one
is due), waking a few times per interval: next to nothing when idle.
"""

import contextlib
import os
import random
import socket
import sys
import threading
import urllib.parse
from collections.abc import Callable, Sequence
from typing import Any

import structlog
from kombu.connection import Connection
from kombu.exceptions import OperationalError
from kombu.utils.url import parse_url

log = structlog.get_logger(__name__)

URL_SEPARATOR = ";"
SCHEMES = frozenset({"amqp", "amqps", "pyamqp"})

CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    *Connection().connection_errors,
    *Connection().channel_errors,
    OperationalError,
    OSError,
)


def broker_urls(url: str | Sequence[str]) -> list[str]:
    """The broker addresses in ``url`` (``;``-separated, or already a list), validated.

    Raises ``ValueError`` for an empty list, a scheme that is not AMQP, an address without a
    host, or addresses that name different virtual hosts.
    """
    parts = url.split(URL_SEPARATOR) if isinstance(url, str) else list(url)
    urls = [part.strip() for part in parts if part.strip()]
    if not urls:
        raise ValueError("no broker URL given (AMQP_URL is empty)")
    vhosts = set()
    for candidate in urls:
        split = urllib.parse.urlsplit(candidate)
        if split.scheme not in SCHEMES:
            raise ValueError(
                f"broker URL {address(candidate)!r} must start with amqp:// or amqps://"
            )
        if not split.hostname:
            raise ValueError(f"broker URL {address(candidate)!r} names no host")
        vhosts.add(parse_url(candidate).get("virtual_host") or "/")
    if len(vhosts) > 1:
        raise ValueError(f"the broker URLs name different virtual hosts: {sorted(vhosts)}")
    return urls


def address(url: str) -> str:
    """``host:port`` of a broker URL, for logs (never the credentials)."""
    split = urllib.parse.urlsplit(url.strip())
    try:
        port = split.port
    except ValueError:
        port = None
    default = 5671 if split.scheme == "amqps" else 5672
    return f"{split.hostname or '?'}:{port or default}"


def addresses(url: str | Sequence[str]) -> str:
    """``host:port`` of every broker in ``url``, comma-separated, for logs (no credentials)."""
    urls = url.split(";") if isinstance(url, str) else list(url)
    return ",".join(address(candidate) for candidate in urls if candidate.strip())


def default_connection_name() -> str:
    """Which process this is, for the broker dashboard: ``accounts relay (pid 42 on web-1)``."""
    path = sys.argv[0] if sys.argv and sys.argv[0] else "python"
    program = os.path.basename(path)
    if program == "__main__.py":  # python -m package
        program = os.path.basename(os.path.dirname(path))
    command = [program, *(arg for arg in sys.argv[1:2] if not arg.startswith("-"))]
    return f"{' '.join(command)} (pid {os.getpid()} on {socket.gethostname()})"


def failover_order(urls: Sequence[str], rng: random.Random | None = None) -> list[str]:
    """The order in which to try the addresses: shuffled, so instances spread over nodes."""
    return (rng or random).sample(list(urls), len(urls))


def connect(
    url: str | Sequence[str],
    heartbeat: int = 20,
    name: str | None = None,
    *,
    timeout: float = 5.0,
    frame_handler: Callable[..., Any] | None = None,
) -> Connection:
    """Open a connection to the first broker that answers (raises if none does).

    ``name`` is shown as the connection's name on the dashboard; by default the program, its
    command and pid (``default_connection_name``). ``frame_handler`` replaces py-amqp's frame
    reader (the consumer's: ``signup_shared.messaging.frames``).
    """
    urls = failover_order(broker_urls(url))
    options: dict[str, Any] = {
        "client_properties": {"connection_name": name or default_connection_name()}
    }
    if frame_handler is not None:
        options["frame_handler"] = frame_handler
    connection = Connection(
        urls,
        heartbeat=heartbeat,
        connect_timeout=timeout,
        failover_strategy="round-robin",
        transport_options=options,
    )

    def unreachable(exc: BaseException, _interval: float) -> None:
        # kombu calls this before it switches to the next address: .host is the failing one.
        log.warning("broker.unreachable", broker=connection.host, error=repr(exc))

    try:
        # One attempt per address, no pause in between: the caller's backoff spaces the rounds.
        connection.ensure_connection(
            errback=unreachable,
            max_retries=len(urls) - 1,
            interval_start=0,
            interval_step=0,
            interval_max=0,
        )
    except BaseException as exc:
        # kombu calls no errback for the last address tried: say here which one failed, and why.
        log.warning("broker.unreachable", broker=connection.host, error=repr(exc))
        connection.release()
        raise
    if len(urls) > 1:
        log.info("broker.connected", broker=connection.host, nodes=len(urls))
    return connection


def broker_ready(url: str | Sequence[str], timeout: float = 2.0) -> Callable[[], bool]:
    """A readiness check: True when at least one of the brokers accepts a connection."""
    urls = broker_urls(url)

    def check() -> bool:
        for candidate in urls:
            try:
                with Connection(candidate, connect_timeout=timeout) as connection:
                    connection.ensure_connection(max_retries=0)
            except CONNECTION_ERRORS:
                continue
            return True
        return False

    return check


def service_idle(connection: Connection) -> None:
    """Read what the broker sent (heartbeats, confirms, a close) without waiting, and send a
    heartbeat when one is due. Raises one of ``CONNECTION_ERRORS`` when the connection is dead.
    The caller must own the connection for the duration (py-amqp is not thread-safe)."""
    with contextlib.suppress(TimeoutError):
        while True:
            connection.drain_events(timeout=0)
    connection.heartbeat_check()


class KeepAlive:
    """A daemon thread calling ``tick`` every ``interval`` seconds until ``stop``.

    ``tick`` does the locking: the owner of a connection knows when it is in use.
    """

    def __init__(self, tick: Callable[[], None], interval: float, name: str) -> None:
        self.interval = max(0.1, interval)
        self._tick = tick
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> "KeepAlive":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self._tick()
            except Exception:  # the thread must outlive any one failed tick
                log.exception("broker.keepalive_failed")
