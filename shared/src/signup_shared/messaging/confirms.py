"""The book-keeping of a publishing channel in confirm mode: batches on their way (tickets),
delivery tags waiting for a confirm, and the buffer a batch is framed into."""

from collections.abc import Mapping
from dataclasses import dataclass, field

from signup_shared.messaging.wire import OutgoingMessage


@dataclass(frozen=True)
class Ticket:
    """A batch on its way: its connection, the last delivery tag it used, its message ids (and,
    for a resend on a fresh connection, the messages and what the client refused to encode)."""

    generation: int
    last_tag: int
    message_ids: frozenset[str]
    messages: tuple[OutgoingMessage, ...] = field(default=(), compare=False, repr=False)
    refused: Mapping[str, str] = field(default_factory=dict, compare=False)
    retried: bool = False


class Confirms:
    """Book-keeping of the delivery tags of a channel in confirm mode."""

    def __init__(self) -> None:
        self.next_tag = 1
        self.pending: dict[int, str] = {}
        self.acked: set[str] = set()
        self.failed: dict[str, str] = {}

    def sent(self, message_id: str) -> None:
        self.pending[self.next_tag] = message_id
        self.next_tag += 1

    def settle(self, delivery_tag: int, multiple: bool, ok: bool) -> None:
        tags = [t for t in self.pending if t <= delivery_tag] if multiple else [delivery_tag]
        for tag in tags:
            message_id = self.pending.pop(tag, None)
            if message_id is None:
                continue
            if ok and message_id not in self.failed:
                self.acked.add(message_id)
            elif not ok:
                self.failed[message_id] = "nacked by the broker"

    def returned(self, message_id: str, reason: str) -> None:
        self.failed[message_id] = reason

    def outstanding(self, ticket: Ticket) -> bool:
        return bool(self.pending) and next(iter(self.pending)) <= ticket.last_tag

    def collect(self, ticket: Ticket) -> tuple[frozenset[str], dict[str, str]]:
        """The confirmed and the refused messages of a settled batch (forgotten afterwards)."""
        confirmed = frozenset(ticket.message_ids & self.acked)
        refused = {m: self.failed.pop(m) for m in ticket.message_ids if m in self.failed}
        self.acked -= ticket.message_ids
        return confirmed, refused


class FrameBuffer:
    """Stands in for the socket while a batch is framed, so the batch leaves in one write."""

    def __init__(self) -> None:
        self.chunks: list[bytes] = []

    def write(self, data: bytes | memoryview) -> None:
        self.chunks.append(bytes(data))
