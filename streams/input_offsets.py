"""Which offsets of each input partition the agent has processed: catches records the
consumer skipped.

Faust can drop records it fetched while a recovery completes and never deliver them
(see docs/benchmarks.md, "a message lost after a restart"): either a later record of
the partition arrives first (a gap) or nothing more arrives (a stall). This ledger is
the pure bookkeeping that tells the agent which case it is in. Keys are opaque
(topic-partitions in the worker); offsets are Kafka offsets.
"""

from __future__ import annotations

from collections.abc import Hashable


class InputOffsets:
    """Per partition: the next offset expected, from where its processing started.

    Contract: :meth:`begin` a partition (with the group's committed offset and the
    log start) before asking about it; :meth:`processed` every record handled.
    :meth:`clear` on every new assignment, since the consumer restarts from the
    committed offsets then.
    """

    def __init__(self) -> None:
        self._next: dict[Hashable, int] = {}
        self._stalled_at: dict[Hashable, int] = {}  # next offset seen behind at the last check

    def __contains__(self, key: Hashable) -> bool:
        return key in self._next

    def clear(self) -> None:
        self._next.clear()
        self._stalled_at.clear()

    def begin(self, key: Hashable, committed: int | None, log_start: int) -> int:
        """Start ``key`` where the consumer starts it: the committed offset, or the log
        start when nothing is committed or the committed records have expired. Keeps an
        earlier start. Returns the next offset expected."""
        start = max(committed if committed is not None and committed >= 0 else 0, log_start)
        return self._next.setdefault(key, start)

    def expected(self, key: Hashable) -> int:
        return self._next[key]

    def is_repeat(self, key: Hashable, offset: int) -> bool:
        """A record before the next expected one: already processed (a re-delivery)."""
        return offset < self._next[key]

    def missing_before(self, key: Hashable, offset: int) -> range:
        """Offsets skipped before ``offset`` (empty when it is the one expected)."""
        return range(self._next[key], max(offset, self._next[key]))

    def processed(self, key: Hashable, offset: int) -> None:
        if offset >= self._next.get(key, 0):
            self._next[key] = offset + 1

    def stalled(self, key: Hashable, end_offset: int) -> int | None:
        """Periodic check: the offset to re-read ``key`` from if it has been behind
        ``end_offset`` (the log end) without progress since the previous check, else
        None. A partition merely busy moves on between two checks."""
        expected = self._next[key]
        if end_offset <= expected:
            self._stalled_at.pop(key, None)
            return None
        if self._stalled_at.get(key) == expected:
            del self._stalled_at[key]  # the next report needs two more checks
            return expected
        self._stalled_at[key] = expected
        return None

    def still_missing(
        self, key: Hashable, stalled_at: int, handed_on: int | None, end_offset: int | None
    ) -> range:
        """On a wake-up from the stall check, which saw ``key`` stalled at ``stalled_at``:
        the offsets to read back, up to ``end_offset`` (the log end the consumer knows).
        Empty if ``key`` progressed since (or restarted elsewhere on a new assignment), or
        if the consumer has handed on a later record (``handed_on``, the last offset it
        handed towards the agent): that one reveals any hole before it when it arrives."""
        expected = self._next[key]
        if expected != stalled_at or (handed_on is not None and handed_on > expected):
            return range(expected, expected)
        return range(expected, max(expected, end_offset or 0))
