"""The customer table: one encoded state per customer, read and written around Faust's
per-key changelog buffer, so that the local store never runs ahead of Kafka.

The Faust table is declared with raw bytes values, so Kizuna owns the value
codec (``agents.domain.state_codec``: compact MessagePack); keys stay as Faust
encodes them (JSON strings). Faust declares the table (it creates the
changelog topic and recovers the store from it); Kizuna writes the values:

1. :meth:`CustomerTable.stage` keeps new values *unwritten*, in memory; every
   read sees them first (one RocksDB multi-get for the rest).
2. :meth:`CustomerTable.publish` hands their changelog records to a
   :class:`~streams.record_sink.RecordSink`, keyed and partitioned exactly as
   Faust's own ``table[key] = value`` would be (so Faust's recovery reads them
   unchanged). The firing path publishes a state only once the triggers it
   records as sent are in Kafka (``agents/ingest.py``).
3. Once delivered, a value waits for the next successful commit of its
   partition's input offsets (:meth:`CustomerTable.committed`, hooked on
   Faust's ``tables.on_commit``, which runs after the producer was flushed and
   the offsets, or the transaction, committed); only then is it written to the
   local store, in one write batch per partition, with the offset of its
   changelog record as the store's persisted offset.

So a crash at any point leaves in the local store only values whose records,
and every record queued before them, are in Kafka and whose input is
committed; anything later is either replayed from the changelog by Faust's
recovery (it reads past the persisted offset) or produced again by
re-processing the uncommitted input, with the same trigger ids. With the
``memory://`` store the same calls go through the store's mapping interface.

Every write of this table must go through :class:`CustomerTable` (a write
through Faust's ``table[key] = value`` could reach the changelog after a
later write made here). Writes, like Faust's, only happen while processing a
message of the customer's partition.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator
from functools import cached_property
from typing import Any, cast

import orjson
from faust.types import TP, StoreT, TableT

from streams.record_sink import RecordSink


def customer_key(customer_id: str) -> bytes:
    """The key bytes of ``customer_id`` in the store and the changelog: the JSON
    string Faust's ``json`` key serializer writes for a ``str`` key."""
    return orjson.dumps(customer_id)


