"""Hand-written baselines the platform's own components are measured against."""

import time
from typing import Any

import pika
from pika.adapters.select_connection import SelectConnection


def raw_pika_publish_rate(url: str, queue: str, count: int, window: int = 1000) -> float:
    """Persistent publishes with confirms, keeping up to ``window`` unconfirmed (async pika)."""
    state = {"sent": 0, "confirmed": 0, "started": 0.0, "finished": 0.0}
    body = b'{"bench": true, "padding": "' + b"x" * 300 + b'"}'
    properties = pika.BasicProperties(delivery_mode=2, content_type="application/json")

    def publish_more(channel: Any) -> None:
        while state["sent"] < count and state["sent"] - state["confirmed"] < window:
            channel.basic_publish("", queue, body, properties)
            state["sent"] += 1

    def on_confirm(frame: Any, channel: Any, connection: Any) -> None:
        tag, multiple = frame.method.delivery_tag, frame.method.multiple
        state["confirmed"] = tag if multiple else max(state["confirmed"], tag)
        if state["confirmed"] >= count:
            state["finished"] = time.perf_counter()
            connection.close()
        else:
            publish_more(channel)

    def on_channel(channel: Any, connection: Any) -> None:
        def confirmed(frame: Any) -> None:
            on_confirm(frame, channel, connection)

        def declared(_frame: Any) -> None:
            channel.confirm_delivery(confirmed)
            state["started"] = time.perf_counter()
            publish_more(channel)

        channel.queue_declare(queue, durable=True, callback=declared)

    def on_open(connection: Any) -> None:
        connection.channel(on_open_callback=lambda ch: on_channel(ch, connection))

    connection = SelectConnection(
        pika.URLParameters(url),
        on_open_callback=on_open,
        on_close_callback=lambda conn, reason: conn.ioloop.stop(),
    )
    connection.ioloop.start()
    return count / (state["finished"] - state["started"])
