"""Read-side summary of a customer: the numbers storefronts and marketers read.

Pure. Trailing-window figures are computed as of a given time (epoch ms), so
the same state read at two times can give two answers; the summary records
its ``as_of``.
"""

from __future__ import annotations

from typing import Any

from agents.domain.customer_state import CustomerState, StateLimits
from agents.domain.history import trouble_tickets_opened
from schemas.contract import OPEN_TICKET_STATUSES
from schemas.timestamps import MS_PER_DAY, day_index, iso


def spend_in_window(state: CustomerState, as_of_ms: int, days: int) -> tuple[int, float]:
    """(orders, spend) with a UTC day in the ``days`` days ending on ``as_of_ms``'s day."""
    last = day_index(as_of_ms)
    first = last - days + 1
    orders, spend = 0, 0.0
    for day, count, amount in state.purchase_days:
        if first <= day <= last:
            orders += count
            spend += amount
    return orders, round(spend, 6)


def page_views_in_window(state: CustomerState, as_of_ms: int, days: int) -> tuple[int, int]:
    """(views, high-intent views) on the ``days`` UTC days ending on ``as_of_ms``'s day."""
    last = day_index(as_of_ms)
    first = last - days + 1
    views = high = 0
    for day, count, high_intent in state.view_days:
        if first <= day <= last:
            views += count
            high += high_intent
    return views, high


def trouble_tickets_in_window(state: CustomerState, as_of_ms: int, days: int) -> int:
    """Trouble or complaint tickets opened in the ``days`` days up to ``as_of_ms``."""
    return len(trouble_tickets_opened(state, as_of_ms - days * MS_PER_DAY, as_of_ms))


def open_tickets(state: CustomerState) -> int:
    """Tickets whose latest status is opened or updated."""
    return sum(1 for t in state.tickets.values() if t[0] in OPEN_TICKET_STATUSES)


def summarize(state: CustomerState, as_of_ms: int, limits: StateLimits) -> dict[str, Any]:
    """The flat summary mirrored into Redis and printed by ``kizuna customer``.

    Keys are stable (they are the Redis hash fields); absent facts are ``None``.
    """
    orders_365, spend_365 = spend_in_window(state, as_of_ms, limits.spend_window_days)
    views_30, high_30 = page_views_in_window(state, as_of_ms, 30)
    top_categories = sorted(state.categories.items(), key=lambda kv: (-kv[1], kv[0]))[:5]
    return {
        "customer_id": state.customer_id,
        "version": state.version,
        "as_of": iso(as_of_ms),
        "stage": state.stage,
        "stage_changed_at": _iso(state.stage_history[-1][0]) if state.stage_history else None,
        "stage_history": [
            {"at": iso(at), "stage": stage, "cause": cause}
            for at, stage, cause in state.stage_history
        ],
        "reactivations": state.reactivations,
        "last_reactivated_at": _iso(state.last_reactivated_ms),
        "next_timer_at": _iso(state.timers[0][0]) if state.timers else None,
        "first_seen_at": _iso(state.first_seen_ms),
        "last_event_at": _iso(state.last_event_ms),
        "first_purchase_at": _iso(state.first_purchase_ms),
        "last_purchase_at": _iso(state.last_purchase_ms),
        "days_since_last_purchase": (
            None
            if state.last_purchase_ms is None
            else (as_of_ms - state.last_purchase_ms) // MS_PER_DAY
        ),
        "purchase_count": state.purchase_count,
        "lifetime_spend": state.lifetime_spend,
        "average_order_value": (
            round(state.lifetime_spend / state.purchase_count, 2) if state.purchase_count else None
        ),
        "purchases_365d": orders_365,
        "spend_365d": spend_365,
        "top_categories": [c for c, _ in top_categories],
        "last_visit_at": _iso(state.last_visit_ms),
        "page_views_30d": views_30,
        "high_intent_views_30d": high_30,
        "open_tickets": open_tickets(state),
        "trouble_tickets_30d": trouble_tickets_in_window(
            state, as_of_ms, limits.trouble_window_days
        ),
        "consent": dict(sorted(state.consent.items())),
        "timezone": state.timezone,
        "locale": state.locale,
    }


def _iso(ms: int | None) -> str | None:
    return None if ms is None else iso(ms)
