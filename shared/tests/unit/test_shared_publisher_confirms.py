from signup_shared.messaging.publisher import _Confirms


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


def test_tags_keep_counting_across_batches() -> None:
    confirms = confirms_for("a")
    confirms.settle(1, multiple=False, ok=True)
    confirms.reset()
    confirms.sent("b")
    assert list(confirms.pending) == [2]
