"""Append nudges (``schemas/nudges.py``) to the worker's own input partitions.

A plain producer of its own, outside Faust's: under exactly-once, Faust's producer
writes inside the partition's transaction, which commits only when the partition
makes progress, so a nudge sent through it stays invisible to the very consumer it
must wake (measured: the partition never recovered). A plain record is readable at
once, in both guarantee modes.
"""

from __future__ import annotations

import asyncio

from aiokafka import AIOKafkaProducer

from schemas.nudges import NUDGE_HEADERS


class NudgeProducer:
    """Lazily connected; one per worker. ``close`` it on shutdown."""

    def __init__(self, bootstrap_servers: str) -> None:
        self._bootstrap = bootstrap_servers
        self._producer: AIOKafkaProducer | None = None
        self._lock = asyncio.Lock()

    async def nudge(self, topic: str, partition: int) -> int:
        """Append one nudge to ``topic[partition]``; returns its offset once the broker
        has it."""
        async with self._lock:
            if self._producer is None:
                producer = AIOKafkaProducer(bootstrap_servers=self._bootstrap, acks="all")
                await producer.start()
                self._producer = producer
            meta = await self._producer.send_and_wait(
                topic, b"", partition=partition, headers=NUDGE_HEADERS
            )
        return int(meta.offset)

    async def close(self) -> None:
        async with self._lock:
            if self._producer is not None:
                await self._producer.stop()
                self._producer = None
