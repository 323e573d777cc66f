"""Read-side view of a customer: the numbers storefronts and marketers read. Pure.

Everything is derived from the facts *as of* a given time (epoch ms), so the
same state read at two times can give two answers; the summary records its
``as_of``. The same object is the Redis row (``streams/read_model.py``), what
``kizuna customer ID`` prints and what ``kizuna backtest --states`` prints.
"""

from __future__ import annotations

from typing import Any

import msgspec

from agents.domain.customer_state import CustomerState, consent, profile_attributes, retained
from agents.domain.engine import EngineConfig
from agents.domain.history import (
    last_purchase_as_of,
    open_tickets,
    orders_between,
    purchases_as_of,
    spend_as_of,
    trouble_tickets_opened,
)
from agents.domain.moments import moments
from agents.domain.rules import Subject, is_reactivation
from agents.domain.stages import stage_history
from schemas.timestamps import MS_PER_DAY, iso

PENDING_SHOWN = 8  # pending moments listed in a summary


def summarize(state: CustomerState, as_of_ms: int, config: EngineConfig) -> dict[str, Any]:
    """The flat summary mirrored into Redis and printed by ``kizuna customer``.

    Keys are stable (they are the Redis hash fields); absent facts are ``None``.
    """
    limits, book = config.limits, config.rules
    state = retained(state, limits, as_of_ms)
    s = Subject(state)
    view = s.view
    history = stage_history(s, book, limits, as_of_ms)
    current = history[-1] if history else None
    last = last_purchase_as_of(view, as_of_ms)
    if last is None and state.evicted_last_ms is not None:
        last = state.evicted_last_ms
    count = purchases_as_of(view, state, as_of_ms)
    spend = spend_as_of(view, state, as_of_ms)
    day_start = (as_of_ms // MS_PER_DAY - limits.spend_window_days + 1) * MS_PER_DAY
    window = orders_between(view, day_start - 1, as_of_ms)
    reactivations = [
        p for p in view.times if p <= as_of_ms and is_reactivation(s, p, book.lifecycle)
    ]
    attributes = profile_attributes(state)
    views_30, high_30 = _page_views(state, as_of_ms, 30)
    categories = sorted(state.categories.items(), key=lambda kv: (-kv[1][0], kv[0]))[:5]
    pending = [
        {"due_at": iso(due), "rule": rule, "episode": iso(episode)}
        for due, rule, episode in moments(s, book, state.evaluated_before)[:PENDING_SHOWN]
    ]
    return {
        "customer_id": state.customer_id,
        "version": state.version,
        "as_of": iso(as_of_ms),
        "stage": current[1] if current else "prospect",
        "stage_changed_at": iso(current[0]) if current else None,
        "stage_history": [{"at": iso(at), "stage": st, "cause": c} for at, st, c in history],
        "reactivations": len(reactivations),
        "last_reactivated_at": _iso(reactivations[-1]) if reactivations else None,
        "next_timer_at": _iso(state.next_due),
        "pending_timers": pending,
        "first_seen_at": _iso(state.first_seen_ms),
        "last_event_at": _iso(state.last_event_ms),
        "first_purchase_at": _iso(state.first_purchase_ms),
        "last_purchase_at": _iso(last),
        "days_since_last_purchase": None if last is None else (as_of_ms - last) // MS_PER_DAY,
        "purchase_count": count,
        "lifetime_spend": spend,
        "average_order_value": round(spend / count, 2) if count else None,
        "purchases_365d": len(window),
        "spend_365d": round(sum(o.amount for o in window), 6),
        "refunded": round(
            sum(r.amount for r in state.refunds if r.ms <= as_of_ms) + state.evicted_refunds, 6
        ),
        "top_categories": [c for c, _ in categories],
        "last_visit_at": _iso(state.last_visit_ms),
        "page_views_30d": views_30,
        "high_intent_views_30d": high_30,
        "open_tickets": open_tickets(state, as_of_ms),
        "trouble_tickets_30d": len(
            trouble_tickets_opened(
                state, as_of_ms - limits.trouble_window_days * MS_PER_DAY, as_of_ms
            )
        ),
        "consent": consent(state),
        "timezone": attributes["timezone"][1] if "timezone" in attributes else None,
        "locale": attributes["locale"][1] if "locale" in attributes else None,
    }


def _page_views(state: CustomerState, as_of_ms: int, days: int) -> tuple[int, int]:
    """(views, high-intent views) on the ``days`` UTC days ending on ``as_of_ms``'s day."""
    last = as_of_ms // MS_PER_DAY
    first = last - days + 1
    views = high = 0
    for day, count, high_intent in state.view_days:
        if first <= day <= last:
            views += count
            high += high_intent
    return views, high


def state_json(state: CustomerState) -> bytes:
    """The state as compact JSON (an array in field order): the read model's ``state``."""
    return msgspec.json.encode(state)


def state_from_json(data: bytes | str) -> CustomerState:
    return msgspec.json.decode(data, type=CustomerState)


def _iso(ms: int | None) -> str | None:
    return None if ms is None else iso(ms)
