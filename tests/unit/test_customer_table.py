"""The customer table writes the key bytes Faust writes for its own table keys, and
reads and writes a burst's states in one go."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import faust
import pytest
import rocksdict
from faust.types import TP

from schemas.codec import dumps, loads
from streams.customer_table import CustomerTable, customer_key


@pytest.mark.parametrize("customer_id", ["c-1", "顧客-42", 'quote"and\\slash', "tab\there", ""])
def test_customer_key_is_the_key_fausts_json_serializer_writes(customer_id: str) -> None:
    app = faust.App("key-check", autodiscover=False)
    expected = app.serializers.dumps_key(str, customer_id, serializer="json")
    assert customer_key(customer_id) == expected


class _RocksStore:
    """The part of Faust's RocksDB store the table reads through: one real
    RocksDB database per partition."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.dbs: dict[int, rocksdict.Rdict] = {}

    def _db_for_partition(self, partition: int) -> rocksdict.Rdict:
        if partition not in self.dbs:
            path = str(self.root / f"p{partition}")
            self.dbs[partition] = rocksdict.Rdict(path, options=rocksdict.Options(raw_mode=True))
        return self.dbs[partition]


def decoded(values: list[bytes | None]) -> list[Any]:
    return [None if value is None else loads(value) for value in values]


def test_get_many_reads_states_in_order_and_batched_writes_win(tmp_path: Path) -> None:
    store = _RocksStore(tmp_path)
    table = CustomerTable(cast(Any, SimpleNamespace(data=store)), cast(Any, None))
    db = store._db_for_partition(2)
    db[customer_key("a")] = dumps({"customer_id": "a", "version": 1})
    db[customer_key("c")] = dumps({"customer_id": "c", "version": 1})
    table._unwritten[2] = {customer_key("c"): dumps({"customer_id": "c", "version": 2})}

    states = decoded(table.get_many_raw(2, ["c", "missing", "a"]))

    assert states == [
        {"customer_id": "c", "version": 2},
        None,
        {"customer_id": "a", "version": 1},
    ]
    assert states == decoded([table.get(2, cid) for cid in ["c", "missing", "a"]])
    assert table.get_many_raw(2, ["c", "missing"]) == [table._unwritten[2][customer_key("c")], None]
    assert table.get_many_raw(3, []) == []
    for opened in store.dbs.values():
        opened.close()


class _RecordingSink:
    """Records what the table hands to the sink (the sink itself talks to Kafka) and
    lets the test deliver it: the callback the table passed, as the real sink calls it."""

    def __init__(self) -> None:
        self.appended: list[tuple[str, int, list[tuple[bytes, bytes]]]] = []
        self.callbacks: list[Any] = []
        self.next_offset = 0

    async def append_many(
        self, topic: str, partition: int, records: list[tuple[bytes, bytes]], on_delivered: Any
    ) -> None:
        self.appended.append((topic, partition, list(records)))
        self.callbacks.append(on_delivered)

    def deliver(self, call: int) -> None:
        topic, partition, records = self.appended[call]
        self.next_offset += len(records)
        self.callbacks[call](TP(topic, partition), self.next_offset - 1, len(records))


class _Store(_RocksStore):
    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.persisted: dict[TP, int] = {}

    def set_persisted_offset(self, tp: TP, offset: int) -> None:
        self.persisted[tp] = offset


async def test_values_reach_the_store_only_once_delivered_and_committed(tmp_path: Path) -> None:
    """The local store never runs ahead of Kafka: a value is readable at once, its record
    goes out on publish, and it is written to the store (with its changelog offset as
    the persisted offset) only at the first commit after its record was delivered."""
    store = _Store(tmp_path)
    sink = _RecordingSink()
    changelog = SimpleNamespace(get_topic_name=lambda: "kizuna-customers-changelog")
    table = CustomerTable(
        cast(Any, SimpleNamespace(data=store, changelog_topic=changelog)), cast(Any, sink)
    )
    db = store._db_for_partition(1)
    first = [("a", dumps({"customer_id": "a", "version": 2})), ("b", dumps({"v": 5}))]

    table.stage(1, first)
    assert sink.appended == []  # staged: nothing sent yet
    assert table.get_many_raw(1, ["b", "a"]) == [first[1][1], first[0][1]]  # but readable
    await table.publish(1)
    records = [(customer_key(cid), value) for cid, value in first]
    assert sink.appended == [("kizuna-customers-changelog", 1, records)]
    assert table.committed([1]) == 0  # committed, but not delivered: not written
    assert db.get(customer_key("a")) is None

    newer_a = dumps({"customer_id": "a", "version": 3})
    await table.put(1, "a", newer_a)  # a newer value, in flight behind the first two
    sink.deliver(0)
    assert table.committed([0, 2]) == 0  # another partition's commit writes nothing here
    assert table.committed([1]) == 2
    assert [db.get(key) for key, _ in records] == [value for _, value in records]
    assert store.persisted == {TP("kizuna-customers-changelog", 1): 1}
    assert table.get(1, "a") == newer_a  # the unwritten newer value still wins the read
    assert table.unwritten == 1

    sink.deliver(1)
    assert table.committed([1]) == 1
    assert db.get(customer_key("a")) == newer_a and table.unwritten == 0
    assert store.persisted == {TP("kizuna-customers-changelog", 1): 2}

    table.stage(1, [("c", b"x")])
    await table.publish(1)
    table.forget()  # a rebalance: recovery replays whatever was delivered
    assert table.get(1, "c") is None and table.unwritten == 0
    sink.deliver(2)  # a late delivery of a forgotten record changes nothing
    assert table.committed([1]) == 0
    db.close()
