"""JSON Schemas of the published messages, one per (type, version), self-contained.

``message_schema`` is what a consumer validates a message body against: the envelope with
``type`` and ``version`` fixed and the payload inlined (no ``$ref``), so the schema can be
embedded in an AsyncAPI document, frozen in a file and compared with another version of itself.
"""

import copy
import functools
import json
from pathlib import Path
from typing import Any

from signup_contracts.amqp import event_name
from signup_contracts.envelope import Envelope, EventData, registered_events

JsonSchema = dict[str, Any]


def message_schema(event: type[EventData]) -> JsonSchema:
    """The JSON Schema of a whole message (envelope and payload) of this type and version (a copy
    the caller may change: pydantic builds it in a few ms, once per class)."""
    return copy.deepcopy(_message_schema(event))


@functools.cache
def _message_schema(event: type[EventData]) -> JsonSchema:
    schema = inline_refs(Envelope[event].model_json_schema())  # type: ignore[valid-type]
    schema["title"] = f"{event.event_type} v{event.version}"
    properties = schema["properties"]
    properties["type"] = {**properties["type"], "const": event.event_type}
    properties["version"] = {**properties["version"], "const": event.version}
    return schema


def inline_refs(schema: JsonSchema) -> JsonSchema:
    """Replace every local ``{"$ref": "#/$defs/X"}`` with X itself and drop ``$defs``."""
    definitions: dict[str, Any] = schema.get("$defs", {})

    def resolve(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/$defs/"):
                target = definitions[ref.removeprefix("#/$defs/")]
                siblings = {k: v for k, v in node.items() if k != "$ref"}
                return resolve({**target, **siblings})
            return {key: resolve(value) for key, value in node.items() if key != "$defs"}
        if isinstance(node, list):
            return [resolve(item) for item in node]
        return node

    resolved: JsonSchema = resolve(schema)
    return resolved


def frozen_file_name(event_type: str, version: int) -> str:
    """``user_signed_up.v1.json``."""
    return f"{event_name(event_type)}.v{version}.json"


def render(schema: JsonSchema) -> str:
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"


def freeze(directory: Path) -> list[Path]:
    """Write the schema of every registered (type, version) that has no frozen file yet.

    An existing file is never overwritten: a published version's schema changes only when a
    person deletes its file on purpose (after checking that no consumer still reads it).
    """
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for (event_type, version), event in registered_events().items():
        path = directory / frozen_file_name(event_type, version)
        if not path.exists():
            path.write_text(render(message_schema(event)))
            written.append(path)
    return written
