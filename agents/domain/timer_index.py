"""In-memory index of which customer has the next due timer, per partition. Pure.

The timers themselves are durable state (``CustomerState.timers``); this index
only makes finding the due ones cheap: a min-heap per partition holding each
customer's earliest due time, O(log n) to schedule and to pop. Rescheduling
leaves the old entry in the heap; it is skipped when popped (lazy deletion),
so the heap holds at most a few entries per customer. After a rebalance or a
restart it is rebuilt from the table (:meth:`TimerIndex.rebuild`).
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Iterator


class TimerIndex:
    """Per-partition min-heaps of (due_ms, customer_id)."""

    def __init__(self) -> None:
        self._heaps: dict[int, list[tuple[int, str]]] = {}
        self._due: dict[int, dict[str, int]] = {}

    def schedule(self, partition: int, customer_id: str, due_ms: int | None) -> None:
        """Record ``customer_id``'s earliest due time (``None``: no timers)."""
        current = self._due.setdefault(partition, {})
        if due_ms is None:
            current.pop(customer_id, None)
            return
        if current.get(customer_id) == due_ms:
            return
        current[customer_id] = due_ms
        heapq.heappush(self._heaps.setdefault(partition, []), (due_ms, customer_id))

    def pop_due(self, partition: int, before_ms: int) -> Iterator[str]:
        """Yield customers of ``partition`` whose earliest timer is due before ``before_ms``,
        earliest first. Each yielded customer is unscheduled; reschedule it after firing."""
        heap = self._heaps.get(partition)
        due = self._due.get(partition)
        if not heap or due is None:
            return
        while heap and heap[0][0] < before_ms:
            due_ms, customer_id = heapq.heappop(heap)
            if due.get(customer_id) != due_ms:
                continue  # stale entry: rescheduled or unscheduled since
            del due[customer_id]
            yield customer_id

    def next_due(self, partition: int) -> int | None:
        """Earliest live due time on ``partition``."""
        heap = self._heaps.get(partition)
        due = self._due.get(partition, {})
        while heap and due.get(heap[0][1]) != heap[0][0]:
            heapq.heappop(heap)
        return heap[0][0] if heap else None

    def rebuild(self, entries: Iterable[tuple[int, str, int | None]]) -> int:
        """Replace the whole index with (partition, customer_id, due_ms) entries."""
        self._heaps.clear()
        self._due.clear()
        for partition, customer_id, due_ms in entries:
            if due_ms is not None:
                self._due.setdefault(partition, {})[customer_id] = due_ms
        for partition, due in self._due.items():
            heap = [(due_ms, customer_id) for customer_id, due_ms in due.items()]
            heapq.heapify(heap)
            self._heaps[partition] = heap
        return len(self)

    def __len__(self) -> int:
        return sum(len(d) for d in self._due.values())
