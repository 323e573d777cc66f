"""Read a topic from the beginning without joining a consumer group."""

from __future__ import annotations

from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from streams.config import Settings


async def read_from_start(settings: Settings, topic: str, *, limit: int) -> list[Any]:
    """Up to ``limit`` messages of ``topic`` (every partition, from offset 0, in
    partition order); stops at the end offsets seen when it started."""
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
        out: list[Any] = []
        while len(out) < limit and [tp for tp in tps if await consumer.position(tp) < end[tp]]:
            batch = await consumer.getmany(timeout_ms=1000)
            for tp in sorted(batch, key=lambda t: t.partition):
                out.extend(m for m in batch[tp] if m.offset < end[tp])
        return out[:limit]
    finally:
        await consumer.stop()
