"""Event-time clocks per partition: how far the data has got. Pure.

In event mode a partition's time is its *watermark*: the point before which
every input topic has delivered all of its events for that partition. Each
input topic-partition is in time order (the replay publisher guarantees it),
so after an event at ``t`` a topic has delivered everything before ``t``; a
clock tick at ``T`` says everything at or before ``T`` was delivered, i.e.
everything before ``T + 1 ms``. The watermark is the minimum over the input
topics, so a topic that lags behind another cannot make a timer fire before
an event that should have cancelled it. A topic with no traffic on a
partition is moved on by ticks; until every topic has been heard from, the
partition has no watermark and nothing fires.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass
class PartitionClock:
    """Progress of each input topic on one partition, in epoch ms (exclusive)."""

    progress: dict[str, int] = field(default_factory=dict)

    def observe_event(self, topic: str, occurred_ms: int) -> None:
        """``topic`` delivered an event at ``occurred_ms`` (so all before it)."""
        if occurred_ms > self.progress.get(topic, -(2**62)):
            self.progress[topic] = occurred_ms

    def observe_tick(self, topic: str, at_ms: int) -> bool:
        """``topic`` delivered everything at or before ``at_ms``; returns whether it moved."""
        if at_ms + 1 > self.progress.get(topic, -(2**62)):
            self.progress[topic] = at_ms + 1
            return True
        return False

    def watermark(self, topics: Iterable[str]) -> int | None:
        """Every event before the returned time (ms) has been seen on all ``topics``."""
        values = [self.progress.get(t) for t in topics]
        if not values or any(v is None for v in values):
            return None
        return min(v for v in values if v is not None)


@dataclass
class BacklogBarrier:
    """Wall mode: how far one partition may fire, given its input backlog.

    A moment due at ``t`` may fire once every input record that was already in
    the log when the clock read ``t`` has been processed: such a record may be
    the purchase that cancels it. Each check takes a snapshot (the wall time and
    the log-end offset of each input topic-partition); the bound is one past the
    newest snapshot whose offsets are all processed, less ``grace_ms`` (a log
    end is known from the consumer's last fetch, so it may be that much older
    than the time it is observed at). Under steady load the bound trails the
    clock by the consumer's lag, so due moments fire within it however busy the
    topics are; after a restart or during a backfill they fire once the records
    published before them are processed. The bound never goes back. Pure; keys
    are opaque (topic-partitions in the worker).
    """

    grace_ms: int = 1_000
    max_snapshots: int = 4_096
    bound: int = -(2**62)
    _snapshots: deque[tuple[int, dict[Any, int]]] = field(default_factory=deque)

    def observe(self, now_ms: int, ends: Mapping[Any, int], processed: Mapping[Any, int]) -> int:
        """Record a snapshot and return the bound (exclusive, epoch ms).

        ``ends``: per key, the log-end offset now; ``processed``: per key, the next
        offset expected (every record before it is processed; missing: none).
        """
        snapshots = self._snapshots
        if snapshots and snapshots[-1][1] == ends:
            snapshots.pop()  # the same backlog seen later: only the later time counts
        snapshots.append((now_ms, dict(ends)))
        if len(snapshots) > self.max_snapshots:
            snapshots.popleft()  # waiting for a later snapshot instead only fires later
        while snapshots and all(processed.get(k, 0) >= end for k, end in snapshots[0][1].items()):
            at, _ = snapshots.popleft()
            self.bound = max(self.bound, at - self.grace_ms + 1)
        return self.bound
