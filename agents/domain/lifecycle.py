"""Lifecycle stages, durable per-customer timers and the lapse rules. Pure.

Timers live in the customer's state (``CustomerState.timers``: ``[due_ms,
rule, episode_ms]``), so they are as durable as the state itself: changelogged
with the customer table, co-partitioned, moved on rebalance, restored on
recovery. An *episode* of silence starts at a purchase (``episode_ms``) and
ends at the next one; each rule fires at most once per episode.

Evaluation is *as of the due time*: a timer due at ``d`` looks only at
purchases at or before ``d``. So the outcome does not depend on whether a
later event was applied before the timer was processed, which is what makes
the Kafka path (driven by watermarks) give the same triggers as the offline
backtest (driven by sorted events).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from agents.domain.customer_state import CustomerState
from schemas.timestamps import MS_PER_DAY, iso
from schemas.triggers import Trigger, trigger_id

STAGE_LAPSED_TIMER = "stage:lapsed"
STAGE_CHURNED_TIMER = "stage:churned"
MAX_STAGE_HISTORY = 16
MAX_FIRED_EPISODES = 8


@dataclass(frozen=True)
class LapseRule:
    """Fire when lifetime spend >= ``min_lifetime_spend`` and ``days`` days pass
    without a purchase (``lapse_90d``, ``lapse_180d``, ...)."""

    name: str
    days: int
    min_lifetime_spend: float
    enabled: bool = True


@dataclass(frozen=True)
class LifecyclePolicy:
    """Days of silence after which a buyer's stage becomes lapsed, then churned."""

    lapsed_after_days: int = 180
    churned_after_days: int = 365


@dataclass(frozen=True)
class Rulebook:
    """Every rule and threshold the engine applies; built from the config file."""

    lapse_rules: tuple[LapseRule, ...] = (
        LapseRule("lapse_90d", 90, 5000.0),
        LapseRule("lapse_180d", 180, 5000.0),
    )
    lifecycle: LifecyclePolicy = field(default_factory=LifecyclePolicy)
    currency: str = "JPY"

    @property
    def active_lapse_rules(self) -> tuple[LapseRule, ...]:
        return tuple(r for r in self.lapse_rules if r.enabled)

    def silence_timers(self) -> list[tuple[str, int]]:
        """(timer name, days after a purchase) for every silence-based timer."""
        timers = [(r.name, r.days) for r in self.active_lapse_rules]
        timers.append((STAGE_LAPSED_TIMER, self.lifecycle.lapsed_after_days))
        timers.append((STAGE_CHURNED_TIMER, self.lifecycle.churned_after_days))
        return timers


# --- purchases as of a time -------------------------------------------------


def last_purchase_as_of(state: CustomerState, as_of_ms: int) -> int | None:
    """Time of the newest purchase at or before ``as_of_ms``, or ``None``."""
    if state.last_purchase_ms is not None and state.last_purchase_ms <= as_of_ms:
        return state.last_purchase_ms
    earlier: list[int] = [p[0] for p in state.recent_purchases if p[0] <= as_of_ms]
    if earlier:
        return max(earlier)
    first = state.first_purchase_ms
    return first if first is not None and first <= as_of_ms else None


def spend_as_of(state: CustomerState, as_of_ms: int) -> float:
    """Lifetime spend counting only purchases at or before ``as_of_ms``."""
    later: float = sum(p[1] for p in state.recent_purchases if p[0] > as_of_ms)
    return round(state.lifetime_spend - later, 6)


def purchases_as_of(state: CustomerState, as_of_ms: int) -> int:
    """Number of purchases at or before ``as_of_ms``."""
    return state.purchase_count - sum(1 for p in state.recent_purchases if p[0] > as_of_ms)


def top_categories_as_of(state: CustomerState, as_of_ms: int, n: int = 3) -> list[str]:
    """The ``n`` categories bought most often, counting purchases up to ``as_of_ms``."""
    counts = dict(state.categories)
    for p in state.recent_purchases:
        if p[0] > as_of_ms:
            for category in p[3]:
                counts[category] = counts.get(category, 0) - 1
    ranked = sorted(((c, k) for k, c in counts.items() if c > 0), key=lambda ck: (-ck[0], ck[1]))
    return [k for _, k in ranked[:n]]


# --- stages -----------------------------------------------------------------


def record_stage(state: CustomerState, at_ms: int, stage: str, cause: str) -> bool:
    """Insert a stage change at ``at_ms`` (kept in time order); skip a non-change.

    The current stage is the newest entry. Returns whether anything changed.
    """
    history = state.stage_history
    index = len(history)
    while index > 0 and history[index - 1][0] > at_ms:
        index -= 1
    if index > 0 and history[index - 1][1] == stage:
        return False
    if any(h[0] == at_ms and h[1] == stage for h in history):
        return False
    history.insert(index, [at_ms, stage, cause])
    del history[:-MAX_STAGE_HISTORY]
    state.stage = history[-1][1]
    return True


# --- events -----------------------------------------------------------------


