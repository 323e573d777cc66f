"""Per-customer facts and how one event changes them. Pure: no I/O, no clock.

A :class:`CustomerState` holds *facts* — what the customer's events say,
each collection kept canonical (sorted, deduplicated, capped) — and a little
*bookkeeping* (what was already evaluated and sent). Everything a marketer
reads (stage, stage history, counts as of a time, pending timers) is derived
from the facts on demand (``agents.domain.stages``, ``agents.domain.moments``),
never accumulated in arrival order. So:

* **Order-insensitive.** Applying the same set of events in any order gives
  the same facts: every collection is "the newest K items" (sorted by time,
  ties by a fingerprint) or a commutative aggregate (count, sum, min, max),
  and which copy of a duplicate wins does not depend on arrival (below).
  After :func:`compact` to the same horizon, two states built from the same
  events encode to the same bytes (:func:`agents.domain.state_codec.facts_bytes`).
* **Bounded.** Every collection has a cap (:class:`StateLimits`) and the
  time-windowed ones a horizon, however long the history and in any order.
* **Duplicates.** An event id seen before changes nothing. Two events with
  the same id and different content (a *conflicting duplicate*): the copy with
  the earliest ``occurred_at`` wins, ties broken by the smaller content
  fingerprint; a winning copy that arrives later replaces the one applied.
  An order re-sent under a new event id counts once; the same rule picks its
  copy. Limits: an event id is remembered for ``dedup_horizon_days`` and at
  most ``max_event_ids`` ids; an order for ``max_orders`` orders.

Times are epoch milliseconds (UTC); money is in the configured base currency.
"""

from __future__ import annotations

import bisect
import hashlib
import math
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any, NamedTuple

import msgspec

from schemas.contract import CONSENT_CHANNELS, HIGH_INTENT_PAGE_TYPES, OPEN_TICKET_STATUSES
from schemas.events import CustomerEvent, CustomerProfile, PageView, Purchase, Refund, SupportTicket
from schemas.timestamps import MS_PER_DAY

STATE_FORMAT = 2
NEVER = -(2**62)  # before every time
MAX_TICKET_LOG = 8  # status changes kept per ticket: its opening and the newest ones
MAX_AMOUNT = 1e15  # base-currency units; larger (or non-finite) amounts are clamped


@dataclass(frozen=True)
class StateLimits:
    """Windows (days) and caps (entries) that keep a customer's state bounded."""

    spend_window_days: int = 365  # the summary's trailing spend and order counts
    page_view_window_days: int = 400  # daily page-view counts kept
    trouble_window_days: int = 30  # the summary's trouble-ticket window
    ticket_history_days: int = 400  # closed tickets kept this long after their last change
    dedup_horizon_days: int = 400
    max_event_ids: int = 256
    max_recent_purchases: int = 32  # orders kept with their id and categories ...
    order_detail_days: int = 31  # ... and any order a pending moment may still describe
    drop_reach_days: int = 71  # engagement onsets this close to the view window's start
    # may have read views before it: dropped with them
    max_orders: int = 256  # orders remembered in all (times and amounts)
    max_categories: int = 64
    max_tickets: int = 64
    max_high_intent_views: int = 32
    max_refunds: int = 64
    max_profile_writes: int = 16


class Order(msgspec.Struct, array_like=True, gc=False):
    """One remembered order (its winning copy). ``key`` fingerprints ``order_id``;
    ``order_id`` and ``categories`` are kept for the newest ``max_recent_purchases``
    orders only (``None`` on older ones)."""

    ms: int
    key: int
    amount: float
    event: int  # fingerprint of the winning copy's event id
    copy: int  # fingerprint of its content
    order_id: str | None = None
    categories: tuple[str, ...] | None = None


class RefundEntry(msgspec.Struct, array_like=True, gc=False):
    ms: int
    key: int  # fingerprint of the order refunded
    amount: float
    event: int
    copy: int


class TicketEntry(msgspec.Struct, array_like=True, gc=False):
    ms: int
    status: str
    category: str
    event: int
    copy: int


class ProfileWrite(msgspec.Struct, array_like=True, gc=False):
    ms: int
    event: int
    copy: int
    attribute: str  # "consent.<channel>", "timezone" or "locale"
    value: Any


