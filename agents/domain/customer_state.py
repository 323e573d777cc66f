"""Per-customer state and how one event changes it.

Pure: no I/O, no clock. :func:`apply_event` is the only writer of a
:class:`CustomerState`; the Faust ingest agent, the backtest and the unit
tests all call it. Guarantees:

* bounded size: every collection is capped by :class:`StateLimits`, however
  long the history;
* order-insensitive facts: a late event never moves ``last_purchase_ms`` or
  ``last_visit_ms`` backwards, and daily buckets take late events that still
  fall inside their window;
* idempotence: a repeated ``event_id`` (or a second event for an ``order_id``
  already counted) changes nothing.

Times are epoch milliseconds (UTC); money is in the configured base currency.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from schemas.contract import (
    CONSENT_CHANNELS,
    HIGH_INTENT_PAGE_TYPES,
    OPEN_TICKET_STATUSES,
    TROUBLE_TICKET_CATEGORIES,
)
from schemas.events import CustomerEvent, CustomerProfile, PageView, Purchase, SupportTicket
from schemas.timestamps import MS_PER_DAY, day_index, to_ms

STATE_FORMAT = 1
MAX_TICKET_LOG = 8  # status changes kept per ticket: the first and the newest


@dataclass(frozen=True)
class StateLimits:
    """Windows (days) and caps (entries) that keep a customer's state bounded."""

    spend_window_days: int = 365
    page_view_window_days: int = 84
    trouble_window_days: int = 30
    dedup_horizon_days: int = 400
    max_event_ids: int = 256
    max_recent_purchases: int = 32
    max_categories: int = 64
    max_tickets: int = 64
    max_high_intent_views: int = 32


@dataclass
class CustomerState:
    """Everything Kizuna knows about one customer.

    ``version`` counts applied changes; readers use it to keep the newest copy.
    Daily buckets are ``[utc_day, ...]`` lists sorted by day.
    """

    customer_id: str
    version: int = 0
    first_seen_ms: int | None = None
    last_event_ms: int | None = None
    # purchases
    first_purchase_ms: int | None = None
    last_purchase_ms: int | None = None
    purchase_count: int = 0
    lifetime_spend: float = 0.0
    purchase_days: list[list[Any]] = field(default_factory=list)  # [day, orders, spend]
    # [ms, amount, order_id, categories] of the newest purchases, sorted by time
    recent_purchases: list[list[Any]] = field(default_factory=list)
    categories: dict[str, int] = field(default_factory=dict)  # category -> orders with it
    # behaviour on the site
    last_visit_ms: int | None = None
    view_days: list[list[int]] = field(default_factory=list)  # [day, views, high_intent]
    high_intent_views_ms: list[int] = field(default_factory=list)
    # support
    # id -> [status, category, opened_ms, updated_ms, log]; log = [[ms, status, category], ...]
    # sorted by time (the first entry and the newest ones, see MAX_TICKET_LOG)
    tickets: dict[str, list[Any]] = field(default_factory=dict)
    # profile
    consent: dict[str, bool] = field(default_factory=dict)
    timezone: str | None = None
    locale: str | None = None
    profile_updated_ms: dict[str, int] = field(default_factory=dict)  # attribute -> ms
    # idempotence
    seen_event_ids: dict[str, int] = field(default_factory=dict)  # event_id -> occurred ms
    # lifecycle (written by agents.domain.lifecycle)
    partition: int | None = None  # Kafka partition the customer lives on
    stage: str = "prospect"
    stage_history: list[list[Any]] = field(default_factory=list)  # [ms, stage, cause], sorted
    reactivations: int = 0
    last_reactivated_ms: int | None = None
    timers: list[list[Any]] = field(default_factory=list)  # [due_ms, rule, episode_ms], sorted
    fired: dict[str, list[int]] = field(default_factory=dict)  # rule -> episodes fired
    last_fired: dict[str, int] = field(default_factory=dict)  # rule -> due ms of its last trigger

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able form (the table value and the Redis ``state`` field).

        Shallow: containers are shared with this object, so encode the result
        before mutating the state again.
        """
        fields = self.__dict__
        if len(fields) == _FIELD_COUNT:  # just the fields, set in declaration order
            return {**fields, "format": STATE_FORMAT}
        data = {name: getattr(self, name) for name in _FIELD_NAMES}
        data["format"] = STATE_FORMAT
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CustomerState:
        """Inverse of :meth:`to_dict`; unknown keys are ignored, missing ones default.

        Takes ownership of ``data``'s containers (pass a freshly decoded dict)."""
        if tuple(data) == _STORED_KEYS:
            # What to_dict wrote: every field in order and the format marker. Skipping
            # __init__ saves most of the decode cost in a burst of timer firings.
            state = object.__new__(cls)
            state.__dict__.update(data)
            del state.__dict__["format"]
            return state
        known = cls.__dataclass_fields__
        return cls(**{k: v for k, v in data.items() if k in known})


