"""The customer table: one encoded state per customer, read and written around Faust's
per-key changelog buffer.

The Faust table is declared with raw bytes values, so Kizuna owns the value
codec (``agents.domain.state_codec``: compact MessagePack); keys stay as Faust
encodes them (JSON strings). Reads and writes go to the
partition's RocksDB database of Faust's store directly (one write batch per
burst of firings instead of a put per customer), and the changelog records,
through a :class:`~streams.record_sink.RecordSink`, to the table's changelog
topic, keyed and partitioned exactly as Faust's own ``table[key] = value``
would. With the ``memory://`` store the same calls go through the store's
mapping interface.
Faust recovers the table from that changelog as usual, and the offset of the
newest delivered changelog record is kept in the store as Faust does, so a
restart replays only the tail.

Every write of this table must go through :class:`CustomerTable` (a write
through Faust's ``table[key] = value`` could reach the changelog after a
later write made here). Writes, like Faust's, only happen while processing a
message of the customer's partition.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import cached_property
from typing import Any, cast

import orjson
from faust.types import TP, StoreT, TableT

from streams.record_sink import RecordSink

STORE_BATCH = 1000  # batched states held before they are written to the store


def customer_key(customer_id: str) -> bytes:
    """The key bytes of ``customer_id`` in the store and the changelog: the JSON
    string Faust's ``json`` key serializer writes for a ``str`` key."""
    return orjson.dumps(customer_id)


class CustomerTable:
    """Customer id -> encoded state (``agents.domain.state_codec``)."""

    def __init__(self, table: TableT[str, bytes], sink: RecordSink) -> None:
        self.table = table
        self._sink = sink
        self._unwritten: dict[int, dict[bytes, bytes]] = {}  # partition -> key -> value
        self._delivered: dict[TP, int] = {}  # changelog offsets delivered, not yet persisted

    @cached_property
    def changelog_topic(self) -> str:
        """Name of the table's changelog topic (fixed for the table's life)."""
        return self.table.changelog_topic.get_topic_name()

    def get(self, partition: int, customer_id: str) -> bytes | None:
        """The encoded state of ``customer_id`` on ``partition`` (batched writes included)."""
        key = customer_key(customer_id)
        unwritten = self._unwritten.get(partition)
        raw = unwritten.get(key) if unwritten else None
        if raw is None:
            db = self._database(partition)
            raw = db.get(key) if db is not None else self.table.data.get(customer_id)
        return raw

    def get_many_raw(self, partition: int, customer_ids: list[str]) -> list[bytes | None]:
        """The encoded states of ``customer_ids`` on ``partition``, in order (batched
        writes included), with one RocksDB multi-get for those not batched (a burst of
        firings reads hundreds at a time)."""
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

    async def put(self, partition: int, customer_id: str, value: bytes) -> None:
        """Write one state now: store, and the changelog record queued in the producer."""
        key = customer_key(customer_id)
        db = self._database(partition)
        if db is not None:
            db.put(key, value)
        else:
            self.table.data[customer_id] = value
        await self._sink.send(self.changelog_topic, partition, key, value, self._on_delivered)
        if not self._unwritten:
            self._persist_offsets()

    async def put_batched(self, partition: int, states: list[tuple[str, bytes]]) -> None:
        """Write ``(customer_id, encoded state)`` pairs in a burst: to the store at
        :meth:`commit`, their changelog records in the sink's open batch (its ``flush``
        hands it over). Call :meth:`commit` and the sink's ``flush`` before the message
        is acknowledged."""
        records = [(customer_key(customer_id), value) for customer_id, value in states]
        unwritten = self._unwritten.setdefault(partition, {})
        unwritten.update(records)
        if len(unwritten) >= STORE_BATCH:
            self.commit()  # bounds the memory a burst holds
        await self._sink.append_many(self.changelog_topic, partition, records, self._on_delivered)

    def commit(self) -> None:
        """Write the batched states to the store, one write batch per partition."""
        for partition, states in self._unwritten.items():
            db = self._database(partition)
            if db is None:
                for key, value in states.items():
                    self.table.data[orjson.loads(key)] = value
                continue
            store: Any = self.table.data
            batch = _write_batch(store)
            for key, value in states.items():
                batch.put(key, value)
            db.write(batch)
        self._unwritten.clear()
        self._persist_offsets()

    def _database(self, partition: int) -> Any | None:
        """The RocksDB database of ``partition`` in Faust's store (``None``: not RocksDB)."""
        open_database = getattr(self.table.data, "_db_for_partition", None)
        return None if open_database is None else open_database(partition)

    def _on_delivered(self, tp: TP, offset: int) -> None:
        self._delivered[tp] = max(offset, self._delivered.get(tp, offset))

    def _persist_offsets(self) -> None:
        """Record in the store how far the changelog is in it, as Faust does for its own
        changelog records. Only once every delivered record's state is in the store (a
        batched state reaches the store at :meth:`commit`, maybe after its delivery):
        recovery replays the changelog after this offset, so it must never run ahead."""
        if not self._delivered:
            return
        app = self.table.app
        store = cast(StoreT[str, bytes], self.table.data)
        for tp, offset in self._delivered.items():
            if app.in_transaction:  # written to the store when the transaction commits
                app.tables.persist_offset_on_commit(store, tp, offset)
            else:
                store.set_persisted_offset(tp, offset)
        self._delivered.clear()


def _write_batch(store: Any) -> Any:
    """An empty write batch for the driver of Faust's RocksDB store."""
    if getattr(store, "use_rocksdict", True):
        import rocksdict

        return rocksdict.WriteBatch(raw_mode=True)
    import rocksdb  # python-rocksdb, Faust's other driver

    return rocksdb.WriteBatch()
