"""The customer table: one JSON state per customer, read and written around Faust's
per-key changelog buffer.

The Faust table is declared with raw bytes values, so Kizuna owns the value
codec (orjson: the same JSON Faust's ``json`` serializer wrote before); keys
stay as Faust encodes them (JSON strings). Reads go
to the table's store; writes go to the store and, through a
:class:`~streams.record_sink.RecordSink`, to the table's changelog topic,
keyed and partitioned exactly as Faust's own ``table[key] = value`` would.
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
from typing import Any, cast

from faust.types import TP, StoreT, TableT

from schemas.codec import dumps, loads
from streams.record_sink import RecordSink


class CustomerTable:
    """Customer id -> state dict (the JSON form of ``CustomerState``)."""

    def __init__(self, table: TableT[str, bytes], sink: RecordSink) -> None:
        self.table = table
        self._sink = sink

    @property
    def changelog_topic(self) -> str:
        return self.table.changelog_topic.get_topic_name()

    def get(self, customer_id: str) -> dict[str, Any] | None:
        """The stored state of ``customer_id`` on the partition being processed."""
        raw = self.table.data.get(customer_id)
        return None if raw is None else loads(raw)

    def items(self) -> Iterator[tuple[str, dict[str, Any]]]:
        """Every customer of every partition this worker holds (recovery only)."""
        for customer_id, raw in self.table.data.items():
            if raw is not None:
                yield customer_id, loads(raw)

    async def put(self, partition: int, customer_id: str, data: dict[str, Any]) -> None:
        """Write one state now: store, and the changelog record queued in the producer."""
        value = self._store(customer_id, data)
        await self._sink.send(
            self.changelog_topic, partition, self._key(customer_id), value, self._persist_offset
        )

    async def put_batched(self, partition: int, customer_id: str, data: dict[str, Any]) -> None:
        """Write one state in a burst: store now, the changelog record in the open batch
        (the sink's ``flush`` hands it over)."""
        value = self._store(customer_id, data)
        await self._sink.append(
            self.changelog_topic, partition, self._key(customer_id), value, self._persist_offset
        )

    def _key(self, customer_id: str) -> bytes:
        """The key bytes Faust writes for ``customer_id`` (store and changelog)."""
        table: Any = self.table
        key = table.app.serializers.dumps_key(
            table.key_type, customer_id, serializer=table.key_serializer
        )
        assert isinstance(key, bytes)
        return key

    def _store(self, customer_id: str, data: dict[str, Any]) -> bytes:
        value = dumps(data)
        self.table.data[customer_id] = value
        return value

    def _persist_offset(self, tp: TP, offset: int) -> None:
        """What Faust does when one of its changelog records is delivered."""
        app = self.table.app
        store = cast(StoreT[str, bytes], self.table.data)
        if app.in_transaction:  # written to the store when the transaction commits
            app.tables.persist_offset_on_commit(store, tp, offset)
        else:
            store.set_persisted_offset(tp, offset)