class CustomerState(msgspec.Struct, kw_only=True, array_like=True):
    """Everything Kizuna knows about one customer.

    Facts: the fields from ``first_seen_ms`` on. Bookkeeping (depends on when
    things were processed, not on what happened): ``version`` (counts writes;
    readers keep the newest copy), ``partition``, ``evaluated_before`` (every
    rule moment due before it was evaluated), ``fired``/``last_fired`` (the
    triggers sent: facts that cannot be taken back) and ``next_due`` (the
    earliest pending moment, for the timer index).
    """

    customer_id: str
    format: int = STATE_FORMAT
    version: int = 0
    partition: int | None = None
    evaluated_before: int = NEVER
    next_due: int | None = None
    fired: dict[str, list[int]] = msgspec.field(default_factory=dict)  # rule -> episodes
    last_fired: dict[str, int] = msgspec.field(default_factory=dict)  # rule -> due ms
    # --- facts ---
    first_seen_ms: int | None = None
    last_event_ms: int | None = None
    first_purchase_ms: int | None = None  # over every order ever applied
    orders: list[Order] = msgspec.field(default_factory=list)  # sorted by (ms, key)
    evicted_orders: int = 0  # orders older than ``orders`` (no longer remembered one by one)
    evicted_spend: float = 0.0
    evicted_last_ms: int | None = None  # the newest of them
    refunds: list[RefundEntry] = msgspec.field(default_factory=list)  # sorted by (ms, event)
    evicted_refunds: float = 0.0
    categories: dict[str, list[int]] = msgspec.field(default_factory=dict)  # [orders, first ms]
    view_days: list[list[int]] = msgspec.field(default_factory=list)  # [day, views, high intent]
    high_intent_ms: list[int] = msgspec.field(default_factory=list)  # sorted
    # engagement-drop onsets derived from view_days (agents.domain.engagement), UTC days
    drop_onsets: list[int] = msgspec.field(default_factory=list)
    drop_key: int = 0  # the rule parameters they were derived with (0: never)
    last_visit_ms: int | None = None
    tickets: dict[str, list[TicketEntry]] = msgspec.field(default_factory=dict)
    profile: list[ProfileWrite] = msgspec.field(default_factory=list)  # sorted by (ms, event)
    profile_base: dict[str, list[Any]] = msgspec.field(default_factory=dict)  # [ms, event, value]
    # remembered event ids, sorted by (ms, id): parallel lists
    seen_ms: list[int] = msgspec.field(default_factory=list)
    seen_ids: list[int] = msgspec.field(default_factory=list)
    seen_info: list[int] = msgspec.field(default_factory=list)  # content fingerprint << 4 | kind


FACT_FIELDS = tuple(
    name
    for name in CustomerState.__struct_fields__
    if CustomerState.__struct_fields__.index(name)
    >= CustomerState.__struct_fields__.index("first_seen_ms")
)


class Outcome(Enum):
    """What :func:`apply_event` did."""

    APPLIED = "applied"
    REPLACED = "replaced"  # a conflicting duplicate that wins replaced the copy applied
    DUPLICATE_EVENT = "duplicate_event"  # this event id was applied already
    DUPLICATE_ORDER = "duplicate_order"  # this order was counted already


class Applied(NamedTuple):
    """What :func:`apply_event` did: the outcome, the categories whose first purchase
    time moved (for the shared co-purchase model), the UTC days whose view counts
    changed (for engagement onsets)."""

    outcome: Outcome
    moved: list[str]
    view_days: tuple[int, ...]


CHANGED = frozenset({Outcome.APPLIED, Outcome.REPLACED, Outcome.DUPLICATE_ORDER})  # facts moved

_KIND = {Purchase: 1, PageView: 2, SupportTicket: 3, CustomerProfile: 4, Refund: 5}
_HIGH_INTENT_FLAG = 8  # in a seen entry's kind bits: the page view was high intent
_ENCODE = msgspec.msgpack.Encoder().encode


