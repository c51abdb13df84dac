"""The structural comparison behind ``signup_contracts.compat``: one JSON Schema against another.

``check(frozen, current)`` walks both schemas node by node from the root and reports every
``Break`` in both directions (the rules are listed in ``signup_contracts.compat``'s doc).
"""

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any

from signup_contracts.schemas import JsonSchema


class Direction(Enum):
    CONSUMERS = "deployed consumers would reject messages the changed producer sends"
    REPLAY = "the changed reader would reject messages published before the change"


@dataclass(frozen=True)
class Break:
    path: str
    rule: str
    detail: str
    direction: Direction

    def __str__(self) -> str:
        return f"{self.path or '<message>'}: {self.rule}: {self.detail} ({self.direction.value})"


_DOCUMENTATION = frozenset(
    {
        "title",
        "description",
        "default",
        "examples",
        "deprecated",
        "$comment",
        "readOnly",
        "writeOnly",
    }
)
_LOWER_BOUNDS = ("minimum", "exclusiveMinimum", "minLength", "minItems", "minProperties")
_UPPER_BOUNDS = ("maximum", "exclusiveMaximum", "maxLength", "maxItems", "maxProperties")
_HANDLED = frozenset(
    {
        "type",
        "anyOf",
        "oneOf",
        "enum",
        "const",
        "properties",
        "required",
        "items",
        "additionalProperties",
        *_LOWER_BOUNDS,
        *_UPPER_BOUNDS,
    }
)
_WORDS = {
    Direction.CONSUMERS: {
        "type": "type-widened",
        "enum": "enum-widened",
        "bound": "constraint-loosened",
    },
    Direction.REPLAY: {
        "type": "type-narrowed",
        "enum": "enum-narrowed",
        "bound": "constraint-tightened",
    },
}


def check(frozen: JsonSchema, current: JsonSchema) -> list[Break]:
    """Every way ``current`` breaks readers or messages of ``frozen``; empty if compatible."""
    return [
        *_subset(current, frozen, "", Direction.CONSUMERS),
        *_subset(frozen, current, "", Direction.REPLAY),
    ]


def _subset(
    inner: JsonSchema, outer: JsonSchema, path: str, direction: Direction
) -> Iterator[Break]:
    """Breaks of "every value valid for ``inner`` is valid for ``outer``"."""
    inner_variants, outer_variants = _variants(inner), _variants(outer)
    for kind, inner_variant in inner_variants.items():
        outer_variant = _counterpart(kind, outer_variants)
        if outer_variant is None:
            yield _break(
                path, _WORDS[direction]["type"], f"{kind} {_accepted(direction)}", direction
            )
        else:
            yield from _same_type(inner_variant, outer_variant, path, direction)


def _accepted(direction: Direction) -> str:
    return "is now allowed" if direction is Direction.CONSUMERS else "is no longer allowed"


def _counterpart(kind: str, variants: Mapping[str, JsonSchema]) -> JsonSchema | None:
    if kind in variants:
        return variants[kind]
    if kind == "integer" and "number" in variants:
        return variants["number"]
    return variants.get("any")


def _variants(schema: JsonSchema) -> dict[str, JsonSchema]:
    """The schema split by JSON type (``anyOf``/``oneOf`` branches and type lists flattened)."""
    branches = schema.get("anyOf") or schema.get("oneOf")
    if branches:
        result: dict[str, JsonSchema] = {}
        for branch in branches:
            for kind, variant in _variants(branch).items():
                if kind in result and result[kind] != variant:
                    result[kind] = {"x-ambiguous": [result[kind], variant]}
                else:
                    result[kind] = variant
        return result
    kinds = schema.get("type")
    if isinstance(kinds, list):
        return {kind: {**schema, "type": kind} for kind in kinds}
    if isinstance(kinds, str):
        return {kinds: schema}
    values = _values(schema)
    if values is not None and values:
        return {_json_type(value): schema for value in values}
    return {"any": schema}


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


def _values(schema: JsonSchema) -> list[Any] | None:
    if "const" in schema:
        return [schema["const"]]
    enum = schema.get("enum")
    return list(enum) if isinstance(enum, list) else None


