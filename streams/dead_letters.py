"""Read the dead-letter topic back: each message with its reason and origin."""

from __future__ import annotations

import base64
from typing import Any

from streams.config import Settings
from streams.topic_reader import read_from_start
from streams.topics import TopicNames


def describe_dead_letter(
    key: bytes | None, value: bytes | None, headers: list[tuple[str, bytes]] | tuple[Any, ...]
) -> dict[str, Any]:
    """A dead-lettered message as plain data: headers decoded, original bytes kept.

    ``value`` is the original text when it is UTF-8, else ``value_base64``.
    """
    record: dict[str, Any] = {k.removeprefix("kizuna."): v.decode() for k, v in headers}
    record["key"] = None if key is None else key.decode("utf-8", "replace")
    try:
        record["value"] = None if value is None else value.decode("utf-8")
    except UnicodeDecodeError:
        record["value_base64"] = base64.b64encode(value or b"").decode()
    return record


async def read_dead_letters(settings: Settings, *, limit: int) -> list[dict[str, Any]]:
    """Up to ``limit`` dead letters, oldest first per partition."""
    topic = TopicNames.from_settings(settings).dead_letter
    messages = await read_from_start(settings, topic, limit=limit)
    return [describe_dead_letter(m.key, m.value, m.headers) for m in messages]
