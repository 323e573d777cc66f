"""Clock ticks: messages that move event time on when no events do.

A replay publisher in event mode sends a tick to every partition of every
input topic; the worker's wall clock sends them to the ``clock-ticks`` topic.
A tick is recognised by its header (so it never reaches event validation):

* header ``kizuna.clock_tick`` = ``1``
* value ``{"type": "clock_tick", "at": "<RFC 3339>"}``, no key.

On an input topic, a tick at ``T`` promises that every event of that
topic-partition with ``occurred_at`` <= ``T`` has already been sent.
"""

from __future__ import annotations

import orjson

from schemas.headers import Headers, has_header
from schemas.timestamps import iso
from schemas.validation import parse_timestamp_ms

TICK_HEADER = "kizuna.clock_tick"
TICK_HEADERS = [(TICK_HEADER, b"1")]


def encode_tick(at_ms: int) -> bytes:
    """The value of a tick at ``at_ms``."""
    return orjson.dumps({"type": "clock_tick", "at": iso(at_ms)})


def is_tick(headers: Headers) -> bool:
    """Whether a message with these headers is a clock tick."""
    return has_header(headers, TICK_HEADER)


def decode_tick(value: bytes | None) -> int | None:
    """The tick's time in epoch ms, or ``None`` if the value is not a valid tick."""
    try:
        doc = orjson.loads(value or b"")
        return parse_timestamp_ms(doc["at"]) if doc.get("type") == "clock_tick" else None
    except (orjson.JSONDecodeError, ValueError, KeyError, TypeError, AttributeError):
        return None
