from signup_shared.messaging import topology
from signup_shared.messaging.topology import ConsumerQueue, delay_label


def test_names_say_owner_and_event() -> None:
    queue = ConsumerQueue("notifications", "accounts.user_signed_up")
    assert queue.name == "notifications.user_signed_up"
    assert queue.dlq_name == "notifications.user_signed_up.dlq"
    assert [q.name for q in queue.retry_queues()] == [
        "notifications.user_signed_up.retry.1s",
        "notifications.user_signed_up.retry.10s",
        "notifications.user_signed_up.retry.60s",
    ]


def test_main_queue_is_quorum_with_delivery_limit_and_dead_letters() -> None:
    queue = ConsumerQueue("stats", "accounts.user_signed_up", delivery_limit=5).main_queue()
    assert queue.queue_arguments == {
        "x-queue-type": "quorum",
        "x-delivery-limit": 5,
        "x-dead-letter-exchange": "events.dlx",
        "x-dead-letter-routing-key": "stats.user_signed_up.dlq",
        "x-dead-letter-strategy": "at-least-once",
        "x-overflow": "reject-publish",
    }
    assert queue.routing_key == "accounts.user_signed_up"
    assert {(b.exchange.name, b.routing_key) for b in queue.bindings} == {
        ("events", "accounts.user_signed_up"),
        ("events.retry", "stats.user_signed_up"),  # where its retry queues dead-letter to
    }


def test_retry_queues_dead_letter_back_to_the_main_queue() -> None:
    retry = ConsumerQueue("stats", "accounts.user_signed_up", retry_delays_ms=(500,)).retry_queues()
    assert retry[0].name == "stats.user_signed_up.retry.500ms"
    assert retry[0].queue_arguments == {
        "x-queue-type": "quorum",  # replicated on a cluster; RabbitMQ 4 has no classic mirroring
        "x-message-ttl": 500,
        "x-dead-letter-exchange": "events.retry",  # not the default exchange: see generate.py
        "x-dead-letter-routing-key": "stats.user_signed_up",
        "x-dead-letter-strategy": "at-least-once",  # at-most-once is the default
        "x-overflow": "reject-publish",  # which at-least-once dead-lettering requires
    }
    assert (retry[0].exchange.name, retry[0].routing_key) == (
        "events.retry",
        "stats.user_signed_up.retry.500ms",
    )


def test_dead_letter_queue_is_bound_to_the_topic_dead_letter_exchange_by_its_name() -> None:
    dlq = ConsumerQueue("stats", "accounts.user_signed_up").dead_letter_queue()
    assert (dlq.exchange.name, dlq.routing_key) == ("events.dlx", "stats.user_signed_up.dlq")


def test_retries_and_dead_letters_go_through_topic_exchanges() -> None:
    """Topic permissions apply to topic exchanges only (never to the default exchange)."""
    assert {e.name: e.type for e in topology.CORE_EXCHANGES} == {
        "events": "topic",
        "events.dlx": "topic",
        "events.retry": "topic",
        "events.unrouted": "fanout",
    }


def test_delay_label() -> None:
    assert (delay_label(1000), delay_label(60_000), delay_label(250)) == ("1s", "60s", "250ms")


def test_every_queue_is_a_quorum_queue_the_unrouted_one_included() -> None:
    queues = [
        topology.unrouted_queue,
        *ConsumerQueue("stats", "accounts.user_signed_up").all_queues(),
    ]
    assert {q.name: q.queue_arguments["x-queue-type"] for q in queues} == {
        "events.unrouted": "quorum",
        "stats.user_signed_up": "quorum",
        "stats.user_signed_up.dlq": "quorum",
        "stats.user_signed_up.retry.1s": "quorum",
        "stats.user_signed_up.retry.10s": "quorum",
        "stats.user_signed_up.retry.60s": "quorum",
    }


class FakeChannel:
    def __init__(self, calls: list[tuple[str, ...]]) -> None:
        self.calls = calls

    def queue_unbind(self, queue: str, exchange: str, routing_key: str) -> None:
        self.calls.append(("unbind", queue, exchange, routing_key))

    def close(self) -> None:
        self.calls.append(("close",))


class FakeConnection:
    def __init__(self) -> None:
        self.calls: list[tuple[str, ...]] = []

    def channel(self) -> FakeChannel:
        return FakeChannel(self.calls)


def test_a_versioned_queue_keeps_its_name_and_knows_every_key_it_may_bind() -> None:
    queue = ConsumerQueue(
        "stats", "accounts.user_signed_up.v2", other_keys=("accounts.user_signed_up",)
    )
    assert queue.name == "stats.user_signed_up"
    assert queue.dlq_name == "stats.user_signed_up.dlq"
    assert {(b.exchange.name, b.routing_key) for b in queue.main_queue().bindings} == {
        ("events", "accounts.user_signed_up.v2"),  # only the version it reads is bound
        ("events.retry", "stats.user_signed_up"),
    }
    assert queue.subscribed_keys == ("accounts.user_signed_up", "accounts.user_signed_up.v2")


def test_the_other_versions_keys_are_unbound_from_the_events_exchange() -> None:
    connection = FakeConnection()
    queue = ConsumerQueue(
        "stats", "accounts.user_signed_up.v2", other_keys=("accounts.user_signed_up",)
    )
    topology.unbind_other_versions(connection, queue)  # type: ignore[arg-type]
    assert connection.calls == [
        ("unbind", "stats.user_signed_up", "events", "accounts.user_signed_up"),
        ("close",),
    ]


def test_a_queue_of_one_version_unbinds_nothing() -> None:
    connection = FakeConnection()
    topology.unbind_other_versions(connection, ConsumerQueue("a", "p.e"))  # type: ignore[arg-type]
    assert connection.calls == []
