"""Firing a customer's due rule moments, and the bookkeeping of what was sent. Pure.

Moments (``agents.domain.moments``) are derived from the facts; a customer's
state records only ``evaluated_before`` — every moment due before it has been
evaluated — and what fired (``fired``: the newest episodes per rule;
``last_fired``: the due time of each rule's last trigger). Firing up to a
bound evaluates, in due order, every moment in ``[evaluated_before, bound)``,
each *as of its due time*, so the outcome does not depend on whether later
events were applied before (which is what makes the Kafka path, driven by
watermarks, give the same triggers as the offline backtest). A trigger is
sent at most once per (rule, episode) and not within a rule's cooldown.

An event dated before ``evaluated_before`` (a late event, or simply one that
occurred a moment before the clock it is processed at) moves
``evaluated_before`` back to its time: the moments it creates or changes are
evaluated at the next firing. Moments already sent stay sent. It never moves
back past :func:`reevaluation_floor`, so a late event older than what the
state remembers cannot re-fire a trigger whose record was forgotten.
"""

from __future__ import annotations

from typing import Any

from agents.domain.co_purchase import CoPurchaseModel
from agents.domain.customer_state import NEVER, CustomerState
from agents.domain.moments import STAGE_CHURNED, STAGE_LAPSED, moments, next_due
from agents.domain.rulebook import Rulebook
from agents.domain.rules import Context, Subject, evaluator_for
from schemas.timestamps import iso
from schemas.triggers import Trigger, trigger_id

MAX_FIRED_EPISODES = 8
_EMPTY_MODEL = CoPurchaseModel()


def reevaluation_floor(state: CustomerState, book: Rulebook) -> int:
    """The earliest time moments may be evaluated again from: after the newest order
    whose context (the orders before it a rule reads) is no longer remembered."""
    if state.evicted_orders and state.orders:
        context = max(book.lifecycle.loyal_min_purchases, 2)
        return state.orders[min(context, len(state.orders) - 1)].ms
    return NEVER


def reopen(state: CustomerState, at_ms: int, book: Rulebook) -> None:
    """An event at ``at_ms`` was applied: moments from then on are evaluated again."""
    if at_ms < state.evaluated_before:
        state.evaluated_before = max(at_ms, reevaluation_floor(state, book))
    refresh_next_due(state, book)


def refresh_next_due(state: CustomerState, book: Rulebook, subject: Subject | None = None) -> None:
    """Recompute ``state.next_due`` (the timer index reads it)."""
    s = Subject(state) if subject is None else subject
    state.next_due = next_due(s, book, state.evaluated_before)


def fire_due(
    state: CustomerState,
    *,
    before_ms: int,
    book: Rulebook,
    co_purchases: CoPurchaseModel | None = None,
    now_ms: int | None = None,
) -> list[Trigger]:
    """Evaluate, in due order, every moment due in ``[evaluated_before, before_ms)``;
    returns the triggers to send and advances ``evaluated_before`` past the last of
    them (one ms after its due time; unchanged if none was due).

    No moment lies between that and ``before_ms``, so it means the same as
    ``before_ms`` would; but it depends only on the moments, not on the bounds the
    caller fired up to, so a worker firing up to each watermark and the backtest
    firing one due time at a time store the same bytes (and a late event reopens
    exactly what the backtest would reopen).

    ``now_ms`` is the wall-clock time stamped as ``fired_at``; ``None`` (event time)
    stamps the due time. ``co_purchases`` must hold every increment stamped before
    ``before_ms`` (cross-sell reads it).
    """
    triggers: list[Trigger] = []
    if before_ms <= state.evaluated_before:
        return triggers
    s = Subject(state)
    ctx = Context(book, co_purchases if co_purchases is not None else _EMPTY_MODEL)
    evaluated = state.evaluated_before
    for due, name, episode in moments(s, book, state.evaluated_before, before_ms):
        evaluated = due + 1
        if name in (STAGE_LAPSED, STAGE_CHURNED):
            continue  # the derived stage changes by itself; the caller rewrites the row
        trigger = _fire(s, due, name, episode, ctx, now_ms)
        if trigger is not None:
            triggers.append(trigger)
    state.evaluated_before = evaluated
    refresh_next_due(state, book, s)
    return triggers


def _fire(
    s: Subject, due: int, name: str, episode: int, ctx: Context, now_ms: int | None
) -> Trigger | None:
    state = s.state
    rule = ctx.book.active(name)
    if rule is None:
        return None
    episodes = state.fired.get(name)
    if episodes is not None:
        if episode in episodes:
            return None  # sent already
        if len(episodes) >= MAX_FIRED_EPISODES and episode < episodes[0]:
            return None  # older than the episodes remembered: it may have been sent
    detection = evaluator_for(rule)(rule, s, due, episode, ctx)
    if detection is None:
        return None
    last = state.last_fired.get(name)
    if last is not None and due - last < rule.cooldown_days * 86_400_000:
        return None  # fired for this customer too recently (or a later one fired already)
    _mark_fired(state, name, episode, due)
    return make_trigger(
        state.customer_id,
        name,
        episode_ms=episode,
        due_ms=due,
        now_ms=now_ms,
        reason=detection.reason,
        facts=detection.facts,
    )


def _mark_fired(state: CustomerState, rule: str, episode: int, due: int) -> None:
    episodes = state.fired.setdefault(rule, [])
    episodes.append(episode)
    episodes.sort()
    del episodes[:-MAX_FIRED_EPISODES]
    state.last_fired[rule] = max(due, state.last_fired.get(rule, due))


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
    due_at = iso(due_ms)
    return Trigger(
        trigger_id=trigger_id(customer_id, rule, episode),
        rule=rule,
        customer_id=customer_id,
        episode=episode,
        fired_at=due_at if now_ms is None else iso(now_ms),
        due_at=due_at,
        reason=reason,
        facts=facts,
    )