class CustomerTable:
    """Customer id -> encoded state (``agents.domain.state_codec``)."""

    def __init__(self, table: TableT[str, bytes], sink: RecordSink) -> None:
        self.table = table
        self._sink = sink
        self._unwritten: dict[int, dict[bytes, bytes]] = {}  # partition -> key -> newest value
        self._staged: dict[int, list[tuple[bytes, bytes]]] = {}  # not handed to the sink yet
        self._in_flight: dict[int, deque[tuple[bytes, bytes]]] = {}  # handed over, in order
        self._delivered: dict[int, list[tuple[bytes, bytes]]] = {}  # in Kafka, not in the store
        self._delivered_offset: dict[int, int] = {}  # partition -> newest delivered offset

    @cached_property
    def changelog_topic(self) -> str:
        """Name of the table's changelog topic (fixed for the table's life)."""
        return self.table.changelog_topic.get_topic_name()

    @property
    def unwritten(self) -> int:
        """Values not in the local store yet (staged, in flight or delivered)."""
        return sum(len(values) for values in self._unwritten.values())

    def get(self, partition: int, customer_id: str) -> bytes | None:
        """The encoded state of ``customer_id`` on ``partition`` (unwritten values first)."""
        key = customer_key(customer_id)
        unwritten = self._unwritten.get(partition)
        raw = unwritten.get(key) if unwritten else None
        if raw is None:
            db = self._database(partition)
            raw = db.get(key) if db is not None else self.table.data.get(customer_id)
        return raw

    def get_many_raw(self, partition: int, customer_ids: list[str]) -> list[bytes | None]:
        """The encoded states of ``customer_ids`` on ``partition``, in order (unwritten
        values first), with one RocksDB multi-get for the rest (a burst of firings reads
        hundreds at a time)."""
        db = self._database(partition)
        unwritten = self._unwritten.get(partition) or {}
        keys = [customer_key(customer_id) for customer_id in customer_ids]
        if db is None:
            data = self.table.data
            return [
                unwritten[key] if key in unwritten else data.get(customer_id)
                for key, customer_id in zip(keys, customer_ids, strict=True)
            ]
        found = iter(db.get([key for key in keys if key not in unwritten]))
        return [unwritten[key] if key in unwritten else next(found) for key in keys]

    def items(self) -> Iterator[tuple[str, bytes]]:
        """Every customer of every partition this worker holds, encoded (recovery only)."""
        for customer_id, raw in self.table.data.items():
            if raw is not None:
                yield customer_id, raw

    def stage(self, partition: int, states: list[tuple[str, bytes]]) -> None:
        """Keep ``(customer_id, encoded state)`` pairs unwritten (reads see them); their
        changelog records go out with the next :meth:`publish` of the partition."""
        records = [(customer_key(customer_id), value) for customer_id, value in states]
        self._unwritten.setdefault(partition, {}).update(records)
        self._staged.setdefault(partition, []).extend(records)

    @property
    def staged(self) -> int:
        """Values staged and not published yet, on every partition."""
        return sum(len(records) for records in self._staged.values())

    def staged_on(self, partition: int) -> int:
        """Values staged and not published yet on ``partition``."""
        return len(self._staged.get(partition, ()))

    async def publish(self, partition: int) -> None:
        """Hand the staged values' changelog records of ``partition`` to the sink."""
        records = self._staged.pop(partition, None)
        if not records:
            return
        self._in_flight.setdefault(partition, deque()).extend(records)
        await self._sink.append_many(self.changelog_topic, partition, records, self._on_delivered)

    async def put(self, partition: int, customer_id: str, value: bytes) -> None:
        """:meth:`stage` one state and :meth:`publish` its partition (the event path)."""
        self.stage(partition, [(customer_id, value)])
        await self.publish(partition)

    def _on_delivered(self, tp: TP, offset: int, count: int) -> None:
        """The sink's callback: the next ``count`` records of ``tp`` are in Kafka."""
        in_flight = self._in_flight.get(tp.partition)
        if not in_flight:
            return  # forgotten meanwhile (the partition was revoked)
        delivered = self._delivered.setdefault(tp.partition, [])
        for _ in range(min(count, len(in_flight))):
            delivered.append(in_flight.popleft())
        self._delivered_offset[tp.partition] = offset

    def committed(self, partitions: Iterable[int]) -> int:
        """Input offsets of ``partitions`` were committed: write their delivered values
        to the store, one write batch per partition, and record the changelog offset
        they reach as the store's persisted offset. Returns the values written."""
        written = 0
        store = cast(StoreT[str, bytes], self.table.data)
        for partition in sorted(set(partitions)):
            delivered = self._delivered.pop(partition, None)
            if not delivered:
                continue
            newest = dict(delivered)  # the last value of a key wins, as in the changelog
            db = self._database(partition)
            if db is None:
                for key, value in newest.items():
                    self.table.data[orjson.loads(key)] = value
            else:
                batch = _write_batch(store)
                for key, value in newest.items():
                    batch.put(key, value)
                db.write(batch)
            unwritten = self._unwritten.get(partition, {})
            for key, value in newest.items():
                if unwritten.get(key) is value:  # no newer value since
                    del unwritten[key]
            store.set_persisted_offset(
                TP(self.changelog_topic, partition), self._delivered_offset[partition]
            )
            written += len(newest)
        return written

    def forget(self) -> None:
        """Drop every unwritten value (after a rebalance: Faust's recovery has replayed
        the changelog, which holds whatever of them was delivered; the rest belongs to
        input that was not committed and is processed again)."""
        self._unwritten.clear()
        self._staged.clear()
        self._in_flight.clear()
        self._delivered.clear()
        self._delivered_offset.clear()

    def _database(self, partition: int) -> Any | None:
        """The RocksDB database of ``partition`` in Faust's store (``None``: not RocksDB)."""
        open_database = getattr(self.table.data, "_db_for_partition", None)
        return None if open_database is None else open_database(partition)


def _write_batch(store: Any) -> Any:
    """An empty write batch for the driver of Faust's RocksDB store."""
    if getattr(store, "use_rocksdict", True):
        import rocksdict

        return rocksdict.WriteBatch(raw_mode=True)
    import rocksdb  # python-rocksdb, Faust's other driver

    return rocksdb.WriteBatch()
