"""Co-purchase counts across all customers, readable as of a time. Pure.

``count(A, B)`` is the number of customers who have bought both category A
and category B. A customer adds 1 to a pair when the second of the two first
enters their purchase history; the increment is stamped with that purchase's
time. Queries as of ``t`` see exactly the increments stamped before ``t``:
increments are kept in a pending log until the caller *folds* them, which it
may do only up to a time no later query will precede (the firing bound), so
the Kafka path and the backtest read identical counts.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from itertools import combinations
from typing import Any

Pair = tuple[str, str]


def new_pairs(before: Collection[str], after: Collection[str]) -> list[Pair]:
    """Category pairs (sorted, a < b) present in ``after`` but not in ``before``."""
    old = set(before)
    return [(a, b) for a, b in combinations(sorted(set(after)), 2) if not (a in old and b in old)]


@dataclass
class CoPurchaseModel:
    """Folded counts plus a time-ordered log of increments not folded yet."""

    rows: dict[str, dict[str, int]] = field(default_factory=dict)  # a -> {b: customers}
    pending: list[list[Any]] = field(default_factory=list)  # [at_ms, a, b], sorted
    folded_before: int = -(2**62)

    def add(self, at_ms: int, pairs: Iterable[Pair]) -> set[str]:
        """Record increments stamped ``at_ms``; returns the rows changed now (late ones
        fold at once)."""
        touched: set[str] = set()
        for a, b in pairs:
            if at_ms < self.folded_before:
                touched |= self._bump(a, b)
            else:
                self.pending.append([at_ms, a, b])
        self.pending.sort()
        return touched

    def fold(self, before_ms: int) -> set[str]:
        """Move increments stamped before ``before_ms`` into the counts; returns the
        rows changed. No later query may be as of a time before ``before_ms``."""
        if before_ms <= self.folded_before:
            return set()
        touched: set[str] = set()
        keep = 0
        while keep < len(self.pending) and self.pending[keep][0] < before_ms:
            _, a, b = self.pending[keep]
            touched |= self._bump(a, b)
            keep += 1
        del self.pending[:keep]
        self.folded_before = before_ms
        return touched

    def counts_for(self, a: str, as_of_ms: int) -> dict[str, int]:
        """{b: customers who bought a and b}, counting increments stamped before ``as_of_ms``."""
        counts = dict(self.rows.get(a, {}))
        for at, x, y in self.pending:
            if at >= as_of_ms:
                break
            if x == a:
                counts[y] = counts.get(y, 0) + 1
            elif y == a:
                counts[x] = counts.get(x, 0) + 1
        return counts

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

    def _bump(self, a: str, b: str) -> set[str]:
        row_a = self.rows.setdefault(a, {})
        row_a[b] = row_a.get(b, 0) + 1
        row_b = self.rows.setdefault(b, {})
        row_b[a] = row_b.get(a, 0) + 1
        return {a, b}

    # --- persistence (the worker keeps one model per partition in a table) ---

    def meta(self) -> dict[str, Any]:
        return {"pending": self.pending, "folded_before": self.folded_before}

    @classmethod
    def restore(
        cls, meta: dict[str, Any] | None, rows: dict[str, dict[str, int]]
    ) -> CoPurchaseModel:
        model = cls(rows=rows)
        if meta:
            model.pending = [list(p) for p in meta.get("pending", [])]
            model.folded_before = int(meta.get("folded_before", -(2**62)))
        return model
