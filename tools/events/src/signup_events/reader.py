"""Reading a range of ``events.history`` over AMQP 0-9-1 (kombu), with the runtime's helpers.

Where to start and where the stream ends come from ``signup_shared.messaging.history`` (the
``x-stream-offset`` consume argument, ``read_tail``, ``after_tail``), as the services' catch-up
uses them. A stream never ends, so a reader stops at the tail read before it starts (or at the
range's end, whichever comes first). Deliveries are acknowledged in groups (``multiple``): on a
stream an ack only returns prefetch credit.
"""

import contextlib
import time
from collections import deque
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from kombu.connection import Connection
from kombu.messaging import Consumer

from signup_events.errors import EventsError
from signup_events.records import EventRecord, past_end, record_of
from signup_shared.messaging import history

DEFAULT_PREFETCH = 1000


def read(
    connection: Connection,
    start: history.Position,
    end: int | datetime | None = None,
    *,
    prefetch: int = DEFAULT_PREFETCH,
    idle_timeout: float = 30.0,
) -> Iterator[tuple[Any, EventRecord]]:
    """The messages of the stream from ``start`` to the tail (read first) or ``end``,
    inclusive, with their records. Nothing if the stream is empty or starts after its tail."""
    tail = find_tail(connection)
    if tail is None or history.after_tail(start, tail):
        return
    yield from _consume(connection, start, tail.offset, end, prefetch, idle_timeout)


def find_tail(connection: Connection) -> history.Tail | None:
    """The tail of the stream (None when empty), after checking that it can be read."""
    try:
        history.check_exists(connection)
    except history.HistoryError as exc:
        raise EventsError(str(exc)) from exc
    return history.read_tail(connection)


def _consume(
    connection: Connection,
    start: history.Position,
    tail: int,
    end: int | datetime | None,
    prefetch: int,
    idle_timeout: float,
) -> Iterator[tuple[Any, EventRecord]]:
    channel = connection.channel()
    pending: deque[Any] = deque()
    ack_every = max(prefetch // 4, 1)
    unacked = 0
    try:
        channel.basic_qos(0, prefetch, False)
        consumer = Consumer(
            channel,
            queues=[history.stream_queue(start)],
            on_message=pending.append,
            no_ack=False,
            tag_prefix="signup-events.",
        )
        consumer.consume()
        last_delivery = time.monotonic()
        while True:
            if not pending:
                try:
                    connection.drain_events(timeout=0.5)
                except TimeoutError:
                    connection.heartbeat_check()
                    if time.monotonic() - last_delivery > idle_timeout:
                        raise EventsError(
                            f"the stream delivered nothing for {idle_timeout:g} s before its "
                            f"tail (offset {tail}): try again"
                        ) from None
                    continue
                last_delivery = time.monotonic()
            message = pending.popleft()
            record = record_of(message)
            if (record.offset is not None and record.offset > tail) or past_end(record, end):
                return
            yield message, record
            unacked += 1
            if unacked >= ack_every:
                channel.basic_ack(message.delivery_tag, multiple=True)
                unacked = 0
            if record.offset is not None and record.offset >= tail:
                return
    finally:
        with contextlib.suppress(Exception):
            channel.close()  # unacked deliveries of a stream need no requeue


def last(connection: Connection, count: int) -> list[EventRecord]:
    """The last ``count`` events of the stream (fewer if it holds fewer)."""
    tail = find_tail(connection)
    if tail is None:
        return []
    kept: deque[EventRecord] = deque(maxlen=count)
    start = max(tail.offset - count + 1, 0)
    for _, record in _consume(connection, start, tail.offset, None, DEFAULT_PREFETCH, 30.0):
        kept.append(record)
    return list(kept)
