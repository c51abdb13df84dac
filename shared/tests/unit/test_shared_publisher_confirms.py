from signup_shared.messaging.publisher import Ticket, _Confirms


def confirms_for(*ids: str) -> _Confirms:
    confirms = _Confirms()
    for message_id in ids:
        confirms.sent(message_id)
    return confirms


def test_single_acks_settle_one_tag() -> None:
    confirms = confirms_for("a", "b")
    confirms.settle(1, multiple=False, ok=True)
    assert confirms.acked == {"a"}
    assert list(confirms.pending.values()) == ["b"]


def test_multiple_ack_settles_every_tag_up_to_it() -> None:
    confirms = confirms_for("a", "b", "c")
    confirms.settle(2, multiple=True, ok=True)
    assert confirms.acked == {"a", "b"}
    assert list(confirms.pending.values()) == ["c"]


def test_nack_marks_failed_not_acked() -> None:
    confirms = confirms_for("a", "b")
    confirms.settle(2, multiple=True, ok=False)
    assert confirms.acked == set()
    assert set(confirms.failed) == {"a", "b"}


def test_returned_message_is_not_counted_as_published_when_acked() -> None:
    confirms = confirms_for("a")
    confirms.returned("a", "unroutable")
    confirms.settle(1, multiple=False, ok=True)
    assert confirms.acked == set()
    assert confirms.failed == {"a": "unroutable"}


def test_a_batch_is_outstanding_until_its_last_tag_settles() -> None:
    confirms = confirms_for("a", "b", "c")
    first, second = Ticket(1, 2, frozenset({"a", "b"})), Ticket(1, 3, frozenset({"c"}))
    confirms.settle(1, multiple=False, ok=True)
    assert confirms.outstanding(first)
    confirms.settle(2, multiple=False, ok=True)
    assert not confirms.outstanding(first)
    assert confirms.outstanding(second)


def test_collect_reports_and_forgets_one_batch() -> None:
    confirms = confirms_for("a", "b", "c")
    confirms.returned("b", "unroutable")
    confirms.settle(3, multiple=True, ok=True)
    confirmed, refused = confirms.collect(Ticket(1, 2, frozenset({"a", "b"})))
    assert (confirmed, refused) == (frozenset({"a"}), {"b": "unroutable"})
    assert confirms.acked == {"c"}
    assert confirms.failed == {}
