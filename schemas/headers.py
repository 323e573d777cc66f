"""Kafka record headers as Kizuna's control records use them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

Headers = Sequence[tuple[str, bytes]] | Mapping[str, bytes] | None


def has_header(headers: Headers, name: str) -> bool:
    """Whether ``headers`` (a list of pairs, as aiokafka gives them, or a mapping, as
    Faust may) hold ``name``."""
    if not headers:
        return False
    if isinstance(headers, Mapping):
        return name in headers
    return any(k == name for k, _ in headers)


def header_value(headers: Headers, name: str) -> bytes | None:
    """The value of ``name`` in ``headers`` (the first, if repeated), or ``None``."""
    if not headers:
        return None
    if isinstance(headers, Mapping):
        return headers.get(name)
    return next((v for k, v in headers if k == name), None)
