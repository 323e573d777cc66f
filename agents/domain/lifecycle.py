"""Durable per-customer timers: what an event schedules and what firing does. Pure.

Timers live in the customer's state (``CustomerState.timers``: ``[due_ms,
rule, episode_ms]``, sorted), so they are as durable as the state itself:
changelogged with the customer table, co-partitioned, moved on rebalance,
restored on recovery. Every rule, immediate ones included, runs through a
timer: an event schedules, firing evaluates.

Evaluation is *as of the due time*: a timer due at ``d`` looks only at facts
at or before ``d`` (``agents.domain.history``). So the outcome does not depend
on whether a later event was applied before the timer was processed, which is
what makes the Kafka path (driven by watermarks) give the same triggers as the
offline backtest (driven by sorted events). Timers of one customer fire in due
order on both paths, so once-per-episode and cooldown decide alike too.
"""

from __future__ import annotations

from typing import Any

from agents.domain.co_purchase import CoPurchaseModel
from agents.domain.customer_state import CustomerState, is_trouble, opening_category
from agents.domain.history import last_purchase_as_of, previous_purchase, views_by_day
from agents.domain.rulebook import (
    CancellationRequestRule,
    CrossSellRule,
    EngagementDropRule,
    HighIntentNoPurchaseRule,
    LoyalAtRiskRule,
    LoyalPromotionRule,
    PostPurchaseFollowUpRule,
    ReactivatedRule,
    Rulebook,
    SecondPurchaseNudgeRule,
    SupportTroubleRule,
)
from agents.domain.rules import (
    Context,
    evaluator_for,
    first_engagement_drop,
    high_intent_burst,
    loyal_at_risk_due,
)
from agents.domain.stages import (
    ACTIVE_BUYER_STAGES,
    AT_RISK,
    CHURNED,
    LAPSED,
    PROSPECT,
    is_loyal,
    is_reactivation,
    record_purchase_stage,
    record_stage,
    record_timed_stage,
    stage_as_of,
)
from schemas.events import CustomerEvent, PageView, Purchase, SupportTicket
from schemas.timestamps import MS_PER_DAY, MS_PER_HOUR, iso, to_ms
from schemas.triggers import Trigger, trigger_id

STAGE_LAPSED_TIMER = "stage:lapsed"
STAGE_CHURNED_TIMER = "stage:churned"
MAX_FIRED_EPISODES = 8


# --- scheduling: what an applied event sets up -------------------------------


def after_event(state: CustomerState, event: CustomerEvent, book: Rulebook) -> None:
    """Update stage and timers after :func:`apply_event` applied ``event``."""
    occurred = to_ms(event.occurred_at)
    if not state.stage_history:
        record_stage(state, state.first_seen_ms or occurred, PROSPECT, "first seen")
    if isinstance(event, Purchase):
        _after_purchase(state, occurred, book)
    elif isinstance(event, SupportTicket):
        _after_ticket(state, event.ticket_id, occurred, book)
    elif isinstance(event, PageView):
        _after_page_view(state, occurred, book)


def _after_purchase(state: CustomerState, at: int, book: Rulebook) -> None:
    policy = book.lifecycle
    if is_reactivation(state, at, policy):
        state.reactivations += 1
        if state.last_reactivated_ms is None or at > state.last_reactivated_ms:
            state.last_reactivated_ms = at
    record_purchase_stage(state, at, policy)
    _reschedule_silence_timers(state, at, book)
    # "N days after a purchase" rules; their evaluators decide whether it is still apt.
    first_purchase = previous_purchase(state, at) is None
    for rule_type in (PostPurchaseFollowUpRule, SecondPurchaseNudgeRule, CrossSellRule):
        rule = book.active(rule_type.name)
        if rule and (rule_type is not SecondPurchaseNudgeRule or first_purchase):
            _schedule(state, at + rule.days * MS_PER_DAY, rule.name, at)
    # Moments that depend on the purchases before them: a purchase applied late (out of
    # order) can make a later, already applied purchase a reactivation or loyal.
    for later in sorted({p[0] for p in state.recent_purchases if p[0] >= at}):
        if later != at:
            record_purchase_stage(state, later, policy)
        _schedule_purchase_moments(state, later, book)


def _schedule_purchase_moments(state: CustomerState, at: int, book: Rulebook) -> None:
    policy = book.lifecycle
    if book.active(ReactivatedRule.name) and is_reactivation(state, at, policy):
        _schedule(state, at, ReactivatedRule.name, at)
    if is_loyal(state, at, policy):
        if book.active(LoyalPromotionRule.name):
            _schedule(state, at, LoyalPromotionRule.name, at)
        at_risk_rule = book.active(LoyalAtRiskRule.name)
        if at_risk_rule:
            due = loyal_at_risk_due(state, at, at_risk_rule)
            if due is not None:
                _schedule(state, due, LoyalAtRiskRule.name, at)


def silence_timers(book: Rulebook) -> list[tuple[str, int]]:
    """(timer name, days after a purchase) for every silence-based timer."""
    timers = [(r.name, r.days) for r in book.active_lapse_rules]
    timers.append((STAGE_LAPSED_TIMER, book.lifecycle.lapsed_after_days))
    timers.append((STAGE_CHURNED_TIMER, book.lifecycle.churned_after_days))
    return timers


