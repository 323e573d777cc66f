"""Co-purchase change records: batching per stream, the wire format, and per-entry
idempotence when a crash makes the worker batch the same input records differently."""

from __future__ import annotations

import orjson

from agents.domain.co_purchase import CoPurchaseModel
from agents.domain.co_purchase_records import (
    ChangeRecord,
    Entry,
    Outbox,
    encode_progress,
    parse_record,
)


def test_one_record_per_stream_with_its_entries_in_order() -> None:
    outbox = Outbox()
    outbox.add(3, "purchase#3", 10, 1_000, [(1_000, "a", "b", 1)])
    outbox.add(1, "purchase#1", 4, 900, [(900, "a", "c", 1)])
    outbox.add(3, "purchase#3", 12, 1_100, [(500, "a", "b", -1), (1_100, "a", "b", 1)])
    assert len(outbox) == 3
    records = outbox.drain()
    assert [orjson.loads(r) for r in records] == [
        {
            "source": 3,
            "stream": "purchase#3",
            "entries": [
                [10, 1_000, [[1_000, "a", "b", 1]]],
                [12, 1_100, [[500, "a", "b", -1], [1_100, "a", "b", 1]]],
            ],
        },
        {"source": 1, "stream": "purchase#1", "entries": [[4, 900, [[900, "a", "c", 1]]]]},
    ]
    assert len(outbox) == 0 and outbox.drain() == []


def test_add_says_when_a_stream_is_full() -> None:
    outbox = Outbox(max_deltas=3)
    assert not outbox.add(0, "purchase#0", 1, 1, [(1, "a", "b", 1), (1, "a", "c", 1)])
    assert outbox.add(0, "purchase#0", 2, 2, [(2, "b", "c", 1)])


def test_parse_reads_batched_single_and_progress_records() -> None:
    batched = b'{"source":2,"stream":"purchase#2","entries":[[7,50,[[40,"a","b",1]]],[9,60,[]]]}'
    assert parse_record(batched) == ChangeRecord(
        2, "purchase#2", [Entry(7, 50, [(40, "a", "b", 1)]), Entry(9, 60, [])], 60
    )
    single = b'{"source":1,"stream":"purchase#1","seq":5,"at":70,"deltas":[[70,"x","y",-1]]}'
    assert parse_record(single) == ChangeRecord(
        1, "purchase#1", [Entry(5, 70, [(70, "x", "y", -1)])], 70
    )
    assert parse_record(encode_progress(3, 123)) == ChangeRecord(3, None, [], 123)


def test_parse_rejects_what_is_not_a_record() -> None:
    for value in [
        None,
        b"",
        b"not json",
        b"[]",
        b'{"stream":"purchase#1","entries":[[1,2,[]]]}',  # no source
        b'{"source":1,"stream":"purchase#1","entries":[]}',  # nothing in it
        b'{"source":1,"stream":"purchase#1","entries":[[1,2]]}',  # entry without deltas
        b'{"source":1,"stream":"purchase#1","entries":[[1,2,[["x","a","b",1]]]]}',
        b'{"source":"one","progress":5}',
    ]:
        assert parse_record(value) is None, value


def apply(model: CoPurchaseModel, value: bytes) -> None:
    """What a replica does with a record (``agents/ingest.py`` observe_co_purchases)."""
    record = parse_record(value)
    assert record is not None and record.stream is not None
    fresh = [e for e in record.entries if model.first_time(record.stream, e.seq)]
    model.add(d for e in fresh for d in e.deltas)


def test_records_batched_differently_after_a_crash_count_each_change_once() -> None:
    # First run: input offsets 10 and 11 were batched and sent, then the worker crashed
    # before committing; the restart processes 10..12 again in one batch.
    first, again = Outbox(), Outbox()
    changes = {
        10: [(100, "a", "b", 1)],
        11: [(110, "a", "c", 1)],
        12: [(120, "b", "c", 1)],
    }
    for seq in (10, 11):
        first.add(0, "purchase#0", seq, seq * 10, changes[seq])
    for seq in (10, 11, 12):
        again.add(0, "purchase#0", seq, seq * 10, changes[seq])
    model = CoPurchaseModel()
    for value in [*first.drain(), *again.drain()]:
        apply(model, value)
    model.fold(1_000)
    # a-b, a-c and b-c once each (hand-computed): a replica counting the resent
    # entries would hold 2 for a-b and a-c.
    assert model.rows == {"a": {"b": 1, "c": 1}, "b": {"a": 1, "c": 1}, "c": {"a": 1, "b": 1}}
