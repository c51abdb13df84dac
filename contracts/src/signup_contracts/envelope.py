"""The envelope every event travels in, and the registry of known (type, version) pairs."""

import functools
import uuid
from datetime import UTC, datetime
from typing import Annotated, Any, ClassVar, Final, Generic, TypeVar

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field

from signup_contracts.amqp import event_name as event_name
from signup_contracts.amqp import routing_key


class EventData(BaseModel):
    """Payload of one event type and version.

    Subclasses set ``event_type``, ``version`` and ``producer`` (the service that publishes it;
    the routing key is ``signup_contracts.amqp.routing_key`` of the three). Readers ignore
    fields they do not know.
    """

    model_config = ConfigDict(frozen=True, extra="ignore")

    event_type: ClassVar[str]
    version: ClassVar[int]
    producer: ClassVar[str]
    producers: ClassVar[tuple[str, ...]] = ()
    """When several services publish this event, each on its own ``<service>.<event_name>``
    (``UserErased``): all of them. Empty: ``producer`` alone (see ``publishers``)."""
    personal_data: ClassVar[bool] = False
    """True when the payload carries personal data in clear (``UserSignedUp`` v1, v2): such a
    version is never kept in the event history (``history_versions``)."""


def publishers(event: type[EventData]) -> tuple[str, ...]:
    """The services that publish ``event``: its ``producers``, else its one ``producer``."""
    return event.producers or (event.producer,)


D = TypeVar("D", bound=EventData)

_REGISTRY: dict[tuple[str, int], type[EventData]] = {}


def register(cls: type[D]) -> type[D]:
    """Class decorator: makes ``parse_envelope`` know this (type, version)."""
    key = (cls.event_type, cls.version)
    if key in _REGISTRY and _REGISTRY[key] is not cls:
        raise ValueError(f"{cls.event_type} v{cls.version} is registered twice")
    _REGISTRY[key] = cls
    return cls


def registered_events() -> dict[tuple[str, int], type[EventData]]:
    return dict(sorted(_REGISTRY.items()))


def history_versions() -> list[type[EventData]]:
    """The registered versions the event history keeps: those without personal data in clear."""
    return [event for event in registered_events().values() if not event.personal_data]


class UnknownEventError(ValueError):
    """The message is well formed but names a type or version this code does not know."""


def _now() -> datetime:
    return datetime.now(UTC)


ID_MAX_CHARACTERS: Final = 100
"""The outbox's ``correlation_id`` column holds at most 100 characters."""
ID_MAX_BYTES: Final = 255
"""The correlation id travels as an AMQP short string too (``amqp.SHORTSTR_BYTES``): 255 bytes."""
ID_RULE: Final = f"at most {ID_MAX_CHARACTERS} characters and at most {ID_MAX_BYTES} bytes in UTF-8"


def bounded_id(value: str) -> str:
    """A correlation or causation id that can be stored and travel: ``ID_RULE``.

    One rule at every edge, checked where an envelope is made or decoded: a longer id could not
    be stored in an outbox nor travel as the AMQP ``correlation_id`` of the events it causes, so
    such an event is refused as poison on arrival and cannot be created to go out. (Not in the
    JSON Schema as ``maxLength``: the frozen schemas would count that as a new version.)
    """
    try:
        size = len(value.encode())
    except UnicodeEncodeError:
        raise ValueError("must be valid Unicode text (no lone surrogates)") from None
    if len(value) > ID_MAX_CHARACTERS or size > ID_MAX_BYTES:
        raise ValueError(f"must be {ID_RULE} (got {len(value)} characters, {size} bytes)")
    return value


BoundedId = Annotated[str, AfterValidator(bounded_id)]


class Envelope(BaseModel, Generic[D]):
    """Metadata common to every event, around the versioned payload ``data``."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    id: uuid.UUID = Field(default_factory=uuid.uuid4)
    type: str
    version: int = Field(ge=1)
    occurred_at: AwareDatetime = Field(default_factory=_now)
    producer: str
    correlation_id: BoundedId
    causation_id: BoundedId | None = None
    data: D

    @classmethod
    def wrap(
        cls,
        data: D,
        *,
        producer: str,
        correlation_id: str,
        causation_id: str | None = None,
        event_id: uuid.UUID | None = None,
        occurred_at: datetime | None = None,
    ) -> "Envelope[D]":
        return Envelope[D](
            id=event_id or uuid.uuid4(),
            type=data.event_type,
            version=data.version,
            occurred_at=occurred_at or _now(),
            producer=producer,
            correlation_id=correlation_id,
            causation_id=causation_id,
            data=data,
        )

    def caused(self, data: EventData, *, producer: str) -> "Envelope[Any]":
        """A new event caused by this one: same correlation id, causation id = this id."""
        return Envelope.wrap(
            data, producer=producer, correlation_id=self.correlation_id, causation_id=str(self.id)
        )

    @property
    def routing_key(self) -> str:
        """``accounts.user_signed_up`` for v1, ``accounts.user_signed_up.v2`` for v2 (one key
        per version: ``signup_contracts.amqp.routing_key``)."""
        return routing_key(self.producer, self.type, self.version)

    def to_json(self) -> bytes:
        return self.model_dump_json().encode()


def parse_envelope(body: bytes | str) -> Envelope[Any]:
    """Decode and validate a JSON envelope and its payload.

    Raises ``pydantic.ValidationError`` for malformed JSON or schema errors and
    ``UnknownEventError`` for a type/version pair that is not registered.
    """
    raw = _RawEnvelope.model_validate_json(body)
    data_cls = _REGISTRY.get((raw.type, raw.version))
    if data_cls is None:
        raise UnknownEventError(f"unknown event {raw.type} v{raw.version}")
    # The JSON was parsed once (above); the typed envelope validates the parsed fields in
    # Python mode, which checks the payload against its class and leaves the rest as parsed.
    fields = {name: raw.__dict__[name] for name in raw.model_fields_set}
    return _typed(data_cls).model_validate(fields)


_RawEnvelope: type[Envelope[Any]] = Envelope[dict[str, Any]]  # type: ignore[type-var]


@functools.cache
def _typed(data_cls: type[EventData]) -> type[Envelope[Any]]:
    return Envelope[data_cls]  # type: ignore[valid-type]
