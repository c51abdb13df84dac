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


# Copies of one event share its id (UserSignedUp v2 and v3, or v1, v2 and v3 in a rollout).
def test_copies_sharing_an_id_are_confirmed_when_every_copy_is_acked() -> None:
    confirms = confirms_for("e", "e", "e", "f")
    confirms.settle(4, multiple=True, ok=True)
    assert confirms.collect(Ticket(1, 4, frozenset({"e", "f"}))) == (frozenset({"e", "f"}), {})


def test_one_nacked_copy_makes_its_id_refused_even_if_another_copy_was_acked() -> None:
    confirms = confirms_for("e", "e", "f")
    confirms.settle(1, multiple=False, ok=True)  # v2 acked
    confirms.settle(2, multiple=False, ok=False)  # v3 nacked
    confirms.settle(3, multiple=False, ok=True)
    confirmed, refused = confirms.collect(Ticket(1, 3, frozenset({"e", "f"})))
    assert confirmed == frozenset({"f"})
    assert refused == {"e": "nacked by the broker"}


def test_an_id_with_an_unconfirmed_copy_is_not_confirmed_when_the_connection_dies() -> None:
    confirms = confirms_for("e", "e")
    confirms.settle(1, multiple=False, ok=True)  # the second copy's confirm never comes
    assert confirms.collect(Ticket(1, 2, frozenset({"e"}))) == (frozenset(), {})


def test_copies_split_over_two_batches_are_settled_batch_by_batch() -> None:
    confirms = confirms_for("a", "e", "e", "b")  # the batch boundary falls between the copies
    first = Ticket(1, 2, frozenset({"a", "e"}), first_tag=1)
    second = Ticket(1, 4, frozenset({"e", "b"}), first_tag=3)
    confirms.settle(2, multiple=True, ok=True)
    confirms.settle(3, multiple=False, ok=False)
    confirms.settle(4, multiple=False, ok=True)
    assert confirms.collect(first) == (frozenset({"a", "e"}), {})
    assert confirms.collect(second) == (frozenset({"b"}), {"e": "nacked by the broker"})
