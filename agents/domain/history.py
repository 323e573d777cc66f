"""What a customer's facts say *as of* a given time. Pure.

Rules evaluate as of their due time: only facts at or before it count. The
state may already hold later events (one input topic can run ahead of
another, or events arrive out of order), so every rule and every derivation
reads the state through these functions, never through "current" totals.

Purchases and refunds: an order *counts* as of ``t`` if it was placed at or
before ``t`` and was not wholly refunded by ``t`` (a refund takes effect at
the later of its own time and the order's). Spend as of ``t`` is what the
counting and partly refunded orders add up to. Orders older than the
remembered ones (``evicted_orders``) count in totals; their times are not
known one by one. Times are epoch ms; money is in the base currency.
"""

from __future__ import annotations

import bisect
import itertools
import statistics
from collections.abc import Iterator
from dataclasses import dataclass, field

from agents.domain.customer_state import (
    CustomerState,
    Order,
    TicketEntry,
    is_open,
    ticket_opening,
)
from schemas.contract import TROUBLE_TICKET_CATEGORIES

_FULLY = 1e-6  # refunded within this of the order amount: wholly refunded
_END = 2**62


@dataclass(frozen=True)
class Purchases:
    """The remembered orders with, per order, when it stopped counting (``_END``:
    never): the view every as-of read goes through."""

    orders: list[Order]
    times: list[int]  # order times, ascending
    ends: list[int]  # when each order stops counting (a whole refund), or _END
    refunds: dict[int, list[tuple[int, float]]]  # order key -> [(effective ms, amount)]
    unmatched: list[tuple[int, float]]  # refunds of orders not remembered (effective ms, amount)
    refunded: bool  # any order stops counting at some time
    # refunds dated before their order: (refund ms, order ms, amount); see spend_as_of
    early: list[tuple[int, int, float]] = field(default_factory=list)

    def counting(self, index: int, as_of_ms: int) -> bool:
        return self.times[index] <= as_of_ms < self.ends[index]


def purchases(state: CustomerState) -> Purchases:
    """The purchase view of ``state`` (cheap when there are no refunds)."""
    orders = state.orders
    times = [o.ms for o in orders]
    if not state.refunds:
        return Purchases(orders, times, [_END] * len(orders), {}, [], False)
    by_key: dict[int, Order] = {o.key: o for o in orders}
    refunds: dict[int, list[tuple[int, float]]] = {}
    unmatched: list[tuple[int, float]] = []
    early: list[tuple[int, int, float]] = []
    for r in state.refunds:
        order = by_key.get(r.key)
        if order is None:
            unmatched.append((r.ms, r.amount))
        else:
            refunds.setdefault(r.key, []).append((max(r.ms, order.ms), r.amount))
            if r.ms < order.ms:
                early.append((r.ms, order.ms, r.amount))
    ends = []
    for order in orders:
        end = _END
        total = 0.0
        for at, amount in sorted(refunds.get(order.key, ())):
            total += amount
            if total >= order.amount - _FULLY:
                end = at
                break
        ends.append(end)
    refunded = any(e != _END for e in ends)
    return Purchases(orders, times, ends, refunds, unmatched, refunded, early)


def counting_times(view: Purchases, as_of_ms: int) -> list[int]:
    """Times of the remembered orders counting as of ``as_of_ms``, ascending."""
    stop = bisect.bisect_right(view.times, as_of_ms)
    if not view.refunded:
        return view.times[:stop]
    return [view.times[i] for i in range(stop) if view.ends[i] > as_of_ms]


def last_purchase_as_of(view: Purchases, as_of_ms: int) -> int | None:
    """Time of the newest counting purchase at or before ``as_of_ms``, or ``None``."""
    index = bisect.bisect_right(view.times, as_of_ms) - 1
    while index >= 0:
        if view.ends[index] > as_of_ms:
            return view.times[index]
        index -= 1
    return None


def previous_purchase(view: Purchases, state: CustomerState, purchase_ms: int) -> int | None:
    """Time of the newest purchase counting just before ``purchase_ms``, including the
    newest order older than those remembered."""
    found = last_purchase_as_of(view, purchase_ms - 1)
    if found is None and state.evicted_last_ms is not None and state.evicted_last_ms < purchase_ms:
        return state.evicted_last_ms
    return found


def purchases_as_of(view: Purchases, state: CustomerState, as_of_ms: int) -> int:
    """Number of purchases counting as of ``as_of_ms`` (older orders included)."""
    return state.evicted_orders + len(counting_times(view, as_of_ms))


def spend_as_of(view: Purchases, state: CustomerState, as_of_ms: int) -> float:
    """Lifetime spend as of ``as_of_ms``: orders placed by then, less what was refunded
    by then (at most each order's amount); never below zero.

    A refund counts from its own time whether or not its order is known: one of an
    order not received (or not remembered) is taken off the total; so is one dated
    before its order, until the order is placed (then it nets against that order).
    So what this says as of ``t`` does not depend on whether an order placed after
    ``t`` has arrived yet (a worker whose purchases run ahead of its refunds and the
    time-ordered backtest read the same spend)."""
    total = state.evicted_spend - state.evicted_refunds
    stop = bisect.bisect_right(view.times, as_of_ms)
    for order in view.orders[:stop]:
        refunded = 0.0
        for at, amount in view.refunds.get(order.key, ()):
            if at <= as_of_ms:
                refunded += amount
        total += order.amount - min(refunded, order.amount)
    for at, amount in view.unmatched:
        if at <= as_of_ms:
            total -= amount
    for at, placed, amount in view.early:
        if at <= as_of_ms < placed:
            total -= amount
    return round(max(total, 0.0), 6)


