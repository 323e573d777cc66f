"""Deterministic generators of hostile input messages, for fuzz and pipeline tests.

:func:`bad_message` makes a message that the validator must reject whatever the
clock mode (random bytes, truncated JSON, wrong types, deep nesting, huge
strings, extreme numbers and timestamps, invalid UTF-8 and null keys, ...).
:func:`hostile_message` also makes messages that may well be valid (extreme but
allowed values, unknown fields nested deep): the engine must take those too.
Both return ``(key, value)`` as they go on the wire.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import orjson

from schemas.contract import EVENT_TYPES_BY_NAME, Field
from tests.factories import page_view, profile, purchase, refund, ticket

Message = tuple[bytes | None, bytes | None]

BUILDERS: dict[str, Callable[..., dict[str, Any]]] = {
    "purchase": purchase,
    "page_view": page_view,
    "support_ticket": ticket,
    "customer_profile": profile,
    "refund": refund,
}

#: occurred_at values the contract rejects (out of range, or not a valid date).
BAD_TIMESTAMPS = (
    "0001-01-01T00:00:00Z",
    "0001-01-01T00:00:00+23:59",
    "1970-01-01T00:00:00Z",
    "1999-12-31T23:59:59.999999999Z",
    "2000-01-01T08:59:59+09:00",
    "9000-01-01T00:00:00Z",
    "9999-12-31T23:59:59Z",
    "9999-12-31T23:59:59-23:59",
    "0000-00-00T00:00:00Z",
    "2026-02-30T10:00:00Z",
    "2026-01-01T24:00:00Z",
    "2026-01-01T10:00:00+99:99",
    "2026-01-01T10:00:00",
    "2026-01-01",
    "",
)
#: occurred_at values that are valid (when not in the future of a wall clock).
EDGE_TIMESTAMPS = (
    "2000-01-01T00:00:00Z",
    "2000-01-01T09:00:00+09:00",
    "8999-12-31T23:59:59.999Z",
    "8999-12-31T23:59:59-23:59",
    "2026-03-01t10:00:00.123456789z",
    "2026-03-01 10:00:00+00:00",
)
#: Raw JSON number texts that are not valid amounts.
BAD_NUMBER_TEXTS = (b"NaN", b"Infinity", b"-Infinity", b"1e999", b"-1e308", b"1e308", b"1e16")
#: Raw JSON number texts that are valid amounts (or at least not crashes).
EDGE_NUMBER_TEXTS = (b"-0.0", b"0", b"5e-324", b"1e15", b"18446744073709551615", b"1" + b"0" * 30)


def good_event(rng: random.Random, etype: str, customer_id: str) -> dict[str, Any]:
    """A valid event of ``etype`` for ``customer_id`` (in 2025)."""
    at = f"2025-{rng.randrange(1, 13):02d}-{rng.randrange(1, 29):02d}T10:00:00Z"
    return BUILDERS[etype](customer_id, at, event_id=f"e-{rng.getrandbits(48):x}")


_WRONG_VALUES: dict[str, tuple[Any, ...]] = {
    "string": (1, 2.5, [1], {"a": 1}, True),
    "timestamp": (1_767_225_600_000, 2.5, ["2026-01-01T00:00:00Z"], {"a": 1}, False),
    "number": ("12", [1], {"a": 1}, True),
    "integer": (2.5, "1", [1], {"a": 1}, True),
    "boolean": (0, 1, "true", [True], {"a": 1}),
    "array": ("x", 1, {"a": 1}, True),
    "object": ("x", 1, [1], True),
}


def _wrong_value(rng: random.Random, field: Field) -> Any:
    """A non-null value of a JSON type ``field`` does not accept."""
    return rng.choice(_WRONG_VALUES[field.type])


def _splice(doc: dict[str, Any], name: str, raw: bytes) -> bytes:
    """``doc`` as JSON with field ``name``'s value replaced by the raw text ``raw``."""
    marker = "\x00splice\x00"
    text = orjson.dumps({**doc, name: marker})
    return text.replace(orjson.dumps(marker), raw, 1)


