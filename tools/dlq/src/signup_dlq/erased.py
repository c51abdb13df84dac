"""Dropping the dead letters of erased users: which to drop, and the walk over the DLQ.

Nothing here does I/O by itself: the loop talks to a :class:`~signup_dlq.replay.ReplayChannel`
(the pika adapter in ``broker.py``, or an in-memory fake) and asks an :class:`ErasureLookup`
(the accounts API adapter in ``accounts.py``, or a fake) whether a user was erased.

A dead letter is dropped only when it carries personal data in clear (its envelope's type and
version are registered with ``personal_data``: ``UserSignedUp`` v1 and v2) **and** accounts
answers that its ``data.user_id`` was erased. Everything else is kept, unchanged: the erasure's
own events (``UserErasureRequested``, ``UserErased``: dropping them would stall the erasure),
sealed v3 signups (unreadable once the key is gone), events without personal data, versions
this tool does not know, bodies that are not a JSON envelope, and users accounts does not know.
"""

from __future__ import annotations

import contextlib
import enum
import uuid
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

from signup_contracts.envelope import registered_events
from signup_dlq.deadletter import RawMessage, as_str, parse_json_body
from signup_dlq.errors import DlqError, PublishFailedError
from signup_dlq.replay import ReplayChannel, default_target
from signup_dlq.walk import StoppableWalk


class UserStatus(enum.Enum):
    """What accounts says about a user id."""

    ERASED = "erased"  # 410 Gone
    PRESENT = "present"  # 200
    UNKNOWN = "unknown"  # 404: never a user here (another environment, a hand-made message)


class ErasureLookup(Protocol):
    """Asks accounts about one user; raises a :class:`DlqError` when it cannot say."""

    def status(self, user_id: uuid.UUID) -> UserStatus: ...


class Keep(enum.StrEnum):
    """Why a dead letter is kept (the summary counts each reason)."""

    NOT_ERASED = "user not erased"
    UNKNOWN_USER = "user unknown to accounts"
    NO_PERSONAL_DATA = "no personal data in clear"
    UNKNOWN_VERSION = "event version unknown to this tool"
    NO_USER_ID = "no user id"
    UNDECODABLE = "not a JSON event envelope"


PERSONAL_VERSIONS: Final = frozenset(
    key for key, event in registered_events().items() if event.personal_data
)
"""The (type, version) pairs whose payload carries personal data in clear."""


@dataclass(frozen=True)
class Subject:
    """What a dead letter is about: the user to ask accounts about, or why not to ask."""

    user_id: uuid.UUID | None
    keep: Keep | None  # set when the message is kept without asking accounts
    event: str = "-"  # "<type> v<version>", for the dry-run listing


def subject_of(body: bytes) -> Subject:
    """The user a dead letter's body names, if it is a version with personal data in clear."""
    is_json, envelope = parse_json_body(body)
    if not is_json or not isinstance(envelope, Mapping):
        return Subject(None, Keep.UNDECODABLE)
    event_type, version = envelope.get("type"), envelope.get("version")
    if not isinstance(event_type, str) or not isinstance(version, int) or isinstance(version, bool):
        return Subject(None, Keep.UNDECODABLE)
    event = f"{event_type} v{version}"
    if (event_type, version) not in registered_events():
        return Subject(None, Keep.UNKNOWN_VERSION, event)
    if (event_type, version) not in PERSONAL_VERSIONS:
        return Subject(None, Keep.NO_PERSONAL_DATA, event)
    data = envelope.get("data")
    raw = data.get("user_id") if isinstance(data, Mapping) else None
    try:
        user_id = uuid.UUID(raw) if isinstance(raw, str) else None
    except ValueError:
        user_id = None
    if user_id is None:
        return Subject(None, Keep.NO_USER_ID, event)
    return Subject(user_id, None, event)


@dataclass
class DropOutcome:
    """What the walk did so far (kept current during the loop)."""

    dropped: int = 0
    kept: Counter[Keep] = field(default_factory=Counter)
    stopped: bool = False  # a stop was requested before the walk ended
    lookups: int = 0  # requests to accounts (one per distinct user id)

    @property
    def handled(self) -> int:
        return self.dropped + self.kept.total()

    def kept_summary(self) -> str:
        """``kept 3 (user not erased: 2, no user id: 1)``."""
        total = self.kept.total()
        if not total:
            return "kept 0"
        reasons = ", ".join(f"{keep.value}: {self.kept[keep]}" for keep in Keep if self.kept[keep])
        return f"kept {total} ({reasons})"