def fingerprint(text: str) -> int:
    """A stable signed 64-bit fingerprint of ``text`` (ids in the state)."""
    digest = hashlib.blake2b(text.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little", signed=True)


def content_fingerprint(event: CustomerEvent) -> int:
    """A stable 32-bit fingerprint of an event's whole content (conflict tie-break)."""
    return zlib.crc32(_ENCODE(event))


def apply_event(
    state: CustomerState,
    event: CustomerEvent,
    *,
    limits: StateLimits,
    rates: Mapping[str, float],
) -> Applied:
    """Fold ``event`` into ``state``'s facts in place and say what changed.

    ``rates`` maps a currency code to base units per unit; the validator
    guarantees the event's currency is in it.
    """
    ms = event.occurred_ms
    eid = fingerprint(event.event_id)
    copy = content_fingerprint(event)
    kind = _KIND[type(event)]
    outcome = Outcome.APPLIED
    view_days: list[int] = []
    position = _seen_position(state, eid)
    if position is not None:
        old_ms, old_info = state.seen_ms[position], state.seen_info[position]
        if (old_ms, old_info >> 4) <= (ms, copy):
            return Applied(Outcome.DUPLICATE_EVENT, [], ())
        if old_info & 7 == 2:
            view_days.append(old_ms // MS_PER_DAY)
        _undo(state, old_ms, eid, old_info)
        _forget_seen(state, position)
        outcome = Outcome.REPLACED
    moved: list[str] = []
    flags = kind
    if kind == 1:
        assert isinstance(event, Purchase)
        result = _apply_purchase(state, event, ms, eid, copy, limits, rates)
        if result is None:
            outcome = Outcome.DUPLICATE_ORDER  # still an event received: times and id count
        else:
            moved = result
    elif kind == 2:
        assert isinstance(event, PageView)
        if _apply_page_view(state, ms, event.page_type, limits):
            flags |= _HIGH_INTENT_FLAG
        view_days.append(ms // MS_PER_DAY)
    elif kind == 3:
        assert isinstance(event, SupportTicket)
        _apply_ticket(state, event, ms, eid, copy, limits)
    elif kind == 4:
        assert isinstance(event, CustomerProfile)
        _apply_profile(state, event, ms, eid, copy, limits)
    else:
        assert isinstance(event, Refund)
        _apply_refund(state, event, ms, eid, copy, limits, rates)
    state.first_seen_ms = ms if state.first_seen_ms is None else min(state.first_seen_ms, ms)
    state.last_event_ms = ms if state.last_event_ms is None else max(state.last_event_ms, ms)
    _remember_seen(state, ms, eid, copy, flags, limits)
    if position is not None:  # replaced, even if this copy's order was counted already
        _recompute_latest(state)
    return Applied(outcome, moved, tuple(view_days))


def _recompute_latest(state: CustomerState) -> None:
    """After a later copy was replaced by an earlier one, the newest event and visit
    times are those of the events still applied (the remembered ids hold the newest)."""
    if state.seen_ms:
        state.last_event_ms = state.seen_ms[-1]
    visits = [t for t, info in zip(state.seen_ms, state.seen_info, strict=True) if info & 7 == 2]
    if visits:
        state.last_visit_ms = visits[-1]


# --- purchases and refunds ------------------------------------------------------


def base_amount(amount: float, currency: str, rates: Mapping[str, float]) -> float:
    """``amount`` in the base currency, rounded to 6 decimals and kept finite."""
    value = amount * rates[currency]
    if not math.isfinite(value) or value > MAX_AMOUNT:
        value = MAX_AMOUNT
    return round(max(value, 0.0), 6)


def _apply_purchase(
    state: CustomerState,
    event: Purchase,
    ms: int,
    eid: int,
    copy: int,
    limits: StateLimits,
    rates: Mapping[str, float],
) -> list[str] | None:
    key = fingerprint(event.order_id)
    orders = state.orders
    for i in range(len(orders) - 1, -1, -1):
        existing = orders[i]
        if existing.key == key:
            if (existing.ms, existing.copy) <= (ms, copy):
                return None  # this order is counted already (by an earlier copy)
            _remove_order(state, i)
            break
    categories = tuple(sorted({item.category for item in event.items}))
    order = Order(
        ms, key, base_amount(event.amount, event.currency, rates), eid, copy, event.order_id
    )
    order.categories = categories
    state.first_purchase_ms = (
        ms if state.first_purchase_ms is None else min(state.first_purchase_ms, ms)
    )
    moved = _count_categories(state, categories, ms, limits)
    if len(orders) >= limits.max_orders and (ms, key) < (orders[0].ms, orders[0].key):
        _evict_order(state, order)  # older than every remembered order: aggregates only
        return moved
    bisect.insort(orders, order, key=_order_key)
    while len(orders) > limits.max_orders:
        _evict_order(state, orders.pop(0))
    return moved


def _demote_orders(orders: list[Order], limits: StateLimits, horizon_ms: int) -> None:
    """Drop the id and categories of orders beyond the newest ``max_recent_purchases``
    that no moment still to be evaluated reads (placed ``order_detail_days`` before the
    horizon). Only customers with more orders than that pay for the scan."""
    newest_compact = len(orders) - limits.max_recent_purchases - 1
    cutoff = horizon_ms - limits.order_detail_days * MS_PER_DAY
    for j in range(
        min(newest_compact, bisect.bisect_left(orders, cutoff, key=_order_time) - 1), -1, -1
    ):
        order = orders[j]
        if order.categories is not None or order.order_id is not None:
            order.order_id = None
            order.categories = None


def _order_time(order: Order) -> int:
    return order.ms


def _order_key(order: Order) -> tuple[int, int]:
    return (order.ms, order.key)


def _evict_order(state: CustomerState, order: Order) -> None:
    state.evicted_orders += 1
    state.evicted_spend = round(state.evicted_spend + order.amount, 6)
    if state.evicted_last_ms is None or order.ms > state.evicted_last_ms:
        state.evicted_last_ms = order.ms


def _remove_order(state: CustomerState, index: int) -> None:
    """Take back an order's winning copy (a conflicting copy replaces it)."""
    order = state.orders.pop(index)
    for category in order.categories or ():
        entry = state.categories.get(category)
        if entry is None:
            continue
        entry[0] -= 1
        if entry[0] <= 0:
            del state.categories[category]
        elif entry[1] == order.ms:
            times = [o.ms for o in state.orders if o.categories and category in o.categories]
            entry[1] = min(times) if times else entry[1]
    if state.first_purchase_ms == order.ms and state.orders and state.evicted_orders == 0:
        state.first_purchase_ms = state.orders[0].ms
    elif not state.orders and state.evicted_orders == 0:
        state.first_purchase_ms = None


def _count_categories(
    state: CustomerState, categories: tuple[str, ...], ms: int, limits: StateLimits
) -> list[str]:
    """Count an order in its categories; returns those whose first purchase moved."""
    moved = []
    table = state.categories
    for category in categories:
        entry = table.get(category)
        if entry is None:
            table[category] = [1, ms]
            moved.append(category)
        else:
            entry[0] += 1
            if ms < entry[1]:
                entry[1] = ms
                moved.append(category)
    while len(table) > limits.max_categories:
        # Keep the categories bought first (a set function of the orders, so the same
        # in any order); the newest first purchase leaves.
        latest = max(table.items(), key=lambda kv: (kv[1][1], kv[0]))[0]
        del table[latest]
        if latest in moved:
            moved.remove(latest)
    return moved


def category_first_times(state: CustomerState) -> dict[str, int]:
    """Category -> time of the customer's first purchase with it."""
    return {category: entry[1] for category, entry in state.categories.items()}


def _apply_refund(
    state: CustomerState,
    event: Refund,
    ms: int,
    eid: int,
    copy: int,
    limits: StateLimits,
    rates: Mapping[str, float],
) -> None:
    entry = RefundEntry(
        ms, fingerprint(event.order_id), base_amount(event.amount, event.currency, rates), eid, copy
    )
    bisect.insort(state.refunds, entry, key=_refund_key)
    while len(state.refunds) > limits.max_refunds:
        oldest = state.refunds.pop(0)
        state.evicted_refunds = round(state.evicted_refunds + oldest.amount, 6)


def _refund_key(entry: RefundEntry) -> tuple[int, int]:
    return (entry.ms, entry.event)


# --- page views -----------------------------------------------------------------


def _apply_page_view(state: CustomerState, ms: int, page_type: str, limits: StateLimits) -> bool:
    """Count a view; returns whether it was high intent."""
    state.last_visit_ms = ms if state.last_visit_ms is None else max(state.last_visit_ms, ms)
    high = page_type in HIGH_INTENT_PAGE_TYPES
    _add_view(state.view_days, ms // MS_PER_DAY, 1, int(high))
    if high:
        views = state.high_intent_ms
        bisect.insort(views, ms)
        if len(views) > limits.max_high_intent_views:
            del views[0]
    return high


def _add_view(buckets: list[list[int]], day: int, views: int, high: int) -> None:
    index = bisect.bisect_left(buckets, [day])
    if index < len(buckets) and buckets[index][0] == day:
        bucket = buckets[index]
        bucket[1] += views
        bucket[2] += high
        if bucket[1] <= 0:
            del buckets[index]
    elif views > 0:
        buckets.insert(index, [day, views, high])


# --- tickets --------------------------------------------------------------------


def _apply_ticket(
    state: CustomerState, event: SupportTicket, ms: int, eid: int, copy: int, limits: StateLimits
) -> None:
    entries = state.tickets.setdefault(event.ticket_id, [])
    bisect.insort(entries, TicketEntry(ms, event.status, event.category, eid, copy), key=_entry_key)
    if len(entries) > MAX_TICKET_LOG:
        opening = next((e for e in entries if e.status == "opened"), entries[0])
        newest = entries[-(MAX_TICKET_LOG - 1) :]
        entries[:] = ([opening] if opening not in newest else []) + newest
    if len(state.tickets) > limits.max_tickets:
        # The least recently active ticket leaves (ties by id).
        stale = min(state.tickets.items(), key=lambda kv: (kv[1][-1].ms, kv[0]))[0]
        del state.tickets[stale]


def _entry_key(entry: TicketEntry) -> tuple[int, int]:
    return (entry.ms, entry.event)


def ticket_opening(entries: list[TicketEntry]) -> TicketEntry | None:
    """The entry that opened the ticket, or ``None`` if its opening was never seen (it
    was opened before the feed began, or that event was rejected)."""
    for entry in entries:
        if entry.status == "opened":
            return entry
    return None


def ticket_status_as_of(entries: list[TicketEntry], as_of_ms: int) -> str | None:
    """The ticket's status at ``as_of_ms``; ``None`` before its first known change."""
    status = None
    for entry in entries:
        if entry.ms > as_of_ms:
            break
        status = entry.status
    return status


def is_open(entries: list[TicketEntry], as_of_ms: int) -> bool:
    return ticket_status_as_of(entries, as_of_ms) in OPEN_TICKET_STATUSES


# --- profile --------------------------------------------------------------------


def _apply_profile(
    state: CustomerState,
    event: CustomerProfile,
    ms: int,
    eid: int,
    copy: int,
    limits: StateLimits,
) -> None:
    updates: list[tuple[str, Any]] = []
    for channel, allowed in sorted((event.consent or {}).items()):
        if channel in CONSENT_CHANNELS and isinstance(allowed, bool):
            updates.append((f"consent.{channel}", allowed))
    if event.timezone is not None:
        updates.append(("timezone", event.timezone))
    if event.locale is not None:
        updates.append(("locale", event.locale))
    writes = state.profile
    for attribute, value in updates:
        bisect.insort(writes, ProfileWrite(ms, eid, copy, attribute, value), key=_write_key)
    while len(writes) > limits.max_profile_writes:
        oldest = writes.pop(0)
        current = state.profile_base.get(oldest.attribute)
        if current is None or (current[0], current[1]) < (oldest.ms, oldest.event):
            state.profile_base[oldest.attribute] = [oldest.ms, oldest.event, oldest.value]


def _write_key(write: ProfileWrite) -> tuple[int, int, str]:
    return (write.ms, write.event, write.attribute)


def profile_attributes(state: CustomerState) -> dict[str, tuple[int, Any]]:
    """Attribute -> (time set, value): the newest write of each (ties by event)."""
    best: dict[str, tuple[int, int, Any]] = {
        name: (entry[0], entry[1], entry[2]) for name, entry in state.profile_base.items()
    }
    for write in state.profile:
        current = best.get(write.attribute)
        if current is None or (current[0], current[1]) < (write.ms, write.event):
            best[write.attribute] = (write.ms, write.event, write.value)
    return {name: (ms, value) for name, (ms, _, value) in best.items()}


def consent(state: CustomerState) -> dict[str, bool]:
    """Channel -> whether marketing on it is allowed (channels never set are absent)."""
    return {
        name.removeprefix("consent."): bool(value)
        for name, (_, value) in sorted(profile_attributes(state).items())
        if name.startswith("consent.")
    }


# --- remembered event ids -------------------------------------------------------


def _seen_position(state: CustomerState, eid: int) -> int | None:
    ids = state.seen_ids
    if eid not in ids:
        return None
    return ids.index(eid)


def _remember_seen(
    state: CustomerState, ms: int, eid: int, copy: int, flags: int, limits: StateLimits
) -> None:
    times, ids = state.seen_ms, state.seen_ids
    index = bisect.bisect_right(times, ms)
    while index > 0 and times[index - 1] == ms and ids[index - 1] > eid:
        index -= 1
    times.insert(index, ms)
    ids.insert(index, eid)
    state.seen_info.insert(index, (copy << 4) | flags)
    excess = len(times) - limits.max_event_ids
    if excess > 0:
        del times[:excess], ids[:excess], state.seen_info[:excess]


def _forget_seen(state: CustomerState, position: int) -> None:
    del state.seen_ms[position], state.seen_ids[position], state.seen_info[position]


def _undo(state: CustomerState, ms: int, eid: int, info: int) -> None:
    """Take back the facts the applied copy of event ``eid`` contributed."""
    kind = info & 7
    if kind == 1:
        for i, order in enumerate(state.orders):
            if order.event == eid:
                _remove_order(state, i)
                break
    elif kind == 2:
        high = bool(info & _HIGH_INTENT_FLAG)
        _add_view(state.view_days, ms // MS_PER_DAY, -1, -int(high))
        if high and ms in state.high_intent_ms:
            state.high_intent_ms.remove(ms)
    elif kind == 3:
        for ticket_id, entries in list(state.tickets.items()):
            kept = [e for e in entries if e.event != eid]
            if len(kept) != len(entries):
                if kept:
                    state.tickets[ticket_id] = kept
                else:
                    del state.tickets[ticket_id]
    elif kind == 4:
        state.profile = [w for w in state.profile if w.event != eid]
    elif kind == 5:
        state.refunds = [r for r in state.refunds if r.event != eid]


# --- horizons -------------------------------------------------------------------


def prune(state: CustomerState, limits: StateLimits, horizon_ms: int) -> None:
    """Drop windowed facts that lie before their window ending at ``horizon_ms``.

    Callers pass a time no later than any moment still to be evaluated (the
    partition's firing bound), so nothing a pending rule may read is dropped.
    Derivations as of ``T`` read only what lies inside the windows ending at
    ``T``, so when pruning happens does not change what they say.
    """
    if horizon_ms <= NEVER:
        return
    if len(state.orders) > limits.max_recent_purchases:
        _demote_orders(state.orders, limits, horizon_ms)
    first_day = horizon_ms // MS_PER_DAY - limits.page_view_window_days + 1
    days = state.view_days
    if days and days[0][0] < first_day:
        keep = bisect.bisect_left(days, [first_day])
        del days[:keep]
    onsets = state.drop_onsets
    if onsets and onsets[0] < first_day + limits.drop_reach_days:
        del onsets[: bisect.bisect_left(onsets, first_day + limits.drop_reach_days)]
    views = state.high_intent_ms
    view_horizon = horizon_ms - limits.page_view_window_days * MS_PER_DAY
    if views and views[0] <= view_horizon:
        del views[: bisect.bisect_right(views, view_horizon)]
    if state.tickets:
        ticket_horizon = horizon_ms - limits.ticket_history_days * MS_PER_DAY
        stale = [
            tid
            for tid, entries in state.tickets.items()
            if entries[-1].ms < ticket_horizon and not is_open(entries, horizon_ms)
        ]
        for tid in stale:
            del state.tickets[tid]
    times = state.seen_ms
    seen_horizon = horizon_ms - limits.dedup_horizon_days * MS_PER_DAY
    if times and times[0] <= seen_horizon:
        cut = bisect.bisect_right(times, seen_horizon)
        del times[:cut], state.seen_ids[:cut], state.seen_info[:cut]


def retained(state: CustomerState, limits: StateLimits, as_of_ms: int) -> CustomerState:
    """What of ``state`` is kept as of ``as_of_ms``: a shallow copy pruned there (the
    state itself is not changed). Every derivation as of a time reads this, so what
    it says does not depend on when the state's garbage was last collected.

    Two states built from the same events, in any order, are equal once
    :func:`retained` as of the same time."""
    orders = state.orders
    if len(orders) > limits.max_recent_purchases:  # demotion changes orders in place
        orders = [msgspec.structs.replace(o) for o in orders]
    copied = msgspec.structs.replace(
        state,
        orders=orders,
        view_days=list(state.view_days),
        high_intent_ms=list(state.high_intent_ms),
        drop_onsets=list(state.drop_onsets),
        tickets=dict(state.tickets),
        seen_ms=list(state.seen_ms),
        seen_ids=list(state.seen_ids),
        seen_info=list(state.seen_info),
    )
    prune(copied, limits, as_of_ms)
    return copied
