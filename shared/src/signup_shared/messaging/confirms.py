"""The book-keeping of a publishing channel in confirm mode: batches on their way (tickets),
delivery tags waiting for a confirm, and the buffer a batch is framed into."""

from collections.abc import Mapping
from dataclasses import dataclass, field

from signup_shared.messaging.wire import OutgoingMessage


@dataclass(frozen=True)
class Ticket:
    """A batch on its way: its connection, the last delivery tag it used, its message ids (and,
    for a resend on a fresh connection, the messages and what the client refused to encode).
    ``first_tag`` is the first delivery tag it used (1: from the connection's first)."""

    generation: int
    last_tag: int
    message_ids: frozenset[str]
    messages: tuple[OutgoingMessage, ...] = field(default=(), compare=False, repr=False)
    refused: Mapping[str, str] = field(default_factory=dict, compare=False)
    retried: bool = False
    first_tag: int = field(default=1, compare=False)


NACKED = "nacked by the broker"


class Confirms:
    """Book-keeping of the delivery tags of a channel in confirm mode, tag by tag.

    Several messages of a batch may share a message id (the copies of one event, one per
    version: ``UserSignedUp`` v2 and v3 share the event's id). A message id counts as confirmed
    only when every copy of it in the batch was acked and none was nacked or returned; one
    refused copy makes the id refused (all its copies are published again; consumers' inboxes
    drop the copy they already had), so no copy is ever marked sent unconfirmed.
    """

    def __init__(self) -> None:
        self.next_tag = 1
        self.pending: dict[int, str] = {}
        self.settled: dict[int, tuple[str, str | None]] = {}
        """Settled tags not yet collected: (message id, None if acked else why refused)."""
        self.returns: dict[str, str] = {}

    def sent(self, message_id: str) -> None:
        self.pending[self.next_tag] = message_id
        self.next_tag += 1

    def settle(self, delivery_tag: int, multiple: bool, ok: bool) -> None:
        tags = [t for t in self.pending if t <= delivery_tag] if multiple else [delivery_tag]
        for tag in tags:
            message_id = self.pending.pop(tag, None)
            if message_id is None:
                continue
            # The broker sends a message's basic.return before its basic.ack.
            reason = self.returns.pop(message_id, None) if ok else NACKED
            self.settled[tag] = (message_id, reason)

    def returned(self, message_id: str, reason: str) -> None:
        self.returns[message_id] = reason

    @property
    def acked(self) -> set[str]:
        """Message ids with an acked tag not yet collected (for inspection)."""
        return {m for m, reason in self.settled.values() if reason is None}

    @property
    def failed(self) -> dict[str, str]:
        """Message ids with a refused tag not yet collected, and why (for inspection)."""
        return {m: reason for m, reason in self.settled.values() if reason is not None}

    def outstanding(self, ticket: Ticket) -> bool:
        return bool(self.pending) and next(iter(self.pending)) <= ticket.last_tag

    def collect(self, ticket: Ticket) -> tuple[frozenset[str], dict[str, str]]:
        """The confirmed and the refused messages of a batch (its tags are forgotten)."""
        first, last = ticket.first_tag, ticket.last_tag
        unsettled = {m for t, m in self.pending.items() if first <= t <= last}
        acked: set[str] = set()
        refused: dict[str, str] = {}
        for tag in [t for t in self.settled if first <= t <= last]:
            message_id, reason = self.settled.pop(tag)
            if reason is None:
                acked.add(message_id)
            else:
                refused.setdefault(message_id, reason)
        ids = ticket.message_ids
        confirmed = frozenset((acked & ids) - refused.keys() - unsettled)
        return confirmed, {m: r for m, r in refused.items() if m in ids}


class FrameBuffer:
    """Stands in for the socket while a batch is framed, so the batch leaves in one write."""

    def __init__(self) -> None:
        self.chunks: list[bytes] = []

    def write(self, data: bytes | memoryview) -> None:
        self.chunks.append(bytes(data))