_FIELD_NAMES = tuple(CustomerState.__dataclass_fields__)
_FIELD_COUNT = len(_FIELD_NAMES)
_STORED_KEYS = (*_FIELD_NAMES, "format")  # what to_dict writes, in order


class Outcome(Enum):
    """What :func:`apply_event` did."""

    APPLIED = "applied"
    DUPLICATE_EVENT = "duplicate_event"
    DUPLICATE_ORDER = "duplicate_order"


def apply_event(
    state: CustomerState,
    event: CustomerEvent,
    *,
    limits: StateLimits,
    rates: Mapping[str, float],
    horizon_ms: int | None = None,
) -> Outcome:
    """Fold ``event`` into ``state`` in place and say what happened.

    ``rates`` maps a currency code to base-currency units per unit; the
    validator guarantees the event's currency is in it. Windowed memories end
    at ``horizon_ms`` (default: the newest event time): data that fell out of
    every window before it is dropped. A worker in event-time mode passes its
    watermark, so nothing a pending timer may still read is dropped early.
    """
    occurred = to_ms(event.occurred_at)
    if event.event_id in state.seen_event_ids:
        return Outcome.DUPLICATE_EVENT
    if isinstance(event, Purchase) and any(p[2] == event.order_id for p in state.recent_purchases):
        return Outcome.DUPLICATE_ORDER

    state.first_seen_ms = _min(state.first_seen_ms, occurred)
    state.last_event_ms = _max(state.last_event_ms, occurred)
    if isinstance(event, Purchase):
        _apply_purchase(state, event, occurred, limits, rates)
    elif isinstance(event, PageView):
        _apply_page_view(state, event, occurred, limits)
    elif isinstance(event, SupportTicket):
        _apply_ticket(state, event, occurred, limits)
    elif isinstance(event, CustomerProfile):
        _apply_profile(state, event, occurred)
    _remember_event(state, event.event_id, occurred, limits)
    newest = state.last_event_ms
    _prune(state, limits, newest if horizon_ms is None else min(newest, horizon_ms))
    state.version += 1
    return Outcome.APPLIED


def _apply_purchase(
    state: CustomerState,
    event: Purchase,
    occurred: int,
    limits: StateLimits,
    rates: Mapping[str, float],
) -> None:
    amount = round(event.amount * rates[event.currency], 6)
    state.first_purchase_ms = _min(state.first_purchase_ms, occurred)
    state.last_purchase_ms = _max(state.last_purchase_ms, occurred)
    state.purchase_count += 1
    state.lifetime_spend = round(state.lifetime_spend + amount, 6)
    _add_to_bucket(state.purchase_days, day_index(occurred), (1, amount))
    categories = sorted({item.category for item in event.items})
    _insert_sorted(state.recent_purchases, [occurred, amount, event.order_id, categories])
    for category in categories:
        state.categories[category] = state.categories.get(category, 0) + 1
    if len(state.categories) > limits.max_categories:
        ranked = sorted(state.categories.items(), key=lambda kv: (-kv[1], kv[0]))
        state.categories = dict(ranked[: limits.max_categories])


def _apply_page_view(
    state: CustomerState, event: PageView, occurred: int, limits: StateLimits
) -> None:
    state.last_visit_ms = _max(state.last_visit_ms, occurred)
    high_intent = event.page_type in HIGH_INTENT_PAGE_TYPES
    _add_to_bucket(state.view_days, day_index(occurred), (1, int(high_intent)))
    if high_intent:
        _insert_sorted(state.high_intent_views_ms, occurred)


def _apply_ticket(
    state: CustomerState, event: SupportTicket, occurred: int, limits: StateLimits
) -> None:
    known = state.tickets.get(event.ticket_id)
    if known is None:
        log: list[list[Any]] = [[occurred, event.status, event.category]]
        state.tickets[event.ticket_id] = [event.status, event.category, occurred, occurred, log]
    else:
        log = ticket_log(known)
        _insert_sorted(log, [occurred, event.status, event.category])
        del log[1 : max(1, len(log) - MAX_TICKET_LOG + 1)]
        status, category, opened, updated = known[:4]
        if occurred >= updated:
            status, category, updated = event.status, event.category, occurred
        state.tickets[event.ticket_id] = [status, category, min(opened, occurred), updated, log]
    if len(state.tickets) > limits.max_tickets:
        # Keep open tickets first, then the most recently opened.
        ranked = sorted(
            state.tickets.items(),
            key=lambda kv: (kv[1][0] not in OPEN_TICKET_STATUSES, -kv[1][2], kv[0]),
        )
        state.tickets = dict(ranked[: limits.max_tickets])


