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

from collections.abc import Iterable
from dataclasses import dataclass, field


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
