"""Records handed to Kafka in call order, one at a time or in batches.

Faust's own path for a table write or a ``send_soon`` goes through its
producer buffer, a future per record, sensors and callbacks: about 80 µs of
Python per record on the benchmark machine. A burst of timers writes two
records per customer (the changed state to the table's changelog and the
trigger), so the firing path hands records straight to the aiokafka
producer instead:

* :meth:`RecordSink.send` queues one record in the producer now (the event
  path: one customer per message).
* :meth:`RecordSink.append_many` adds records to an open batch per topic
  partition; a full batch is handed over at once, the rest by
  :meth:`RecordSink.flush` (the firing path: many customers per message).

Guarantees, for records of one topic partition: they reach Kafka in the
order of the calls, whichever method made them (a ``send`` first hands over
the open batch of its partition; aiokafka appends a batch only behind every
batch already queued for the partition), and their delivery callbacks run in
that order. Records of *different* topics have no order among themselves: a
caller that needs one (triggers in Kafka before the state that records them
as sent) waits with :meth:`delivered` in between. :meth:`flush` must run
before Faust commits the offsets of the messages whose records are in an open
batch (the worker's commit hook runs it, ``streams/app.py``): the commit then
waits for everything handed over (it flushes the producer before committing
offsets), so a crash re-processes those messages instead of losing their
records. Flushing per message instead would make each message wait for the
previous batch of its partition to reach the broker. A
record the producer fails to deliver (after its retries) crashes the worker:
offsets committed after a lost record would lose it for good.

With ``processing_guarantee="exactly_once"`` every record goes through
Faust's transaction manager one at a time, inside the transaction of its
partition (aiokafka's batch API does not add partitions to a transaction).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from aiokafka import AIOKafkaProducer
from faust.types import TP, AppT

log = logging.getLogger(__name__)

# (topic partition, offset of the batch's last record, records in the batch) -> None;
# runs on delivery, in send order per topic partition.
OnDelivered = Callable[[TP, int, int], None]


class RecordSink:
    """Ordered, optionally batched sends of raw records (bytes key and value)."""

    def __init__(self, app: AppT) -> None:
        self._app = app
        self._batches: dict[tuple[str, int], _OpenBatch] = {}
        self.records_sent = 0
        self.batches_sent = 0
        self.failure: BaseException | None = None
        self._crash: asyncio.Future[None] | None = None
        self._in_flight: set[asyncio.Future[Any]] = set()  # handed over, not yet delivered

    def _delivered(self, future: asyncio.Future[Any]) -> Any:
        """The record metadata of a finished send; on failure, crash the worker."""
        if future.cancelled():
            return None
        exc = future.exception()
        if exc is None:
            return future.result()
        if self.failure is None:
            self.failure = exc
            log.error("a record could not be delivered; stopping the worker: %r", exc)
            self._crash = asyncio.ensure_future(self._app.crash(exc))
        return None

    def _check(self) -> None:
        if self.failure is not None:
            raise RuntimeError("an earlier record was not delivered") from self.failure

    def _batch_producer(self) -> AIOKafkaProducer | None:
        """The aiokafka producer for batches, or ``None`` when records must go one by one."""
        if self._app.in_transaction:
            return None
        # Faust's aiokafka driver keeps its started AIOKafkaProducer here.
        producer = getattr(self._app.producer, "_producer", None)
        return producer if isinstance(producer, AIOKafkaProducer) else None

    async def send(
        self,
        topic: str,
        partition: int,
        key: bytes,
        value: bytes,
        on_delivered: OnDelivered | None = None,
    ) -> None:
        """Queue one record in the producer before returning (behind any open batch)."""
        self._check()
        if (topic, partition) in self._batches:
            await self._hand_over(topic, partition)
        producer = await self._app.maybe_start_producer()
        future = await producer.send(topic, key, value, partition, None, None)
        self.records_sent += 1
        self._track(future)
        future.add_done_callback(lambda f: self._report(f, 1, on_delivered))

    async def append_many(
        self,
        topic: str,
        partition: int,
        records: list[tuple[bytes, bytes]],
        on_delivered: OnDelivered | None = None,
    ) -> None:
        """Add each ``(key, value)`` of ``records``, in order, to the open batch of the
        partition; a full batch is handed over at once, the rest by :meth:`flush`.

        ``on_delivered`` is called once per batch, with its last record's offset and
        its number of records (callers of one partition must pass the same callback).
        """
        if not records:
            return
        producer = self._batch_producer()
        if producer is None:
            for key, value in records:
                await self.send(topic, partition, key, value, on_delivered)
            return
        slot = (topic, partition)
        batch = self._batches.get(slot)
        if batch is not None and on_delivered is not None:
            batch.on_delivered = on_delivered  # called for this batch's last record
        for key, value in records:
            if batch is None:
                batch = self._batches[slot] = _OpenBatch(producer.create_batch(), on_delivered)
            if batch.builder.append(key=key, value=value, timestamp=None) is None:
                await self._hand_over(topic, partition)  # full: send it, start the next one
                batch = self._batches[slot] = _OpenBatch(producer.create_batch(), on_delivered)
                if batch.builder.append(key=key, value=value, timestamp=None) is None:
                    raise ValueError(
                        f"record of {len(value)} bytes exceeds the producer batch size"
                    )
            batch.records += 1

    async def flush(self) -> None:
        """Hand every open batch to the producer (not waiting for delivery)."""
        self._check()
        for topic, partition in list(self._batches):
            await self._hand_over(topic, partition)

    async def delivered(self) -> None:
        """Hand every open batch over and wait until everything handed over so far is
        in Kafka (acknowledged by the broker). Raises if a record was not delivered."""
        await self.flush()
        if self._in_flight:
            await asyncio.wait(list(self._in_flight))
        self._check()

    def _track(self, future: asyncio.Future[Any]) -> None:
        self._in_flight.add(future)
        future.add_done_callback(self._in_flight.discard)

    async def _hand_over(self, topic: str, partition: int) -> None:
        batch = self._batches.pop((topic, partition))
        producer = self._batch_producer()
        if producer is None or batch.records == 0:  # pragma: no cover - guarantee changed
            raise RuntimeError("open batch without a batch producer")
        future = await producer.send_batch(batch.builder, topic, partition=partition)
        self.records_sent += batch.records
        self.batches_sent += 1
        self._track(future)
        count, on_delivered = batch.records, batch.on_delivered
        future.add_done_callback(lambda f: self._report(f, count, on_delivered))

    def _report(
        self, future: asyncio.Future[Any], count: int, on_delivered: OnDelivered | None
    ) -> None:
        """``count``: records in the batch whose first record the metadata describes."""
        metadata = self._delivered(future)
        if on_delivered is not None and metadata is not None and metadata.offset >= 0:
            tp = TP(metadata.topic, metadata.partition)
            on_delivered(tp, metadata.offset + count - 1, count)


class _OpenBatch:
    __slots__ = ("builder", "on_delivered", "records")

    def __init__(self, builder: Any, on_delivered: OnDelivered | None) -> None:
        self.builder = builder
        self.on_delivered = on_delivered
        self.records = 0