def orders_between(view: Purchases, after_ms: int, until_ms: int) -> list[Order]:
    """Orders counting as of ``until_ms`` with ``after_ms < time <= until_ms``, oldest first."""
    lo = bisect.bisect_right(view.times, after_ms)
    hi = bisect.bisect_right(view.times, until_ms)
    if not view.refunded:
        return view.orders[lo:hi]
    return [view.orders[i] for i in range(lo, hi) if view.ends[i] > until_ms]


def order_at(view: Purchases, purchase_ms: int) -> Order | None:
    """The (first) remembered order placed at ``purchase_ms``."""
    index = bisect.bisect_left(view.times, purchase_ms)
    if index < len(view.times) and view.times[index] == purchase_ms:
        return view.orders[index]
    return None


def next_order_after(view: Purchases, purchase_ms: int) -> int | None:
    """Time of the first remembered order after ``purchase_ms`` (refunds aside)."""
    index = bisect.bisect_right(view.times, purchase_ms)
    return view.times[index] if index < len(view.times) else None


def category_counts_as_of(state: CustomerState, view: Purchases, as_of_ms: int) -> dict[str, int]:
    """Category -> orders containing it, counting orders placed at or before ``as_of_ms``
    (remembered categories; later orders with details are taken off)."""
    counts = {k: v[0] for k, v in state.categories.items() if v[1] <= as_of_ms}
    start = bisect.bisect_right(view.times, as_of_ms)
    for order in view.orders[start:]:
        for category in order.categories or ():
            if category in counts:
                counts[category] -= 1
    return {k: c for k, c in counts.items() if c > 0}


def top_categories_as_of(
    state: CustomerState, view: Purchases, as_of_ms: int, n: int = 3
) -> list[str]:
    """The ``n`` categories bought most often, counting purchases up to ``as_of_ms``."""
    counts = category_counts_as_of(state, view, as_of_ms)
    return sorted(counts, key=lambda k: (-counts[k], k))[:n]


def median_gap_ms(view: Purchases, as_of_ms: int, sample: int) -> float | None:
    """Median time between consecutive counting purchases, over the newest ``sample``
    gaps at or before ``as_of_ms``; ``None`` with fewer than two purchases."""
    times = counting_times(view, as_of_ms)[-(sample + 1) :]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    return float(statistics.median(gaps)) if gaps else None


def trouble_openings(state: CustomerState) -> list[tuple[int, str]]:
    """(opened ms, ticket id) of every trouble/complaint ticket whose opening was seen,
    by the category it was opened with; sorted."""
    found = []
    for tid, entries in state.tickets.items():
        opening = ticket_opening(entries)
        if opening is not None and opening.category in TROUBLE_TICKET_CATEGORIES:
            found.append((opening.ms, tid))
    found.sort()
    return found


def openings(state: CustomerState, category: str) -> list[tuple[int, str]]:
    """(opened ms, ticket id) of tickets opened with ``category``; sorted."""
    found = []
    for tid, entries in state.tickets.items():
        opening = ticket_opening(entries)
        if opening is not None and opening.category == category:
            found.append((opening.ms, tid))
    found.sort()
    return found


def trouble_tickets_opened(
    state: CustomerState, after_ms: int, until_ms: int
) -> list[tuple[int, str]]:
    """(opened ms, ticket id) of trouble/complaint tickets opened in ``(after_ms, until_ms]``."""
    return [(at, tid) for at, tid in trouble_openings(state) if after_ms < at <= until_ms]


def open_trouble_tickets_as_of(state: CustomerState, as_of_ms: int) -> list[str]:
    """Ids of trouble/complaint tickets that were open at ``as_of_ms``, sorted."""
    found = []
    for tid, entries in state.tickets.items():
        opening = ticket_opening(entries)
        if (
            opening is not None
            and opening.ms <= as_of_ms
            and opening.category in TROUBLE_TICKET_CATEGORIES
            and is_open(entries, as_of_ms)
        ):
            found.append(tid)
    return sorted(found)


def open_tickets(state: CustomerState, as_of_ms: int) -> int:
    """Tickets open at ``as_of_ms`` (their latest status then is opened or updated)."""
    return sum(1 for entries in state.tickets.values() if is_open(entries, as_of_ms))


def high_intent_views_between(state: CustomerState, after_ms: int, until_ms: int) -> list[int]:
    """Times of cart/checkout/pricing views in ``(after_ms, until_ms]``."""
    views = state.high_intent_ms
    lo = bisect.bisect_right(views, after_ms)
    hi = bisect.bisect_right(views, until_ms)
    return views[lo:hi]


def views_by_day(state: CustomerState, before_day: int | None = None) -> dict[int, int]:
    """UTC day index -> page views that day (the kept window), days before ``before_day``."""
    return {d: v for d, v, _ in state.view_days if before_day is None or d < before_day}


def ticket_entries(state: CustomerState) -> Iterator[tuple[str, list[TicketEntry]]]:
    """Tickets in id order (deterministic iteration for facts)."""
    for tid in sorted(state.tickets):
        yield tid, state.tickets[tid]
