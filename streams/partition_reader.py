"""Read one range of one input partition outside the worker's consumer group.

The worker uses it to fetch records its own consumer skipped (see
:mod:`streams.input_offsets`), and to learn where the group's processing of a
partition starts and where its readable records end. It never joins the group,
never commits and never writes.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from faust.types import Message

READ_TIMEOUT_S = 60.0  # a range the broker holds but will not serve in this time is an error


class PartitionReader:
    """Lazily connected reader; one per worker. ``close`` it on shutdown."""

    def __init__(self, bootstrap_servers: str, group_id: str, *, read_committed: bool) -> None:
        self._bootstrap = bootstrap_servers
        self._group_id = group_id
        self._isolation = "read_committed" if read_committed else "read_uncommitted"
        self._consumer: AIOKafkaConsumer | None = None
        self._admin: AIOKafkaAdminClient | None = None
        self._lock = asyncio.Lock()

    async def _clients(self) -> tuple[AIOKafkaConsumer, AIOKafkaAdminClient]:
        if self._consumer is None or self._admin is None:
            consumer = AIOKafkaConsumer(
                bootstrap_servers=self._bootstrap,
                group_id=None,
                enable_auto_commit=False,
                isolation_level=self._isolation,
                auto_offset_reset="earliest",
            )
            admin = AIOKafkaAdminClient(bootstrap_servers=self._bootstrap)
            await consumer.start()
            await admin.start()
            self._consumer, self._admin = consumer, admin
        return self._consumer, self._admin

    async def start_offsets(self, topic: str, partition: int) -> tuple[int | None, int]:
        """(the group's committed offset or None, the partition's log start offset)."""
        async with self._lock:
            consumer, admin = await self._clients()
            tp = TopicPartition(topic, partition)
            committed = await admin.list_consumer_group_offsets(self._group_id, partitions=[tp])
            log_start = (await consumer.beginning_offsets([tp]))[tp]
        meta = committed.get(tp)
        return (meta.offset if meta is not None and meta.offset >= 0 else None), log_start

    async def end_offset(self, topic: str, partition: int) -> int:
        """Where the partition's readable records end now: its log end, or, reading
        committed records only, its last stable offset (records of a transaction still
        open are not readable before it ends, so :meth:`read` would wait for them)."""
        async with self._lock:
            consumer, _ = await self._clients()
            tp = TopicPartition(topic, partition)
            return int((await consumer.end_offsets([tp]))[tp])

    async def read(self, topic: str, partition: int, start: int, end: int) -> list[Message]:
        """The records of ``[start, end)`` in offset order, as Faust messages. Offsets
        that hold no record (expired, compacted, transaction markers) are passed over.
        The whole range is read before it is returned, so the caller may use this
        reader again while it handles them. Raises ``TimeoutError`` if the range cannot
        be read in ``READ_TIMEOUT_S``."""
        records: list[Message] = []
        async with self._lock:
            consumer, _ = await self._clients()
            tp = TopicPartition(topic, partition)
            consumer.assign([tp])
            log_start = (await consumer.beginning_offsets([tp]))[tp]
            consumer.seek(tp, max(start, log_start))
            deadline = time.monotonic() + READ_TIMEOUT_S
            while await consumer.position(tp) < end:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"could not read {topic}[{partition}] {start}..{end - 1}")
                batch = await consumer.getmany(tp, timeout_ms=500)
                for record in batch.get(tp, ()):
                    if record.offset >= end:
                        return records
                    records.append(as_message(record))
        return records

    async def close(self) -> None:
        if self._consumer is not None:
            await self._consumer.stop()
        if self._admin is not None:
            await self._admin.close()
        self._consumer = self._admin = None


def as_message(record: Any) -> Message:
    """An aiokafka ``ConsumerRecord`` as the Faust message the consumer would deliver."""
    return Message(
        record.topic,
        record.partition,
        record.offset,
        record.timestamp / 1000.0,  # Faust's timestamps are in seconds
        record.timestamp_type,
        record.headers,
        record.key,
        record.value,
        record.checksum,
        record.serialized_key_size,
        record.serialized_value_size,
        # aiokafka's own type, as in delivered messages: the transactional commit
        # rejects anything else among its offsets
        TopicPartition(record.topic, record.partition),
    )
