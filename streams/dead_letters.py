"""Read the dead-letter topic back: each message with its reason and origin."""

from __future__ import annotations

import base64
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from streams.config import Settings
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
    """Up to ``limit`` dead letters, oldest first per partition, without joining a group."""
    topic = TopicNames.from_settings(settings).dead_letter
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.bootstrap_servers, enable_auto_commit=False, group_id=None
    )
    try:
        await consumer.start()
        if topic not in await consumer.topics():
            return []
        tps = [TopicPartition(topic, p) for p in range(settings.kafka.partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        end = await consumer.end_offsets(tps)
        out: list[dict[str, Any]] = []
        while len(out) < limit and [tp for tp in tps if await consumer.position(tp) < end[tp]]:
            batch = await consumer.getmany(timeout_ms=1000)
            for records in batch.values():
                for msg in records:
                    out.append(describe_dead_letter(msg.key, msg.value, msg.headers))
        return out[:limit]
    finally:
        await consumer.stop()
