"""Trigger contract v1: what every rule emits on the ``triggers`` topic.

One JSON object per trigger, key = ``customer_id``. ``trigger_id`` is derived
from (customer, rule, episode) only, so a replay, a retry or a crash
recovery yields the same id and consumers drop duplicates by it. Consumers
must ignore fields they do not know: later versions add delivery fields.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import asdict, dataclass, field
from typing import Any

import orjson

TRIGGER_SCHEMA_VERSION = 1
_NAMESPACE = uuid.UUID("6f1b7c52-3f7e-4c55-9a43-2b1d1d3c9e11")
_NAMESPACE_BYTES = _NAMESPACE.bytes


def trigger_id(customer_id: str, rule: str, episode: str) -> str:
    """Deterministic id of the trigger ``rule`` fires for ``customer_id`` in ``episode``:
    ``uuid5(_NAMESPACE, customer_id + US + rule + US + episode)`` (US = U+001F), computed
    without the ``uuid`` module's object overhead (a burst of timers makes one each)."""
    name = f"{customer_id}\x1f{rule}\x1f{episode}".encode()
    digest = bytearray(hashlib.sha1(_NAMESPACE_BYTES + name).digest()[:16])
    digest[6] = (digest[6] & 0x0F) | 0x50  # version 5
    digest[8] = (digest[8] & 0x3F) | 0x80  # RFC 4122 variant
    h = digest.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


@dataclass(frozen=True)
class Trigger:
    """One trigger. ``fired_at``/``due_at`` are RFC 3339 UTC; ``facts`` are the numbers
    that made the rule fire (JSON-able, insertion-ordered for byte-stable output)."""

    trigger_id: str
    rule: str
    customer_id: str
    episode: str
    fired_at: str
    due_at: str
    reason: str
    facts: dict[str, Any] = field(default_factory=dict)
    schema_version: int = TRIGGER_SCHEMA_VERSION

    def to_bytes(self) -> bytes:
        """The wire form (compact JSON, fixed key order)."""
        return orjson.dumps(self)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_bytes(cls, data: bytes) -> Trigger:
        """Parse a trigger; unknown (newer) fields are ignored."""
        doc = orjson.loads(data)
        known = cls.__dataclass_fields__
        return cls(**{k: v for k, v in doc.items() if k in known})
