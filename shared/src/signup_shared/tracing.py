"""W3C trace context across HTTP, the outbox and every consumer, with OpenTelemetry spans.

A trace starts at the HTTP request (or continues the caller's ``traceparent``), is stored with
the outbox row, travels in the AMQP ``traceparent`` header and continues in every consumer and
in every event it causes. The ids are bound into every log line (``trace_id``, ``span_id``)
next to the correlation id.

Exporting is off by default. It is switched on by ``OTEL_EXPORTER_OTLP_ENDPOINT`` (OTLP over
HTTP) or, for tests and local debugging, by ``SIGNUP_TRACE_FILE`` (one JSON document per
finished span, appended to that file). Spans are recorded (OpenTelemetry SDK spans) only while
something exports them: otherwise a span only carries the trace context, a new span id in the
same trace (random ids, as the SDK's ``RandomIdGenerator`` makes them), so the ``traceparent``
headers, outbox rows and log lines are the same as with export on, at a fraction of the cost
(an SDK span nobody reads was ~10 % of a consumer's CPU per message at low rates).
"""

import contextlib
import os
import random
import re
from collections.abc import Iterator, Mapping
from contextvars import ContextVar
from typing import IO, Any

import structlog
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    SimpleSpanProcessor,
    SpanExporter,
    SpanExportResult,
)
from opentelemetry.trace import SpanKind
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from signup_contracts.amqp import TRACEPARENT_HEADER

TRACEPARENT_LENGTH = 55
_VALID = re.compile(r"00-(?!0{32})[0-9a-f]{32}-(?!0{16})[0-9a-f]{16}-[0-9a-f]{2}")
_PROPAGATOR = TraceContextTextMapPropagator()
_current: ContextVar[str | None] = ContextVar("traceparent", default=None)
_consumed: ContextVar[dict[Any, str] | None] = ContextVar("consumed", default=None)
_provider: dict[str, TracerProvider] = {}
_exporting: dict[str, bool] = {"on": False}  # whether the current provider exports spans

SERVER, CONSUMER, PRODUCER, INTERNAL = (
    SpanKind.SERVER,
    SpanKind.CONSUMER,
    SpanKind.PRODUCER,
    SpanKind.INTERNAL,
)


def parse_traceparent(value: object) -> str | None:
    """A valid version-00 ``traceparent`` string, else None (whatever type ``value`` has)."""
    if isinstance(value, bytes):
        try:
            value = value.decode("ascii")
        except UnicodeDecodeError:
            return None
    if not isinstance(value, str) or len(value) != TRACEPARENT_LENGTH:
        return None
    return value if _VALID.fullmatch(value) else None


class JsonLinesExporter(SpanExporter):
    """Appends each finished span as one JSON line (a test or a developer reads the file)."""

    def __init__(self, path: str) -> None:
        self._file: IO[str] = open(path, "a", encoding="utf-8")  # noqa: SIM115 kept open

    def export(self, spans: Any) -> SpanExportResult:
        for span in spans:
            self._file.write(_one_line(span) + "\n")
        self._file.flush()
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        self._file.close()


def _one_line(span: ReadableSpan) -> str:
    return " ".join(span.to_json().split())


def configure_tracing(
    service: str,
    environ: Mapping[str, str] | None = None,
    exporter: SpanExporter | None = None,
) -> TracerProvider:
    """Install this process's tracer provider; ``exporter`` (tests) overrides the environment."""
    env = os.environ if environ is None else environ
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    if exporter is not None:
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    elif env.get("SIGNUP_TRACE_FILE"):
        provider.add_span_processor(
            SimpleSpanProcessor(JsonLinesExporter(env["SIGNUP_TRACE_FILE"]))
        )
    elif env.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    old = _provider.get("current")
    _provider["current"] = provider
    _exporting["on"] = exporting(env, exporter)
    if old is not None:
        old.shutdown()
    return provider


def exporting(environ: Mapping[str, str], exporter: SpanExporter | None = None) -> bool:
    """Whether spans are exported (and so recorded) with this configuration."""
    return exporter is not None or bool(
        environ.get("SIGNUP_TRACE_FILE") or environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
    )


