"""Co-purchase change records on the wire: batched per input stream, read back. Pure.

Every partition keeps a replica of the co-purchase model (``co_purchase.py``), fed
by records every partition broadcasts to the app's ``co-purchases`` topic. Sending
one record per purchase to every partition made these records a third of all the
messages a worker handled (each one a Faust message, a table write and a firing
check on every partition), so the changes are batched: an :class:`Outbox` collects
the changes of one input stream (an input topic-partition, e.g. ``purchase#3``) and
:meth:`Outbox.drain` turns each stream's collection into one record.

Formats (JSON objects):

* changes: ``{"source": P, "stream": S, "entries": [[seq, at, [[stamp, a, b, ±1],
  ...]], ...]}``: ``seq`` is the offset of the input record whose processing made
  the entry, ``at`` its event time; entries are in ``seq`` order;
* a single change (before batching, still read): ``{"source", "stream", "seq",
  "at", "deltas"}``;
* progress (event mode): ``{"source": P, "progress": ms}``.

Idempotence is per entry, not per record: a replica applies an entry only if its
``seq`` is above the highest it applied from that stream. A crash or rebalance makes
the worker process the same input records again, and it may batch them differently;
their entries carry the same ``seq`` and content, so each is applied once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NamedTuple

import orjson

from agents.domain.co_purchase import Delta

MAX_DELTAS_PER_RECORD = 2_000  # a stream's record is sent once it holds this many changes


class Entry(NamedTuple):
    """The co-purchase changes one input record made."""

    seq: int  # the input record's offset
    at: int  # its event time (ms)
    deltas: list[Delta]


class ChangeRecord(NamedTuple):
    """A parsed record: ``entries`` empty for a progress record; ``at`` is the latest
    event time it speaks for (the progress, or the newest entry's time)."""

    source: int
    stream: str | None
    entries: list[Entry]
    at: int


def _deltas(raw: Any) -> list[Delta]:
    return [(int(at), str(a), str(b), int(d)) for at, a, b, d in raw]


def parse_record(value: bytes | None) -> ChangeRecord | None:
    """The record in ``value``, or ``None`` if it is not one of the formats above."""
    try:
        record = orjson.loads(value or b"")
        source = int(record["source"])
        if "progress" in record:
            return ChangeRecord(source, None, [], int(record["progress"]))
        stream = str(record["stream"])
        if "entries" in record:
            entries = [Entry(int(seq), int(at), _deltas(d)) for seq, at, d in record["entries"]]
            if not entries:
                return None
        else:
            entries = [Entry(int(record["seq"]), int(record["at"]), _deltas(record["deltas"]))]
        return ChangeRecord(source, stream, entries, max(e.at for e in entries))
    except (ValueError, KeyError, TypeError, orjson.JSONDecodeError):
        return None


def encode_progress(source: int, at_ms: int) -> bytes:
    return orjson.dumps({"source": source, "progress": at_ms})


@dataclass
class _Pending:
    source: int
    entries: list[list[Any]] = field(default_factory=list)
    deltas: int = 0


class Outbox:
    """Changes waiting to be broadcast, per input stream, in the order they were made.

    Contract: :meth:`add` the changes of each input record in the stream's offset
    order; :meth:`drain` before anything that relies on them being in Kafka (a
    progress record of their source, a commit of the input offsets, publishing a
    state that includes them).
    """

    def __init__(self, max_deltas: int = MAX_DELTAS_PER_RECORD) -> None:
        self._streams: dict[str, _Pending] = {}
        self._max_deltas = max_deltas

    def __len__(self) -> int:
        return sum(len(p.entries) for p in self._streams.values())

    def add(self, source: int, stream: str, seq: int, at: int, deltas: list[Delta]) -> bool:
        """Queue one input record's changes; True once a stream's record is full (drain)."""
        pending = self._streams.get(stream)
        if pending is None:
            pending = self._streams[stream] = _Pending(source)
        pending.entries.append([seq, at, [list(d) for d in deltas]])
        pending.deltas += len(deltas)
        return pending.deltas >= self._max_deltas

    def drain(self) -> list[bytes]:
        """One encoded record per stream with queued changes (streams in first-queued
        order); the outbox is empty afterwards."""
        streams, self._streams = self._streams, {}
        return [
            orjson.dumps({"source": p.source, "stream": stream, "entries": p.entries})
            for stream, p in streams.items()
        ]
