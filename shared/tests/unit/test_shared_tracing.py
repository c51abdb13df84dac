"""Trace context: parsing whatever a header holds, spans continuing a trace, ids in log lines."""

from collections.abc import Iterator

import pytest
import structlog
from hypothesis import given
from hypothesis import strategies as st
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from signup_shared import tracing

PARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    tracing.configure_tracing("test", exporter=exporter)
    yield exporter
    tracing.shutdown()


@given(
    st.one_of(
        st.none(),
        st.integers(),
        st.floats(),
        st.text(),
        st.binary(),
        st.lists(st.text()),
        st.dictionaries(st.text(), st.text()),
    )
)
def test_parse_never_raises_and_accepts_only_valid_values(value: object) -> None:
    parsed = tracing.parse_traceparent(value)
    assert parsed is None or tracing.parse_traceparent(parsed) == parsed


@pytest.mark.parametrize(
    "value",
    [
        PARENT.upper(),
        "00-00000000000000000000000000000000-b7ad6b7169203331-01",
        "00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01",
        "01-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        PARENT + " ",
        PARENT[:-1],
    ],
)
def test_malformed_traceparents_are_refused(value: str) -> None:
    assert tracing.parse_traceparent(value) is None


def test_bytes_are_accepted_when_they_hold_a_valid_traceparent() -> None:
    assert tracing.parse_traceparent(PARENT.encode()) == PARENT


def test_a_span_continues_the_trace_it_is_given(spans: InMemorySpanExporter) -> None:
    with tracing.span("consume", PARENT, tracing.CONSUMER) as traceparent:
        assert traceparent.split("-")[1] == PARENT.split("-")[1]
        assert tracing.current_traceparent() == traceparent
    [finished] = spans.get_finished_spans()
    assert format(finished.context.trace_id, "032x") == PARENT.split("-")[1]
    assert finished.parent is not None
    assert format(finished.parent.span_id, "016x") == PARENT.split("-")[2]
    assert tracing.current_traceparent() is None


def test_a_malformed_parent_starts_a_new_trace(spans: InMemorySpanExporter) -> None:
    with tracing.span("request", "garbage") as traceparent:
        assert tracing.parse_traceparent(traceparent) == traceparent
    [finished] = spans.get_finished_spans()
    assert finished.parent is None


def test_nested_spans_are_children_of_the_current_one(spans: InMemorySpanExporter) -> None:
    with tracing.span("request", None, tracing.SERVER), tracing.span("handle"):
        pass
    inner, outer = spans.get_finished_spans()
    assert inner.parent is not None and inner.parent.span_id == outer.context.span_id


def test_trace_and_span_ids_are_bound_into_log_lines(spans: InMemorySpanExporter) -> None:
    with tracing.span("consume", PARENT):
        bound = structlog.contextvars.get_contextvars()
        assert bound["trace_id"] == PARENT.split("-")[1]
        assert len(bound["span_id"]) == 16
    assert "trace_id" not in structlog.contextvars.get_contextvars()


# Export off (the default): no SDK span is made, only the trace context is carried ------------
@pytest.fixture
def untraced() -> Iterator[None]:
    tracing.configure_tracing("test", environ={})
    yield
    tracing.shutdown()


def test_only_an_exporter_or_its_setting_switches_recording_on() -> None:
    assert not tracing.exporting({})
    assert tracing.exporting({"SIGNUP_TRACE_FILE": "/tmp/spans.jsonl"})
    assert tracing.exporting({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"})
    assert tracing.exporting({}, InMemorySpanExporter())


@given(st.one_of(st.none(), st.just(PARENT), st.just("garbage")))
def test_an_untraced_span_is_a_valid_child_of_its_parent(parent: str | None) -> None:
    tracing.configure_tracing("test", environ={})
    try:
        with tracing.span("consume", parent) as traceparent:
            assert tracing.parse_traceparent(traceparent) == traceparent
            assert tracing.current_traceparent() == traceparent
            if parent == PARENT:
                assert traceparent.split("-")[1] == PARENT.split("-")[1]
                assert traceparent.split("-")[2] != PARENT.split("-")[2]
                assert traceparent.endswith("-01")
        assert tracing.current_traceparent() is None
    finally:
        tracing.shutdown()


def test_untraced_nested_spans_stay_in_one_trace(untraced: None) -> None:
    with tracing.span("request", None, tracing.SERVER) as outer:
        with tracing.span("handle") as inner:
            assert inner.split("-")[1] == outer.split("-")[1]
            assert inner.split("-")[2] != outer.split("-")[2]
        assert tracing.current_traceparent() == outer


def test_untraced_spans_keep_the_parents_flags() -> None:
    unsampled = PARENT[:-2] + "00"
    assert tracing.untraced_child(unsampled).endswith("-00")
    assert tracing.untraced_child(unsampled).split("-")[1] == PARENT.split("-")[1]


def test_untraced_span_ids_are_bound_into_log_lines(untraced: None) -> None:
    with tracing.span("consume", PARENT) as traceparent:
        bound = structlog.contextvars.get_contextvars()
        assert bound["trace_id"] == PARENT.split("-")[1]
        assert bound["span_id"] == traceparent.split("-")[2]
    assert "trace_id" not in structlog.contextvars.get_contextvars()


def test_an_untraced_consume_is_continued_by_its_handling(untraced: None) -> None:
    tracing.forget_consumed()
    tracing.consumed("q", "event-1", PARENT)
    with tracing.handling("event-1", "handle") as traceparent:
        assert traceparent.split("-")[1] == PARENT.split("-")[1]


def test_a_stamp_is_a_finished_child_span_when_exporting(spans: InMemorySpanExporter) -> None:
    traceparent = tracing.stamp("publish k", PARENT, tracing.PRODUCER, {"messaging.system": "x"})
    [finished] = spans.get_finished_spans()
    assert format(finished.context.span_id, "016x") == traceparent.split("-")[2]
    assert finished.parent is not None
    assert format(finished.parent.span_id, "016x") == PARENT.split("-")[2]
    assert tracing.current_traceparent() is None


@given(st.one_of(st.none(), st.just(PARENT), st.just("garbage")))
def test_an_untraced_stamp_is_a_child_of_its_parent_and_changes_no_context(
    parent: str | None,
) -> None:
    tracing.configure_tracing("test", environ={})
    try:
        with tracing.span("relay") as current:
            traceparent = tracing.stamp("publish k", parent, tracing.PRODUCER)
            assert tracing.parse_traceparent(traceparent) == traceparent
            expected_trace = PARENT if parent == PARENT else current
            assert traceparent.split("-")[1] == expected_trace.split("-")[1]
            assert traceparent.split("-")[2] not in (PARENT.split("-")[2], current.split("-")[2])
            assert tracing.current_traceparent() == current
            assert structlog.contextvars.get_contextvars()["span_id"] == current.split("-")[2]
    finally:
        tracing.shutdown()
