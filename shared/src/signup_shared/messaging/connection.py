"""Broker connections with bounded, jittered reconnection."""

from collections.abc import Callable

from kombu.connection import Connection

CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    *Connection().connection_errors,
    *Connection().channel_errors,
    OSError,
)


def connect(url: str, heartbeat: int = 20) -> Connection:
    """Open a connection now (raises if the broker is unreachable)."""
    connection = Connection(
        url,
        heartbeat=heartbeat,
        connect_timeout=5,
        transport_options={"client_properties": {"connection_name": "signup"}},
    )
    connection.connect()
    return connection


def broker_ready(url: str, timeout: float = 2.0) -> Callable[[], bool]:
    """A readiness check that opens (and closes) a connection to the broker."""

    def check() -> bool:
        try:
            with Connection(url, connect_timeout=timeout) as connection:
                connection.connect()
        except CONNECTION_ERRORS:
            return False
        return True

    return check
