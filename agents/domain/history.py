"""What a customer's state says *as of* a given time. Pure.

Rules evaluate as of their due time: only facts at or before it count. The
state may already hold later events (on the Kafka path one input topic can be
ahead of another), so every rule reads the state through these functions and
never through "current" totals. Times are epoch ms; money is in the base currency.
"""

from __future__ import annotations

import itertools
import statistics
from typing import Any

from agents.domain.customer_state import CustomerState, is_trouble, opening_category, ticket_log
from schemas.contract import OPEN_TICKET_STATUSES


def last_purchase_as_of(state: CustomerState, as_of_ms: int) -> int | None:
    """Time of the newest purchase at or before ``as_of_ms``, or ``None``."""
    if state.last_purchase_ms is not None and state.last_purchase_ms <= as_of_ms:
        return state.last_purchase_ms
    earlier: list[int] = [p[0] for p in state.recent_purchases if p[0] <= as_of_ms]
    if earlier:
        return max(earlier)
    first = state.first_purchase_ms
    return first if first is not None and first <= as_of_ms else None


def previous_purchase(state: CustomerState, purchase_ms: int) -> int | None:
    """Time of the newest purchase strictly before ``purchase_ms``, or ``None``."""
    return last_purchase_as_of(state, purchase_ms - 1)


def _none_later(state: CustomerState, as_of_ms: int) -> bool:
    """Whether no purchase is after ``as_of_ms`` (the usual case when a timer fires)."""
    return state.last_purchase_ms is None or state.last_purchase_ms <= as_of_ms


def spend_as_of(state: CustomerState, as_of_ms: int) -> float:
    """Lifetime spend counting only purchases at or before ``as_of_ms``."""
    if _none_later(state, as_of_ms):
        return round(state.lifetime_spend, 6)
    later: float = sum(p[1] for p in state.recent_purchases if p[0] > as_of_ms)
    return round(state.lifetime_spend - later, 6)


def purchases_as_of(state: CustomerState, as_of_ms: int) -> int:
    """Number of purchases at or before ``as_of_ms``."""
    if _none_later(state, as_of_ms):
        return state.purchase_count
    return state.purchase_count - sum(1 for p in state.recent_purchases if p[0] > as_of_ms)


def purchases_between(state: CustomerState, after_ms: int, until_ms: int) -> list[list[Any]]:
    """``recent_purchases`` entries with ``after_ms < time <= until_ms``, oldest first."""
    return [p for p in state.recent_purchases if after_ms < p[0] <= until_ms]


def purchase_at(state: CustomerState, purchase_ms: int) -> list[Any] | None:
    """The ``[ms, amount, order_id, categories]`` entry of the purchase at ``purchase_ms``."""
    return next((p for p in state.recent_purchases if p[0] == purchase_ms), None)


def category_counts_as_of(state: CustomerState, as_of_ms: int) -> dict[str, int]:
    """Category -> orders containing it, counting purchases at or before ``as_of_ms``."""
    if _none_later(state, as_of_ms):
        return {k: c for k, c in state.categories.items() if c > 0}
    counts = dict(state.categories)
    for p in state.recent_purchases:
        if p[0] > as_of_ms:
            for category in p[3]:
                counts[category] = counts.get(category, 0) - 1
    return {k: c for k, c in counts.items() if c > 0}


def top_categories_as_of(state: CustomerState, as_of_ms: int, n: int = 3) -> list[str]:
    """The ``n`` categories bought most often, counting purchases up to ``as_of_ms``."""
    counts = category_counts_as_of(state, as_of_ms)
    return sorted(counts, key=lambda k: (-counts[k], k))[:n]


def median_gap_ms(state: CustomerState, as_of_ms: int, sample: int) -> float | None:
    """Median time between consecutive purchases, over the newest ``sample`` gaps
    at or before ``as_of_ms``; ``None`` with fewer than two purchases."""
    times = [p[0] for p in state.recent_purchases if p[0] <= as_of_ms][-(sample + 1) :]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    return float(statistics.median(gaps)) if gaps else None


def ticket_status_as_of(ticket: list[Any], as_of_ms: int) -> str | None:
    """The ticket's status at ``as_of_ms``; ``None`` if it was not open yet."""
    status: str | None = None
    for at, entry_status, _ in ticket_log(ticket):
        if at > as_of_ms:
            break
        status = entry_status
    return status


def trouble_tickets_opened(
    state: CustomerState, after_ms: int, until_ms: int
) -> list[tuple[int, str]]:
    """(opened ms, ticket id) of trouble/complaint tickets opened in ``(after_ms, until_ms]``."""
    return sorted(
        (t[2], tid)
        for tid, t in state.tickets.items()
        if is_trouble(t) and after_ms < t[2] <= until_ms
    )


def tickets_opened_at(state: CustomerState, opened_ms: int, category: str) -> list[str]:
    """Ids of tickets opened at ``opened_ms`` with ``category``, sorted."""
    return sorted(
        tid
        for tid, t in state.tickets.items()
        if t[2] == opened_ms and opening_category(t) == category
    )


def open_trouble_tickets_as_of(state: CustomerState, as_of_ms: int) -> list[str]:
    """Ids of trouble/complaint tickets that were open at ``as_of_ms``, sorted."""
    return sorted(
        tid
        for tid, t in state.tickets.items()
        if is_trouble(t) and ticket_status_as_of(t, as_of_ms) in OPEN_TICKET_STATUSES
    )


def high_intent_views_between(state: CustomerState, after_ms: int, until_ms: int) -> list[int]:
    """Times of cart/checkout/pricing views in ``(after_ms, until_ms]``."""
    return [t for t in state.high_intent_views_ms if after_ms < t <= until_ms]


def views_by_day(state: CustomerState) -> dict[int, int]:
    """UTC day index -> page views that day (the retained window)."""
    return {day: views for day, views, _ in state.view_days}
