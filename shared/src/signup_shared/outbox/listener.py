"""The relay's wake-up call: ``LISTEN outbox``, notified by the outbox table's trigger at commit.

The relay sleeps in one ``select()`` on the listening connection's socket (and on its
``Wakeup``, made readable when the relay stops): no timer runs while nothing happens. When the
socket is readable, libpq reads what arrived and the notifications are dropped (one wake-up is
enough: the relay then takes every pending row). A (re)connection counts as a wake-up, since a
row committed while nobody listened notified nobody. While the database is away the listener
sleeps instead (at most a second at a time), and the relay's own retries take over.
"""

import select
from typing import Any

import psycopg
from sqlalchemy import Engine

from signup_shared.outbox.model import OUTBOX_NOTIFY_CHANNEL
from signup_shared.wakeup import Wakeup

OUTAGE_SLEEP_SECONDS = 1.0


class NotificationListener:
    """Waits for ``NOTIFY outbox``, a wake-up, or the timeout, whichever comes first."""

    def __init__(self, engine: Engine, wakeup: Wakeup | None = None) -> None:
        self.conninfo = engine.url.set(drivername="postgresql").render_as_string(
            hide_password=False
        )
        self.wakeup = wakeup or Wakeup()
        self._connection: psycopg.Connection[Any] | None = None

    def _connect(self) -> psycopg.Connection[Any]:
        connection = psycopg.connect(self.conninfo, autocommit=True, connect_timeout=5)
        connection.execute(f"LISTEN {OUTBOX_NOTIFY_CHANNEL}")
        self._connection = connection
        return connection

    def wait(self, timeout: float) -> bool:
        """Block until notified or woken (True), or until ``timeout`` passed (False)."""
        connection = self._connection
        if connection is None or connection.closed:
            try:
                self._connect()
            except psycopg.Error:
                self.close()
                self._sleep(min(timeout, OUTAGE_SLEEP_SECONDS))
            return True
        try:
            readable, _, _ = select.select(
                [connection.fileno(), self.wakeup.fileno()], [], [], max(timeout, 0.0)
            )
            if connection.fileno() in readable:
                self._drain(connection)
        except (psycopg.Error, OSError, ValueError):  # the connection broke: reconnect next time
            self.close()
            return True
        if self.wakeup.fileno() in readable:
            self.wakeup.clear()
        return bool(readable)

    @staticmethod
    def _drain(connection: psycopg.Connection[Any]) -> None:
        """Read what the server sent and drop the notifications (a closed socket raises)."""
        pgconn = connection.pgconn
        pgconn.consume_input()
        while pgconn.notifies() is not None:
            pass
        if pgconn.status != psycopg.pq.ConnStatus.OK:
            raise psycopg.OperationalError("the LISTEN connection was closed")

    def _sleep(self, seconds: float) -> None:
        readable, _, _ = select.select([self.wakeup.fileno()], [], [], seconds)
        if readable:
            self.wakeup.clear()

    def close(self) -> None:
        if self._connection is not None:
            try:
                self._connection.close()
            finally:
                self._connection = None
