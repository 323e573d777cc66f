"""Co-purchase counts across all customers, readable as of a time. Pure.

``count(A, B)`` is the number of customers who have bought both category A
and category B. A customer's pair is stamped with the time it was completed:
the later of the customer's first purchases in A and in B. Those first times
are facts of the customer (a minimum, so the same in any order); when a late
earlier purchase moves one, the pair's stamp moves too, as a ``-1`` at the old
stamp and a ``+1`` at the new one (:func:`pair_deltas`).

Queries as of ``t`` see exactly the changes stamped before ``t``: changes are
kept in a pending log until the caller *folds* them, which it may do only up
to a time no later query will precede (the firing bound), so the Kafka path
and the backtest read identical counts.

Bounded: at most ``max_categories`` categories get a row, admitted in stamp
order (the first categories to be co-purchased); changes involving any other
category are dropped, identically on every path, because admission is decided
in stamp order whether a change is folded or only read from the log. Free-text
categories therefore cannot grow the model without bound.

Idempotent: a change record is identified by its *stream* (the input topic and
partition whose record made it, e.g. ``purchase#3``) and a sequence number in it
(that record's offset). A stream's records reach a replica in sequence order, and
a record re-sent after a crash or rebalance (the same input record processed again)
carries the same identity and content, so the replica keeps only the highest
sequence applied per stream (:meth:`CoPurchaseModel.first_time`): bounded by the
number of streams, persisted with the model.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from itertools import combinations
from typing import Any

Pair = tuple[str, str]
Delta = tuple[int, str, str, int]  # (stamp ms, a, b, +1 or -1), a < b
DEFAULT_MAX_CATEGORIES = 1000


def pair_deltas(
    before: Mapping[str, int], after: Mapping[str, int], moved: Iterable[str]
) -> list[Delta]:
    """How one customer's pairs change when the first purchase times of ``moved``
    categories change from ``before`` to ``after`` (category -> first time)."""
    deltas: list[Delta] = []
    moved_set = set(moved) & set(after)
    for a, b in combinations(sorted(after), 2):
        if a not in moved_set and b not in moved_set:
            continue
        new = max(after[a], after[b])
        old = max(before[a], before[b]) if a in before and b in before else None
        if old == new:
            continue
        if old is not None:
            deltas.append((old, a, b, -1))
        deltas.append((new, a, b, 1))
    return deltas


def new_pairs(before: Collection[str], after: Collection[str]) -> list[Pair]:
    """Category pairs (sorted, a < b) present in ``after`` but not in ``before``."""
    old = set(before)
    return [(a, b) for a, b in combinations(sorted(set(after)), 2) if not (a in old and b in old)]


@dataclass
class CoPurchaseModel:
    """Folded counts plus a time-ordered log of changes not folded yet."""

    rows: dict[str, dict[str, int]] = field(default_factory=dict)  # a -> {b: customers}
    pending: list[list[Any]] = field(default_factory=list)  # [at_ms, a, b, delta], sorted
    folded_before: int = -(2**62)
    max_categories: int = DEFAULT_MAX_CATEGORIES
    applied: dict[str, int] = field(default_factory=dict)  # stream -> highest sequence applied

    def first_time(self, stream: str, seq: int) -> bool:
        """Whether change record ``seq`` of ``stream`` is new, recording it if so. A
        stream's records arrive in sequence order, so one at or below the highest applied
        is a re-sent copy of one applied already."""
        if seq <= self.applied.get(stream, -1):
            return False
        self.applied[stream] = seq
        return True

    def add(self, deltas: Iterable[Delta]) -> set[str]:
        """Record changes; returns the rows changed now (late ones fold at once)."""
        touched: set[str] = set()
        added = False
        for at_ms, a, b, delta in deltas:
            if at_ms < self.folded_before:
                touched |= self._bump(a, b, delta)
            else:
                self.pending.append([at_ms, a, b, delta])
                added = True
        if added:
            self.pending.sort()
        return touched

    def fold(self, before_ms: int) -> set[str]:
        """Move changes stamped before ``before_ms`` into the counts; returns the rows
        changed. No later query may be as of a time before ``before_ms``."""
        if before_ms <= self.folded_before:
            return set()
        touched: set[str] = set()
        keep = 0
        while keep < len(self.pending) and self.pending[keep][0] < before_ms:
            _, a, b, delta = self.pending[keep]
            touched |= self._bump(a, b, delta)
            keep += 1
        del self.pending[:keep]
        self.folded_before = before_ms
        return touched

    def counts_for(self, a: str, as_of_ms: int) -> dict[str, int]:
        """{b: customers who bought a and b}, counting changes stamped before ``as_of_ms``."""
        counts = dict(self.rows.get(a, {}))
        admitted: set[str] = set()
        room = self.max_categories - len(self.rows)
        for at, x, y, delta in self.pending:
            if at >= as_of_ms:
                break
            ok = True
            for category in (x, y):
                if category not in self.rows and category not in admitted:
                    if room > 0:
                        admitted.add(category)
                        room -= 1
                    else:
                        ok = False
            if not ok:
                continue
            if x == a:
                counts[y] = counts.get(y, 0) + delta
            elif y == a:
                counts[x] = counts.get(x, 0) + delta
        return {b: n for b, n in counts.items() if n > 0}

    def recommend(
        self,
        bought: Iterable[str],
        owned: Collection[str],
        *,
        as_of_ms: int,
        limit: int,
        min_customers: int,
    ) -> list[dict[str, Any]]:
        """Categories most often co-purchased with ``bought``, excluding ``owned``.

        Score = customers who bought the candidate and any of ``bought`` (summed over
        ``bought``); candidates below ``min_customers`` are dropped; ties by name.
        """
        scores: dict[str, int] = {}
        sources = sorted(set(bought))
        for a in sources:
            for b, n in self.counts_for(a, as_of_ms).items():
                if b not in owned and b not in sources:
                    scores[b] = scores.get(b, 0) + n
        ranked = sorted(
            ((n, b) for b, n in scores.items() if n >= min_customers),
            key=lambda nb: (-nb[0], nb[1]),
        )
        return [{"category": b, "co_purchasers": n} for n, b in ranked[:limit]]

    def _admit(self, category: str) -> bool:
        if category in self.rows:
            return True
        if len(self.rows) >= self.max_categories:
            return False
        self.rows[category] = {}
        return True

    def _bump(self, a: str, b: str, delta: int) -> set[str]:
        if not (self._admit(a) and self._admit(b)):
            return set()
        for x, y in ((a, b), (b, a)):
            row = self.rows[x]
            count = row.get(y, 0) + delta
            if count > 0:
                row[y] = count
            else:
                row.pop(y, None)
        return {a, b}

    # --- persistence (the worker keeps one model per partition in a table) ---

    def meta(self) -> dict[str, Any]:
        return {
            "pending": self.pending,
            "folded_before": self.folded_before,
            "applied": self.applied,
        }

    @classmethod
    def restore(
        cls,
        meta: dict[str, Any] | None,
        rows: dict[str, dict[str, int]],
        max_categories: int = DEFAULT_MAX_CATEGORIES,
    ) -> CoPurchaseModel:
        model = cls(rows=rows, max_categories=max_categories)
        if meta:
            model.pending = [
                [int(p[0]), str(p[1]), str(p[2]), int(p[3]) if len(p) > 3 else 1]
                for p in meta.get("pending", [])
            ]
            model.folded_before = int(meta.get("folded_before", -(2**62)))
            model.applied = {str(k): int(v) for k, v in meta.get("applied", {}).items()}
        return model