def _tracer() -> trace.Tracer:
    provider = _provider.get("current")
    if provider is None:
        provider = configure_tracing("signup", environ={})
    return provider.get_tracer("signup_shared")


def shutdown() -> None:
    provider = _provider.pop("current", None)
    _exporting["on"] = False
    if provider is not None:
        provider.shutdown()


@contextlib.contextmanager
def span(
    name: str,
    parent: object = None,
    kind: SpanKind = INTERNAL,
    attributes: Mapping[str, str | int] | None = None,
) -> Iterator[str]:
    """A span, child of ``parent`` (a traceparent; malformed or missing starts a new trace),
    or of the current span. Yields this span's own ``traceparent`` for what it causes."""
    carrier_parent = parse_traceparent(parent) or _current.get()
    if not _exporting["on"]:
        with _carried(untraced_child(carrier_parent)) as traceparent:
            yield traceparent
        return
    context = _PROPAGATOR.extract({TRACEPARENT_HEADER: carrier_parent}) if carrier_parent else None
    with _tracer().start_as_current_span(
        name, context=context, kind=kind, attributes=dict(attributes or {})
    ) as current:
        carrier: dict[str, str] = {}
        _PROPAGATOR.inject(carrier, context=trace.set_span_in_context(current))
        with _carried(carrier.get(TRACEPARENT_HEADER, "")) as traceparent:
            yield traceparent


def stamp(
    name: str,
    parent: object = None,
    kind: SpanKind = INTERNAL,
    attributes: Mapping[str, str | int] | None = None,
) -> str:
    """The traceparent of a span with no work inside it (a producer span stamped on a message
    as it is published): ``span``'s, but without export nothing is made current or bound
    into log lines meanwhile, since nothing runs inside it."""
    if not _exporting["on"]:
        return untraced_child(parse_traceparent(parent) or _current.get())
    with span(name, parent, kind, attributes) as traceparent:
        return traceparent


def untraced_child(parent: str | None) -> str:
    """The traceparent of a new span under ``parent`` (a valid one, or None for a new trace)
    when nothing records spans: the parent's trace id and flags, a new random span id."""
    if parent is None:
        trace_id, flags = f"{random.getrandbits(128) or 1:032x}", "01"
    else:
        trace_id, flags = parent[3:35], parent[53:55]
    return f"00-{trace_id}-{random.getrandbits(64) or 1:016x}-{flags}"


@contextlib.contextmanager
def _carried(traceparent: str) -> Iterator[str]:
    """``traceparent`` as the current span's, its ids bound into every log line meanwhile."""
    token = _current.set(traceparent or None)
    log_tokens = structlog.contextvars.bind_contextvars(
        trace_id=traceparent[3:35], span_id=traceparent[36:52]
    )
    try:
        yield traceparent
    finally:
        structlog.contextvars.reset_contextvars(**log_tokens)
        _current.reset(token)


def current_traceparent() -> str | None:
    """The traceparent of the span in progress (stored with outbox rows written inside it)."""
    return _current.get()


def rename_current(name: str) -> None:
    """Name the span in progress once its name is known (an HTTP route after routing)."""
    trace.get_current_span().update_name(name)


def consumed(queue: str, event_id: Any, header: object) -> None:
    """A ``consume`` span for one delivery, child of its ``traceparent`` header; remembered so
    that the handling of that event (``handling``) continues the same trace."""
    with span(f"consume {queue}", header, CONSUMER, {"messaging.destination.name": queue}) as tp:
        remembered = _consumed.get()
        if remembered is None:
            remembered = {}
            _consumed.set(remembered)
        remembered[event_id] = tp


def forget_consumed() -> None:
    """Drop what the previous batch remembered (called once per batch by the runtime)."""
    remembered = _consumed.get()
    if remembered:
        remembered.clear()


@contextlib.contextmanager
def handling(event_id: Any, name: str) -> Iterator[str]:
    """The span of handling one consumed event; outbox rows written inside carry its trace."""
    remembered = _consumed.get() or {}
    with span(name, remembered.get(event_id)) as traceparent:
        yield traceparent
