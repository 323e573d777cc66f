"""How a customer's read-model row is encoded: the fields of the Redis hash.

Scalars are plain text (empty string for none), lists and maps are JSON. The
row's ``version`` is not a field here: the writer sends it separately, so an
older row never overwrites a newer one (see ``streams/read_model.py``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson


def encode_field(value: Any) -> str:
    """How a summary value is stored in a hash field."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return orjson.dumps(value).decode()


def encode_row(fields: Mapping[str, Any]) -> dict[str, str]:
    """Every field of ``fields`` but ``version``, encoded."""
    return {k: encode_field(v) for k, v in fields.items() if k != "version"}
