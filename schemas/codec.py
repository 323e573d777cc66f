"""The orjson codec, registered with Faust under the name ``orjson``.

Importing :mod:`schemas` registers it, so records and topics can say
``serializer="orjson"``. Aware datetimes encode as RFC 3339 with their offset.
"""

from __future__ import annotations

from typing import Any

import orjson
from faust.serializers import codecs

CODEC_NAME = "orjson"


def dumps(obj: Any) -> bytes:
    """Encode ``obj`` as compact JSON bytes (keys kept in insertion order)."""
    return orjson.dumps(obj, default=_default)


def loads(data: bytes | bytearray | memoryview | str) -> Any:
    """Decode JSON bytes; raises ``orjson.JSONDecodeError`` on bad input."""
    return orjson.loads(data)


def _default(obj: Any) -> Any:
    as_dict = getattr(obj, "to_representation", None)
    if as_dict is not None:
        return as_dict()
    if isinstance(obj, set | frozenset | tuple):
        return list(obj)
    raise TypeError(f"cannot encode {type(obj).__name__} as JSON")


class OrjsonCodec(codecs.Codec):
    """Faust codec backed by orjson."""

    def _dumps(self, obj: Any) -> bytes:
        return dumps(obj)

    def _loads(self, s: bytes) -> Any:
        return loads(s)


if CODEC_NAME not in codecs.codecs:
    codecs.register(CODEC_NAME, OrjsonCodec())
