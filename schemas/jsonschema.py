"""Export the wire contract as JSON Schema (draft 2020-12) for producers in other languages.

One file per event type, ``<type>.schema.json``, generated from
:mod:`schemas.contract`. The files are committed under ``schemas/json/``; a
test regenerates them and fails if they differ.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

from schemas.contract import CONTRACT_VERSION, EVENT_TYPES, EventType, Field
from schemas.triggers import TRIGGER_SCHEMA_VERSION, Trigger

DEFAULT_DIRECTORY = Path(__file__).resolve().parent / "json"
_ID_BASE = "urn:kizuna:schema:v1:"


def field_schema(field: Field) -> dict[str, Any]:
    """The JSON Schema of one field."""
    schema: dict[str, Any]
    if field.type == "timestamp":
        schema = {"type": "string", "format": "date-time", "pattern": f"^{field.pattern}$"}
    elif field.type == "array":
        assert field.items is not None
        schema = {"type": "array", "items": _object_schema(field.items, closed=False)}
    elif field.type == "object":
        assert field.properties is not None
        schema = _object_schema(field.properties, closed=False)
    else:
        schema = {"type": field.type}
    if field.description:
        schema["description"] = field.description
    if field.non_empty:
        schema["minLength"] = 1
        schema["pattern"] = r"\S"
    if field.enum is not None:
        schema["enum"] = list(field.enum)
    if field.pattern is not None and field.type == "string":
        schema["pattern"] = f"^{field.pattern}$"
    if field.minimum is not None:
        schema["minimum"] = field.minimum
    if field.maximum is not None:
        schema["maximum"] = field.maximum
    if field.default not in (None, ()):
        schema["default"] = field.default
    return schema


def _object_schema(fields: tuple[Field, ...], *, closed: bool) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {f.name: field_schema(f) for f in fields},
        "required": [f.name for f in fields if f.required],
        "additionalProperties": not closed,
    }


def event_schema(etype: EventType) -> dict[str, Any]:
    """The JSON Schema document of one event type."""
    body = _object_schema(etype.all_fields, closed=False)
    body["properties"] = {
        "type": {"const": etype.name, "description": "Optional; must match the topic."},
        **body["properties"],
    }
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"{_ID_BASE}{etype.name}",
        "title": etype.name,
        "description": (
            f"{etype.description} Topic: {etype.topic}; message key: customer_id (UTF-8). "
            "Unknown fields are allowed and kept."
        ),
        "x-kizuna-contract-version": CONTRACT_VERSION,
        "x-kizuna-topic": etype.topic,
        **body,
    }


def trigger_schema() -> dict[str, Any]:
    """The JSON Schema of the trigger record (``schemas.triggers.Trigger``)."""
    timestamp = {"type": "string", "format": "date-time"}
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"{_ID_BASE}trigger",
        "title": "trigger",
        "description": (
            "A lifecycle trigger. Topic: triggers; message key: customer_id (UTF-8). "
            "trigger_id is deterministic per (customer, rule, episode): drop duplicates by it. "
            "Ignore unknown fields: later versions add delivery fields."
        ),
        "x-kizuna-topic": "triggers",
        "type": "object",
        "properties": {
            "trigger_id": {"type": "string", "description": "UUIDv5 of customer, rule, episode."},
            "rule": {"type": "string", "description": "e.g. lapse_90d"},
            "customer_id": {"type": "string", "minLength": 1},
            "episode": {**timestamp, "description": "Start of the episode (e.g. last purchase)."},
            "fired_at": {**timestamp, "description": "Clock time of firing (UTC)."},
            "due_at": {**timestamp, "description": "When the rule became true (UTC)."},
            "reason": {"type": "string", "description": "Short human explanation."},
            "facts": {"type": "object", "description": "The numbers that made the rule fire."},
            "schema_version": {"const": TRIGGER_SCHEMA_VERSION},
        },
        "required": list(Trigger.__dataclass_fields__),
        "additionalProperties": True,
    }


def render(etype: EventType | None) -> bytes:
    """The exact bytes written for ``etype`` (``None``: the trigger record)."""
    doc = trigger_schema() if etype is None else event_schema(etype)
    return orjson.dumps(doc, option=orjson.OPT_INDENT_2) + b"\n"


def write_schemas(directory: Path) -> list[Path]:
    """Write every event type's schema into ``directory``; returns the paths."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for etype in (*EVENT_TYPES, None):
        path = directory / f"{'trigger' if etype is None else etype.name}.schema.json"
        path.write_bytes(render(etype))
        paths.append(path)
    return paths