def _apply_profile(state: CustomerState, event: CustomerProfile, occurred: int) -> None:
    updates: dict[str, Any] = {}
    for channel, allowed in (event.consent or {}).items():
        if channel in CONSENT_CHANNELS and isinstance(allowed, bool):
            updates[f"consent.{channel}"] = allowed
    if event.timezone is not None:
        updates["timezone"] = event.timezone
    if event.locale is not None:
        updates["locale"] = event.locale
    for attribute, value in updates.items():
        if occurred < state.profile_updated_ms.get(attribute, -1):
            continue  # a newer profile event already set this attribute
        state.profile_updated_ms[attribute] = occurred
        if attribute.startswith("consent."):
            state.consent[attribute.removeprefix("consent.")] = value
        else:
            setattr(state, attribute, value)


def _remember_event(
    state: CustomerState, event_id: str, occurred: int, limits: StateLimits
) -> None:
    state.seen_event_ids[event_id] = occurred
    if len(state.seen_event_ids) > limits.max_event_ids:
        newest = sorted(state.seen_event_ids.items(), key=lambda kv: (kv[1], kv[0]))
        state.seen_event_ids = dict(newest[-limits.max_event_ids :])


def _prune(state: CustomerState, limits: StateLimits, horizon_ms: int) -> None:
    """Drop buckets and memories that fell out of their windows ending at ``horizon_ms``."""
    today = day_index(horizon_ms)
    _drop_days_before(state.purchase_days, today - limits.spend_window_days + 1)
    _drop_days_before(state.view_days, today - limits.page_view_window_days + 1)
    horizon = horizon_ms - limits.page_view_window_days * MS_PER_DAY
    state.high_intent_views_ms = [t for t in state.high_intent_views_ms if t > horizon]
    # Count caps apply to what lies at or before the horizon; anything after it may
    # still be read as of an earlier time by a pending timer, so it stays.
    _cap_up_to(state.high_intent_views_ms, limits.max_high_intent_views, horizon_ms, lambda t: t)
    _cap_up_to(state.recent_purchases, limits.max_recent_purchases, horizon_ms, lambda p: p[0])
    trouble_horizon = horizon_ms - limits.trouble_window_days * MS_PER_DAY
    state.tickets = {
        tid: t
        for tid, t in state.tickets.items()
        if t[0] in OPEN_TICKET_STATUSES or t[3] > trouble_horizon
    }
    dedup_horizon = horizon_ms - limits.dedup_horizon_days * MS_PER_DAY
    state.seen_event_ids = {e: t for e, t in state.seen_event_ids.items() if t > dedup_horizon}


def _cap_up_to(items: list[Any], cap: int, horizon_ms: int, time_of: Any) -> None:
    """Keep the newest ``cap`` of the time-sorted ``items`` at or before ``horizon_ms``
    (and every later one)."""
    up_to = 0
    while up_to < len(items) and time_of(items[up_to]) <= horizon_ms:
        up_to += 1
    if up_to > cap:
        del items[: up_to - cap]


def _add_to_bucket(buckets: list[list[Any]], day: int, amounts: tuple[float, ...]) -> None:
    for bucket in buckets:
        if bucket[0] == day:
            for i, amount in enumerate(amounts, start=1):
                bucket[i] = _add(bucket[i], amount)
            return
    _insert_sorted(buckets, [day, *amounts])


def _drop_days_before(buckets: list[list[Any]], first_day: int) -> None:
    while buckets and buckets[0][0] < first_day:
        buckets.pop(0)


def _insert_sorted(items: list[Any], item: Any) -> None:
    index = len(items)
    while index > 0 and items[index - 1] > item:
        index -= 1
    items.insert(index, item)


def _add(a: Any, b: Any) -> Any:
    total = a + b
    return round(total, 6) if isinstance(total, float) else total


def _min(a: int | None, b: int) -> int:
    return b if a is None else min(a, b)


def _max(a: int | None, b: int) -> int:
    return b if a is None else max(a, b)


def ticket_log(ticket: list[Any]) -> list[list[Any]]:
    """A ``tickets`` entry's ``[[ms, status, category], ...]`` history, oldest first."""
    if len(ticket) > 4:
        log: list[list[Any]] = ticket[4]
        return log
    return [[ticket[2], ticket[0], ticket[1]]]  # written before the log existed


def opening_category(ticket: list[Any]) -> str:
    """The category the ticket was opened with (later re-categorisation is ignored)."""
    category: str = ticket_log(ticket)[0][2]
    return category


def is_trouble(ticket: list[Any]) -> bool:
    """Whether a ``tickets`` entry was opened as a trouble or complaint ticket."""
    return opening_category(ticket) in TROUBLE_TICKET_CATEGORIES