def bad_message(rng: random.Random, etype: str, customer_id: str) -> Message:
    """A message for ``etype``'s topic that must be rejected (dead-lettered)."""
    doc = good_event(rng, etype, customer_id)
    key = customer_id.encode()
    fields = EVENT_TYPES_BY_NAME[etype].all_fields
    kind = rng.randrange(14)
    if kind == 0:  # random bytes (never valid UTF-8: a leading 0xff)
        return key, b"\xff" + rng.randbytes(rng.randrange(0, 200))
    if kind == 1:  # truncated JSON
        value = orjson.dumps(doc)
        return key, value[: rng.randrange(0, len(value))]
    if kind == 2:  # a wrong type for a field
        field = rng.choice(fields)
        return key, orjson.dumps({**doc, field.name: _wrong_value(rng, field)})
    if kind == 3:  # a required field missing or null
        field = rng.choice([f for f in fields if f.required])
        if rng.random() < 0.5:
            return key, orjson.dumps({k: v for k, v in doc.items() if k != field.name})
        return key, orjson.dumps({**doc, field.name: None})
    if kind == 4:  # nesting deeper than orjson's limit, or than the contract's
        depth = rng.choice((33, 100, 2000))
        return key, _splice(doc, rng.choice(("deep", "event_id")), b"[" * depth + b"]" * depth)
    if kind == 5:  # a huge string where a short one with a format is expected
        huge = "9" * rng.randrange(10_000, 50_000)
        return key, orjson.dumps({**doc, "occurred_at": huge})
    if kind == 6:  # an extreme number as the amount, or where a string belongs
        target = "amount" if etype in ("purchase", "refund") else "event_id"
        return key, _splice(doc, target, rng.choice(BAD_NUMBER_TEXTS))
    if kind == 7:  # an extreme timestamp
        return key, orjson.dumps({**doc, "occurred_at": rng.choice(BAD_TIMESTAMPS)})
    if kind == 8:  # a key that is not UTF-8
        return b"\xc3\x28" + key, orjson.dumps(doc)
    if kind == 9:  # no key
        return None, orjson.dumps(doc)
    if kind == 10:  # a tombstone (no value)
        return key, None
    if kind == 11:  # not an object
        return key, orjson.dumps(rng.choice(([doc], "text", 12, None, True)))
    if kind == 12:  # a key that is not the customer id
        return key + b"-other", orjson.dumps(doc)
    # an event of another type on this topic
    other = rng.choice([t for t in BUILDERS if t != etype])
    return key, orjson.dumps(good_event(rng, other, customer_id))


def hostile_message(rng: random.Random, etype: str, customer_id: str) -> Message:
    """A bad message, or an odd one that may be valid (edge values, unknown junk)."""
    if rng.random() < 0.5:
        return bad_message(rng, etype, customer_id)
    doc = good_event(rng, etype, customer_id)
    key = customer_id.encode()
    kind = rng.randrange(5)
    if kind == 0:
        return key, orjson.dumps({**doc, "occurred_at": rng.choice(EDGE_TIMESTAMPS)})
    if kind == 1:
        target = "amount" if etype in ("purchase", "refund") else "satisfaction"
        return key, _splice(doc, target, rng.choice(EDGE_NUMBER_TEXTS))
    if kind == 2:  # unknown fields: nested (within the limit), huge, odd
        depth = rng.randrange(1, 31)
        junk = {"deep": b"[" * depth + b"]" * depth, "huge": b'"' + b"x" * 20_000 + b'"'}
        name = rng.choice(list(junk))
        return key, _splice(doc, name, junk[name])
    if kind == 3:  # odd but valid strings
        text = rng.choice(("\u0000", "\U0001f600" * 100, " x ", "\u202e", "a" * 5000))
        return text.encode(), orjson.dumps({**doc, "customer_id": text, "event_id": text})
    return key, orjson.dumps(
        {**doc, "currency": rng.choice(("USD", "EUR", "JPY"))}
        if etype in ("purchase", "refund")
        else doc
    )