def _same_type(
    inner: JsonSchema, outer: JsonSchema, path: str, direction: Direction
) -> Iterator[Break]:
    if "x-ambiguous" in inner or "x-ambiguous" in outer:
        if inner != outer:
            yield _break(path, "constraint-changed", "alternatives of one type changed", direction)
        return
    yield from _enum(inner, outer, path, direction)
    yield from _bounds(inner, outer, path, direction)
    yield from _other_keywords(inner, outer, path, direction)
    if "properties" in inner or "properties" in outer or "required" in outer:
        yield from _object(inner, outer, path, direction)
    if "items" in outer:
        if "items" not in inner:
            yield _break(
                _join(path, "[]"),
                _WORDS[direction]["type"],
                f"items of any type {_accepted(direction)}",
                direction,
            )
        else:
            yield from _subset(inner["items"], outer["items"], _join(path, "[]"), direction)


def _enum(inner: JsonSchema, outer: JsonSchema, path: str, direction: Direction) -> Iterator[Break]:
    inner_values, outer_values = _values(inner), _values(outer)
    if outer_values is None:
        return
    rule = _WORDS[direction]["enum"]
    if inner_values is None:
        yield _break(
            path,
            rule,
            f"any value {_accepted(direction)} (was one of {_show(outer_values)})",
            direction,
        )
        return
    extra = [value for value in inner_values if value not in outer_values]
    if extra:
        yield _break(path, rule, f"value {_show(extra)} {_accepted(direction)}", direction)


def _bounds(
    inner: JsonSchema, outer: JsonSchema, path: str, direction: Direction
) -> Iterator[Break]:
    rule = _WORDS[direction]["bound"]
    for keyword in (*_LOWER_BOUNDS, *_UPPER_BOUNDS):
        if keyword not in outer:
            continue
        limit = outer[keyword]
        if keyword not in inner:
            yield _break(path, rule, f"{keyword} {limit} {_dropped(direction)}", direction)
            continue
        value = inner[keyword]
        looser = value < limit if keyword in _LOWER_BOUNDS else value > limit
        if looser:
            before, after = _before_after(value, limit, direction)
            yield _break(path, rule, f"{keyword} {before} -> {after}", direction)


def _dropped(direction: Direction) -> str:
    return "dropped" if direction is Direction.CONSUMERS else "added"


def _before_after(inner: Any, outer: Any, direction: Direction) -> tuple[Any, Any]:
    """(frozen, current) for the report, whichever side is ``inner``."""
    return (outer, inner) if direction is Direction.CONSUMERS else (inner, outer)


def _other_keywords(
    inner: JsonSchema, outer: JsonSchema, path: str, direction: Direction
) -> Iterator[Break]:
    for keyword in sorted(set(inner) | set(outer)):
        if keyword in _HANDLED or keyword in _DOCUMENTATION:
            continue
        if keyword in outer and inner.get(keyword) != outer[keyword]:
            before, after = _before_after(inner.get(keyword), outer[keyword], direction)
            yield _break(
                path,
                "constraint-changed",
                f"{keyword} {_show(before)} -> {_show(after)}",
                direction,
            )


def _object(
    inner: JsonSchema, outer: JsonSchema, path: str, direction: Direction
) -> Iterator[Break]:
    inner_properties: dict[str, Any] = inner.get("properties", {})
    outer_properties: dict[str, Any] = outer.get("properties", {})
    inner_required, outer_required = set(inner.get("required", [])), set(outer.get("required", []))
    frozen_required = outer_required if direction is Direction.CONSUMERS else inner_required
    for name in sorted(outer_required - inner_required):
        if direction is Direction.CONSUMERS:
            removed = name not in inner_properties
            rule = "removed-field" if removed else "no-longer-required"
            detail = "old readers require it" if removed else "the producer may leave it out"
        else:
            rule = "new-required-field"
            detail = (
                "it is new" if name not in inner_properties else "it was optional"
            ) + ", older messages may lack it"
        yield _break(_join(path, name), rule, detail, direction)
    if direction is Direction.CONSUMERS:
        for name in sorted(set(outer_properties) - set(inner_properties) - frozen_required):
            yield _break(
                _join(path, name),
                "removed-field",
                "old readers lose it (a rename is a removal and an addition)",
                direction,
            )
    for name in sorted(set(inner_properties) & set(outer_properties)):
        yield from _subset(
            inner_properties[name], outer_properties[name], _join(path, name), direction
        )
    if outer.get("additionalProperties") is False:
        for name in sorted(set(inner_properties) - set(outer_properties)):
            yield _break(
                _join(path, name),
                "extra-properties",
                "the other side forbids properties it does not list",
                direction,
            )
        if inner.get("additionalProperties") is not False:
            yield _break(
                path,
                "extra-properties",
                "unlisted properties are allowed on one side and forbidden on the other",
                direction,
            )


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _show(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


def _break(path: str, rule: str, detail: str, direction: Direction) -> Break:
    return Break(path, rule, detail, direction)