@dataclass(frozen=True)
class Decision:
    """One message's fate, reported to ``on_handled`` (the dry-run listing, the progress bar)."""

    message: RawMessage
    subject: Subject
    keep: Keep | None  # None: dropped

    @property
    def message_id(self) -> str:
        return as_str(self.message.properties.get("message_id")) or "-"


def _stopped_error(exc: DlqError, queue: str, outcome: DropOutcome) -> DlqError:
    error = type(exc)(
        f"{exc}; stopped after {outcome.handled} message(s) ({outcome.dropped} dropped), "
        f"the rest is still in {queue}"
    )
    error.exit_code = exc.exit_code
    return error


class ErasedDropper(StoppableWalk):
    """Walks a DLQ once, dropping the dead letters of erased users, keeping the others.

    One message at a time: take it; if it is to be dropped, acknowledge it; otherwise publish
    it again to the same DLQ, unchanged (body, properties, every header: its failure reason
    stays), with publisher confirms, and only once the broker confirmed acknowledge the copy
    taken. An interruption loses nothing: at worst one kept message is in the DLQ twice.

    ``max_messages`` must be the DLQ depth seen before starting: kept messages go to the back
    of the queue and must not be walked a second time. The kept messages keep their relative
    order (at the back, after any dead letter that arrived during the walk).

    With ``dry_run`` nothing is acknowledged or published: the messages taken are given back
    (in the order taken) when the walk ends or fails.

    Accounts is asked once per user id (per ``statuses`` given: one pass over every DLQ shares
    it). When it cannot answer (connection refused, timeout,
    5xx, a refused key), the message in hand is given back and the walk stops with that error.
    :meth:`request_stop` (safe from a signal handler) ends the walk at the next message.
    """

    def __init__(
        self,
        channel: ReplayChannel,
        queue: str,
        lookup: ErasureLookup,
        *,
        max_messages: int,
        dry_run: bool = False,
        on_handled: Callable[[Decision], None] | None = None,
        statuses: dict[uuid.UUID, UserStatus] | None = None,
    ) -> None:
        default_target(queue)  # refuses a queue that is not a DLQ
        self.channel = channel
        self.queue = queue
        self.lookup = lookup
        self.max_messages = max(max_messages, 0)
        self.dry_run = dry_run
        self.on_handled = on_handled
        self.outcome = DropOutcome()
        # what accounts said about each user: shared by the walks of one ``--all`` pass
        self._statuses: dict[uuid.UUID, UserStatus] = {} if statuses is None else statuses
        self._held: list[int] = []  # dry run: delivery tags to give back

    def run(self) -> DropOutcome:
        try:
            self.outcome.stopped = self.walk(
                self.channel,
                self.queue,
                limit=self.max_messages,
                done=lambda: self.outcome.handled,
                handle=self._handle,
            )
        except DlqError as exc:
            # If the connection is gone, the broker gives the held messages back itself.
            with contextlib.suppress(DlqError):
                self._give_back_held()
            raise _stopped_error(exc, self.queue, self.outcome) from exc
        self._give_back_held()
        return self.outcome

    def _give_back_held(self) -> None:
        held, self._held = self._held, []
        for tag in held:
            self.channel.requeue(tag)

    def _handle(self, message: RawMessage) -> None:
        subject = subject_of(message.body)
        try:
            keep = subject.keep if subject.user_id is None else self._keep(subject.user_id)
        except DlqError:
            if self.dry_run:  # given back with the others, in the order taken
                self._held.append(message.delivery_tag)
            else:
                self.channel.requeue(message.delivery_tag)
            raise
        if self.dry_run:
            self._held.append(message.delivery_tag)
        elif keep is None:
            self.channel.ack(message.delivery_tag)
        else:
            self._put_back(message)
        if keep is None:
            self.outcome.dropped += 1
        else:
            self.outcome.kept[keep] += 1
        if self.on_handled is not None:
            self.on_handled(Decision(message, subject, keep))

    def _keep(self, user_id: uuid.UUID) -> Keep | None:
        status = self._statuses.get(user_id)
        if status is None:
            self.outcome.lookups += 1
            status = self.lookup.status(user_id)
            self._statuses[user_id] = status
        if status is UserStatus.ERASED:
            return None
        return Keep.NOT_ERASED if status is UserStatus.PRESENT else Keep.UNKNOWN_USER

    def _put_back(self, message: RawMessage) -> None:
        properties: dict[str, Any] = dict(message.properties)
        try:
            self.channel.publish(self.queue, message.body, properties)
        except PublishFailedError:
            self.channel.requeue(message.delivery_tag)
            raise
        self.channel.ack(message.delivery_tag)