def after_event(state: CustomerState, occurred_ms: int, is_purchase: bool, book: Rulebook) -> None:
    """Update stage and timers after :func:`apply_event` applied an event at ``occurred_ms``."""
    if not state.stage_history:
        record_stage(state, state.first_seen_ms or occurred_ms, "prospect", "first seen")
    if not is_purchase:
        return
    earlier = [p[0] for p in state.recent_purchases if p[0] < occurred_ms]
    previous = max(earlier) if earlier else None
    gap_days = None if previous is None else (occurred_ms - previous) / MS_PER_DAY
    if gap_days is not None and gap_days >= book.lifecycle.lapsed_after_days:
        state.reactivations += 1
        if state.last_reactivated_ms is None or occurred_ms > state.last_reactivated_ms:
            state.last_reactivated_ms = occurred_ms
        record_stage(
            state, occurred_ms, "reactivated", f"purchase after {int(gap_days)} days without one"
        )
    else:
        count = purchases_as_of(state, occurred_ms)
        record_stage(
            state,
            occurred_ms,
            "new" if count == 1 else "repeat",
            "first purchase" if count == 1 else f"purchase #{count}",
        )
    _reschedule_silence_timers(state, occurred_ms, book)


def _reschedule_silence_timers(state: CustomerState, purchase_ms: int, book: Rulebook) -> None:
    # A purchase at p makes moot every silence timer of an earlier episode due at or after p.
    state.timers = [t for t in state.timers if not (t[2] < purchase_ms <= t[0])]
    later = [p[0] for p in state.recent_purchases if p[0] > purchase_ms]
    next_purchase = min(later) if later else None
    for name, days in book.silence_timers():
        due = purchase_ms + days * MS_PER_DAY
        if next_purchase is not None and next_purchase <= due:
            continue  # a later purchase (applied earlier) already ends this episode
        if purchase_ms in state.fired.get(name, ()):
            continue
        _add_timer(state, [due, name, purchase_ms])


def _add_timer(state: CustomerState, timer: list[Any]) -> None:
    if timer in state.timers:
        return
    index = len(state.timers)
    while index > 0 and state.timers[index - 1] > timer:
        index -= 1
    state.timers.insert(index, timer)


def next_due(state: CustomerState) -> int | None:
    """Due time of the customer's earliest pending timer."""
    return state.timers[0][0] if state.timers else None


# --- timers -----------------------------------------------------------------


def fire_due_timers(
    state: CustomerState,
    *,
    before_ms: int,
    book: Rulebook,
    now_ms: int | None = None,
) -> list[Trigger]:
    """Fire, in due order, every pending timer due strictly before ``before_ms``.

    ``now_ms`` is the wall-clock time stamped as ``fired_at``; ``None`` (event
    time) stamps the due time. Returns the triggers to emit.
    """
    triggers: list[Trigger] = []
    while state.timers and state.timers[0][0] < before_ms:
        due, name, episode = state.timers.pop(0)
        trigger = _fire(state, due, name, episode, book, now_ms)
        if trigger is not None:
            triggers.append(trigger)
    return triggers


def _fire(
    state: CustomerState, due: int, name: str, episode: int, book: Rulebook, now_ms: int | None
) -> Trigger | None:
    if last_purchase_as_of(state, due) != episode:
        return None  # a purchase ended this episode before the timer fell due
    if name == STAGE_LAPSED_TIMER:
        days = book.lifecycle.lapsed_after_days
        record_stage(state, due, "lapsed", f"no purchase for {days} days")
        return None
    if name == STAGE_CHURNED_TIMER:
        days = book.lifecycle.churned_after_days
        record_stage(state, due, "churned", f"no purchase for {days} days")
        return None
    rule = next((r for r in book.active_lapse_rules if r.name == name), None)
    if rule is None or episode in state.fired.get(name, ()):
        return None  # rule switched off since scheduling, or already fired
    spend = spend_as_of(state, due)
    if spend < rule.min_lifetime_spend:
        return None
    _mark_fired(state, name, episode)
    facts = {
        "days_since_purchase": (due - episode) // MS_PER_DAY,
        "lifetime_spend": spend,
        "min_lifetime_spend": rule.min_lifetime_spend,
        "currency": book.currency,
        "purchase_count": purchases_as_of(state, due),
        "last_order_at": iso(episode),
        "last_order_date": iso(episode)[:10],
        "top_categories": top_categories_as_of(state, due),
    }
    return make_trigger(
        state.customer_id,
        name,
        episode_ms=episode,
        due_ms=due,
        now_ms=now_ms,
        reason=(
            f"No purchase for {rule.days} days after spending {spend:,.0f} {book.currency} "
            f"(threshold {rule.min_lifetime_spend:,.0f})"
        ),
        facts=facts,
    )


def _mark_fired(state: CustomerState, rule: str, episode: int) -> None:
    episodes = state.fired.setdefault(rule, [])
    episodes.append(episode)
    episodes.sort()
    del episodes[:-MAX_FIRED_EPISODES]


def make_trigger(
    customer_id: str,
    rule: str,
    *,
    episode_ms: int,
    due_ms: int,
    now_ms: int | None,
    reason: str,
    facts: dict[str, Any],
) -> Trigger:
    """A trigger with its deterministic id.

    ``fired_at`` is ``now_ms``, or the due time when ``now_ms`` is ``None`` (event time).
    """
    episode = iso(episode_ms)
    return Trigger(
        trigger_id=trigger_id(customer_id, rule, episode),
        rule=rule,
        customer_id=customer_id,
        episode=episode,
        fired_at=iso(due_ms if now_ms is None else now_ms),
        due_at=iso(due_ms),
        reason=reason,
        facts=facts,
    )
