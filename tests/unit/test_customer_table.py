"""The customer table writes the key bytes Faust writes for its own table keys, and
reads and writes a burst's states in one go."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import faust
import pytest
import rocksdict

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
    """Records what the table hands to the sink (the sink itself talks to Kafka)."""

    def __init__(self) -> None:
        self.appended: list[tuple[str, int, list[tuple[bytes, bytes]]]] = []

    async def append_many(
        self, topic: str, partition: int, records: list[tuple[bytes, bytes]], on_delivered: Any
    ) -> None:
        self.appended.append((topic, partition, list(records)))


async def test_batched_puts_reach_the_changelog_at_once_and_the_store_at_commit(
    tmp_path: Path,
) -> None:
    store = _RocksStore(tmp_path)
    sink = _RecordingSink()
    changelog = SimpleNamespace(get_topic_name=lambda: "kizuna-customers-changelog")
    table = CustomerTable(
        cast(Any, SimpleNamespace(data=store, changelog_topic=changelog)), cast(Any, sink)
    )
    states = [("a", {"customer_id": "a", "version": 2}), ("b", {"customer_id": "b", "version": 5})]

    await table.put_batched(1, [(cid, dumps(data)) for cid, data in states])

    records = [(customer_key(cid), dumps(data)) for cid, data in states]
    assert sink.appended == [("kizuna-customers-changelog", 1, records)]
    db = store._db_for_partition(1)
    assert db.get(customer_key("a")) is None  # not in the store before the commit...
    assert decoded(table.get_many_raw(1, ["b", "a"])) == [states[1][1], states[0][1]]  # readable
    table.commit()
    assert [db.get(key) for key, _ in records] == [value for _, value in records]
    assert decoded(table.get_many_raw(1, ["a", "b"])) == [states[0][1], states[1][1]]
    db.close()