def _reschedule_silence_timers(state: CustomerState, purchase_ms: int, book: Rulebook) -> None:
    # A purchase at p makes moot every silence timer of an earlier episode due at or after p.
    silence = {name for name, _ in silence_timers(book)} | {LoyalAtRiskRule.name}
    state.timers = [t for t in state.timers if not (t[1] in silence and t[2] < purchase_ms <= t[0])]
    later = [p[0] for p in state.recent_purchases if p[0] > purchase_ms]
    next_purchase = min(later) if later else None
    for name, days in silence_timers(book):
        due = purchase_ms + days * MS_PER_DAY
        if next_purchase is not None and next_purchase <= due:
            continue  # a later purchase (applied earlier) already ends this episode
        if purchase_ms in state.fired.get(name, ()):
            continue
        _schedule(state, due, name, purchase_ms)


def _after_ticket(state: CustomerState, ticket_id: str, at: int, book: Rulebook) -> None:
    ticket = state.tickets.get(ticket_id)
    if ticket is None or ticket[2] != at:
        return  # not the ticket's opening (an update, or the opening came earlier)
    if is_trouble(ticket) and book.active(SupportTroubleRule.name):
        _schedule(state, at, SupportTroubleRule.name, at)
    if opening_category(ticket) == "cancellation" and book.active(CancellationRequestRule.name):
        _schedule(state, at, CancellationRequestRule.name, at)


def _after_page_view(state: CustomerState, at: int, book: Rulebook) -> None:
    intent = book.active(HighIntentNoPurchaseRule.name)
    if intent and at in state.high_intent_views_ms:
        # This view counts in the bursts ending at it and at the views after it within the
        # window (which, applied earlier, may not have reached the count on their own).
        window = intent.window_hours * MS_PER_HOUR
        for view in [v for v in state.high_intent_views_ms if at <= v < at + window]:
            if len(high_intent_burst(state, view, intent)) >= intent.min_views:
                _schedule(state, view + intent.wait_hours * MS_PER_HOUR, intent.name, view)
    engagement = book.active(EngagementDropRule.name)
    if engagement:
        day = at // MS_PER_DAY
        # A view on day u changes every check after day u: recompute the next one.
        pending = [t for t in state.timers if t[1] == engagement.name]
        affected = [t for t in pending if t[0] // MS_PER_DAY > day]
        state.timers = [t for t in state.timers if t not in affected]
        if len(affected) == len(pending):
            _schedule_engagement_check(state, day + 1, engagement)


def _schedule_engagement_check(
    state: CustomerState, from_day: int, rule: EngagementDropRule
) -> None:
    day = first_engagement_drop(views_by_day(state), from_day, rule)
    if day is not None:
        _schedule(state, day * MS_PER_DAY, rule.name, day * MS_PER_DAY)


def _schedule(state: CustomerState, due: int, name: str, episode: int) -> None:
    if episode in state.fired.get(name, ()):
        return
    timer = [due, name, episode]
    if timer in state.timers:
        return
    index = len(state.timers)
    while index > 0 and state.timers[index - 1] > timer:
        index -= 1
    state.timers.insert(index, timer)


def next_due(state: CustomerState) -> int | None:
    """Due time of the customer's earliest pending timer."""
    return state.timers[0][0] if state.timers else None


# --- firing -------------------------------------------------------------------


def fire_due_timers(
    state: CustomerState,
    *,
    before_ms: int,
    book: Rulebook,
    co_purchases: CoPurchaseModel | None = None,
    now_ms: int | None = None,
) -> list[Trigger]:
    """Fire, in due order, every pending timer due strictly before ``before_ms``.

    ``now_ms`` is the wall-clock time stamped as ``fired_at``; ``None`` (event
    time) stamps the due time. ``co_purchases`` must hold every increment
    stamped before ``before_ms`` (cross-sell reads it). Returns the triggers.
    """
    ctx = Context(book, co_purchases if co_purchases is not None else CoPurchaseModel())
    triggers: list[Trigger] = []
    while state.timers and state.timers[0][0] < before_ms:
        due, name, episode = state.timers.pop(0)
        trigger = _fire(state, due, name, episode, ctx, now_ms)
        if trigger is not None:
            triggers.append(trigger)
    return triggers


def _fire(
    state: CustomerState, due: int, name: str, episode: int, ctx: Context, now_ms: int | None
) -> Trigger | None:
    book = ctx.book
    if name in (STAGE_LAPSED_TIMER, STAGE_CHURNED_TIMER):
        _fire_stage_timer(state, due, name, episode, book)
        return None
    rule = book.active(name)
    if rule is None or episode in state.fired.get(name, ()):
        return None  # rule switched off since scheduling, or already fired
    detection = evaluator_for(rule)(rule, state, due, episode, ctx)
    if isinstance(rule, EngagementDropRule):
        _schedule_engagement_check(state, due // MS_PER_DAY + 1, rule)  # the next onset
    if detection is None:
        return None
    if rule.marks_at_risk and stage_as_of(state, due) in ACTIVE_BUYER_STAGES:
        record_timed_stage(state, due, AT_RISK, f"churn signal: {name}", book.lifecycle)
    last = state.last_fired.get(name)
    if last is not None and due - last < rule.cooldown_days * MS_PER_DAY:
        return None  # fired for this customer too recently
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


def _fire_stage_timer(
    state: CustomerState, due: int, name: str, episode: int, book: Rulebook
) -> None:
    if last_purchase_as_of(state, due) != episode:
        return  # a purchase ended this silence before it fell due
    if name == STAGE_LAPSED_TIMER:
        days = book.lifecycle.lapsed_after_days
        record_timed_stage(state, due, LAPSED, f"no purchase for {days} days", book.lifecycle)
    else:
        days = book.lifecycle.churned_after_days
        record_timed_stage(state, due, CHURNED, f"no purchase for {days} days", book.lifecycle)


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
