"""The customer table's value encoding: compact MessagePack of :class:`CustomerState`.

A state is one MessagePack array in field order (``msgspec`` structs with
``array_like``), dictionaries with sorted keys, so the same state always
encodes to the same bytes. Fields only ever get appended, so an older value
still decodes (a missing trailing field takes its default). :func:`head`
reads just the leading bookkeeping fields (partition, next due moment): the
timer index is rebuilt from those after a recovery without decoding the facts.
Pure.
"""

from __future__ import annotations

import msgspec

from agents.domain.customer_state import FACT_FIELDS, CustomerState

_ENCODER = msgspec.msgpack.Encoder(order="deterministic")
_DECODER = msgspec.msgpack.Decoder(CustomerState)


class Head(msgspec.Struct, array_like=True):
    """The first fields of an encoded state."""

    customer_id: str
    format: int
    version: int
    partition: int | None
    evaluated_before: int
    next_due: int | None


_HEAD_DECODER = msgspec.msgpack.Decoder(Head)


def encode_state(state: CustomerState) -> bytes:
    return _ENCODER.encode(state)


def decode_state(data: bytes) -> CustomerState:
    """Decode a table value; raises ``msgspec.DecodeError`` if it is not one."""
    return _DECODER.decode(data)


def head(data: bytes) -> Head:
    return _HEAD_DECODER.decode(data)


def facts_bytes(state: CustomerState) -> bytes:
    """The encoding of the state's facts alone (no bookkeeping): two states built
    from the same events and compacted to the same horizon give the same bytes."""
    return _ENCODER.encode([getattr(state, name) for name in FACT_FIELDS])


def to_plain(state: CustomerState) -> dict[str, object]:
    """The state as plain JSON-able data for people to read: every struct (the state,
    its orders, tickets, ...) as an object of field name -> value."""
    plain = _named(state)
    assert isinstance(plain, dict)
    return plain


def _named(value: object) -> object:
    if isinstance(value, msgspec.Struct):
        return {name: _named(getattr(value, name)) for name in value.__struct_fields__}
    if isinstance(value, dict):
        return {str(k): _named(v) for k, v in sorted(value.items())}
    if isinstance(value, list | tuple):
        return [_named(v) for v in value]
    return value
