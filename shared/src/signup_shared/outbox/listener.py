"""The relay's wake-up call: ``LISTEN outbox``, notified by the outbox table's trigger at commit."""

import time
from collections.abc import Iterator
from typing import Any

import psycopg
from sqlalchemy import Engine

from signup_shared.outbox.model import OUTBOX_NOTIFY_CHANNEL


class NotificationListener:
    """Waits for ``NOTIFY outbox``; falls back to plain sleeping while the database is away."""

    def __init__(self, engine: Engine) -> None:
        self.conninfo = engine.url.set(drivername="postgresql").render_as_string(
            hide_password=False
        )
        self._connection: psycopg.Connection[Any] | None = None

    def _connect(self) -> psycopg.Connection[Any]:
        if self._connection is None or self._connection.closed:
            connection = psycopg.connect(self.conninfo, autocommit=True, connect_timeout=5)
            connection.execute(f"LISTEN {OUTBOX_NOTIFY_CHANNEL}")
            self._connection = connection
        return self._connection

    def wait(self, timeout: float) -> None:
        try:
            notifications: Iterator[Any] = self._connect().notifies(timeout=timeout, stop_after=1)
            for _ in notifications:
                pass
        except psycopg.Error:
            self.close()
            time.sleep(min(timeout, 1.0))

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None
