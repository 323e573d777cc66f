"""What each rule decides, given a customer's facts and a time. Pure.

Every rule is evaluated *as of* a due time ``due`` (epoch ms) for an
``episode`` (epoch ms; what it denotes is rule-specific, see
``agents.domain.rulebook``). An evaluator returns a :class:`Detection`
(the reason and the facts a marketer reads) or ``None`` (stay quiet). It does
not check enablement, once-per-episode or cooldown: ``agents.domain.lifecycle``
does that for every rule alike. Which (due, episode) pairs exist for a rule
is ``agents.domain.moments``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from agents.domain.co_purchase import CoPurchaseModel
from agents.domain.customer_state import CustomerState
from agents.domain.engagement import drop_starts, engagement_window
from agents.domain.history import (
    Purchases,
    category_counts_as_of,
    high_intent_views_between,
    last_purchase_as_of,
    median_gap_ms,
    open_trouble_tickets_as_of,
    openings,
    order_at,
    orders_between,
    previous_purchase,
    purchases,
    purchases_as_of,
    spend_as_of,
    top_categories_as_of,
    trouble_tickets_opened,
)
from agents.domain.rulebook import (
    CancellationRequestRule,
    CrossSellRule,
    EngagementDropRule,
    HighIntentNoPurchaseRule,
    LapseRule,
    LifecyclePolicy,
    LoyalAtRiskRule,
    LoyalPromotionRule,
    PostPurchaseFollowUpRule,
    ReactivatedRule,
    Rulebook,
    RuleParams,
    SecondPurchaseNudgeRule,
    SupportTroubleRule,
)
from schemas.timestamps import MS_PER_DAY, MS_PER_HOUR, iso


@dataclass(frozen=True)
class Detection:
    """A rule's decision to fire: a short human reason and the numbers behind it."""

    reason: str
    facts: dict[str, Any]


@dataclass
class Subject:
    """One customer being evaluated: the state and its purchase view (built once)."""

    state: CustomerState
    view: Purchases = field(init=False)

    def __post_init__(self) -> None:
        self.view = purchases(self.state)

    def refresh(self) -> None:
        self.view = purchases(self.state)


@dataclass(frozen=True)
class Context:
    """What evaluators read besides the customer: the rulebook and the shared model."""

    book: Rulebook
    co_purchases: CoPurchaseModel


Evaluator = Callable[[Any, Subject, int, int, Context], Detection | None]


def _days(ms: int) -> int:
    return ms // MS_PER_DAY


# --- purchase-based facts shared by rules and stages ---------------------------


def loyal_purchases(
    s: Subject, as_of_ms: int, policy: LifecyclePolicy, memory: int | None = None
) -> int:
    """Counting purchases in the trailing ``loyal_window_days`` ending at ``as_of_ms``
    (inclusive); at most ``memory`` when given (the count a marketer reads)."""
    since = as_of_ms - policy.loyal_window_days * MS_PER_DAY
    within = len(orders_between(s.view, since, as_of_ms))
    state = s.state
    if state.evicted_last_ms is not None and state.evicted_last_ms > since:
        within += 1  # the newest order older than those remembered (the others: unknown)
    return within if memory is None else min(within, memory)


def is_loyal(s: Subject, as_of_ms: int, policy: LifecyclePolicy) -> bool:
    return loyal_purchases(s, as_of_ms, policy) >= policy.loyal_min_purchases


def is_reactivation(s: Subject, purchase_ms: int, policy: LifecyclePolicy) -> bool:
    """Whether the purchase at ``purchase_ms`` ended a silence of ``lapsed_after_days``."""
    previous = previous_purchase(s.view, s.state, purchase_ms)
    return previous is not None and purchase_ms - previous >= policy.lapsed_after_days * MS_PER_DAY


def _purchase_facts(s: Subject, purchase_ms: int, ctx: Context) -> dict[str, Any]:
    entry = order_at(s.view, purchase_ms)
    return {
        "order_id": entry.order_id if entry else None,
        "purchased_at": iso(purchase_ms),
        "amount": entry.amount if entry else None,
        "currency": ctx.book.currency,
        "categories": list(entry.categories or ()) if entry else [],
    }


# --- evaluators -----------------------------------------------------------------


def lapse(rule: LapseRule, s: Subject, due: int, episode: int, ctx: Context) -> Detection | None:
    if last_purchase_as_of(s.view, due) != episode:
        return None  # a purchase ended this episode before the timer fell due
    spend = spend_as_of(s.view, s.state, due)
    if spend < rule.min_lifetime_spend:
        return None
    currency = ctx.book.currency
    last_order_at = iso(episode)
    return Detection(
        f"No purchase for {rule.days} days after spending {spend:,.0f} {currency} "
        f"(threshold {rule.min_lifetime_spend:,.0f})",
        {
            "days_since_purchase": _days(due - episode),
            "lifetime_spend": spend,
            "min_lifetime_spend": rule.min_lifetime_spend,
            "currency": currency,
            "purchase_count": purchases_as_of(s.view, s.state, due),
            "last_order_at": last_order_at,
            "last_order_date": last_order_at[:10],
            "top_categories": top_categories_as_of(s.state, s.view, due),
        },
    )


def support_trouble(
    rule: SupportTroubleRule, s: Subject, due: int, episode: int, ctx: Context
) -> Detection | None:
    opened = trouble_tickets_opened(s.state, due - rule.window_days * MS_PER_DAY, due)
    if len(opened) < rule.min_tickets or not any(at == episode for at, _ in opened):
        return None
    return Detection(
        f"{len(opened)} trouble/complaint tickets in {rule.window_days} days "
        f"(threshold {rule.min_tickets})",
        {
            "tickets_in_window": len(opened),
            "min_tickets": rule.min_tickets,
            "window_days": rule.window_days,
            "ticket_ids": [tid for _, tid in opened],
            "first_opened_at": iso(opened[0][0]),
            "last_opened_at": iso(opened[-1][0]),
        },
    )


def cancellation_request(
    rule: CancellationRequestRule, s: Subject, due: int, episode: int, ctx: Context
) -> Detection | None:
    tickets = [tid for at, tid in openings(s.state, "cancellation") if at == episode]
    if not tickets:
        return None
    last = last_purchase_as_of(s.view, due)
    return Detection(
        "Cancellation request opened",
        {
            "ticket_id": tickets[0],
            "opened_at": iso(episode),
            "lifetime_spend": spend_as_of(s.view, s.state, due),
            "currency": ctx.book.currency,
            "purchase_count": purchases_as_of(s.view, s.state, due),
            "days_since_purchase": None if last is None else _days(due - last),
        },
    )


def engagement_drop(
    rule: EngagementDropRule, s: Subject, due: int, episode: int, ctx: Context
) -> Detection | None:
    check_day = due // MS_PER_DAY
    views = {d: v for d, v, _ in s.state.view_days if d < check_day}
    if due % MS_PER_DAY or not drop_starts(views, check_day, rule):
        return None
    window = engagement_window(views, check_day, rule)
    drop = 1 - window.recent_weekly / window.baseline_weekly
    return Detection(
        f"Page views fell {drop:.0%} to {window.recent_weekly:g}/week over {rule.recent_days} "
        f"days from a {window.baseline_weekly:g}/week baseline",
        {
            "recent_days": rule.recent_days,
            "recent_views": window.recent_views,
            "recent_weekly_views": window.recent_weekly,
            "baseline_weeks": rule.baseline_weeks,
            "baseline_views": window.baseline_views,
            "baseline_weekly_views": window.baseline_weekly,
            "drop": round(drop, 4),
            "drop_ratio_threshold": rule.drop_ratio,
            "checked_at": iso(due),
        },
    )


def follow_up(
    rule: PostPurchaseFollowUpRule, s: Subject, due: int, episode: int, ctx: Context
) -> Detection | None:
    if last_purchase_as_of(s.view, due) != episode or order_at(s.view, episode) is None:
        return None  # unknown purchase, or a newer one makes this follow-up moot
    if open_trouble_tickets_as_of(s.state, due):
        return None  # an open complaint: support talks to the customer first
    return Detection(
        f"Purchase {rule.days} days ago: ask how it went",
        {**_purchase_facts(s, episode, ctx), "days_after_purchase": rule.days},
    )


def second_purchase_nudge(
    rule: SecondPurchaseNudgeRule, s: Subject, due: int, episode: int, ctx: Context
) -> Detection | None:
    if previous_purchase(s.view, s.state, episode) is not None:
        return None
    if purchases_as_of(s.view, s.state, due) != 1 or last_purchase_as_of(s.view, due) != episode:
        return None
    return Detection(
        f"First purchase {rule.days} days ago and no second one yet",
        {**_purchase_facts(s, episode, ctx), "days_since_first_purchase": rule.days},
    )


def loyal_promotion(
    rule: LoyalPromotionRule, s: Subject, due: int, episode: int, ctx: Context
) -> Detection | None:
    policy = ctx.book.lifecycle
    if last_purchase_as_of(s.view, episode) != episode:
        return None
    if not is_loyal(s, episode, policy) or is_reactivation(s, episode, policy):
        return None
    previous = previous_purchase(s.view, s.state, episode)
    if previous is not None and is_loyal(s, previous, policy):
        return None  # already loyal before this purchase
    memory = ctx.book.purchase_memory
    return Detection(
        f"Became loyal: {loyal_purchases(s, episode, policy, memory)} purchases in "
        f"{policy.loyal_window_days} days",
        {
            "purchases_in_window": loyal_purchases(s, episode, policy, memory),
            "window_days": policy.loyal_window_days,
            "min_purchases": policy.loyal_min_purchases,
            "lifetime_spend": spend_as_of(s.view, s.state, episode),
            "currency": ctx.book.currency,
            "purchased_at": iso(episode),
        },
    )


def loyal_at_risk_due(s: Subject, purchase_ms: int, rule: LoyalAtRiskRule) -> int | None:
    """When a loyal customer's silence after ``purchase_ms`` becomes a risk."""
    median = median_gap_ms(s.view, purchase_ms, rule.gap_sample)
    if median is None:
        return None
    allowed = max(rule.gap_multiplier * median, rule.min_gap_days * MS_PER_DAY)
    return purchase_ms + math.ceil(allowed)


def loyal_at_risk(
    rule: LoyalAtRiskRule, s: Subject, due: int, episode: int, ctx: Context
) -> Detection | None:
    if last_purchase_as_of(s.view, due) != episode or not is_loyal(s, episode, ctx.book.lifecycle):
        return None
    if loyal_at_risk_due(s, episode, rule) != due:
        return None  # scheduled from a history that has changed since
    median = median_gap_ms(s.view, episode, rule.gap_sample)
    assert median is not None
    median_days = round(median / MS_PER_DAY, 2)
    return Detection(
        f"Loyal customer silent {_days(due - episode)} days, over {rule.gap_multiplier:g}x "
        f"their usual {median_days:g}-day gap",
        {
            "days_since_purchase": _days(due - episode),
            "median_gap_days": median_days,
            "gap_multiplier": rule.gap_multiplier,
            "last_order_at": iso(episode),
            "purchases_in_window": loyal_purchases(
                s, episode, ctx.book.lifecycle, ctx.book.purchase_memory
            ),
            "lifetime_spend": spend_as_of(s.view, s.state, due),
            "currency": ctx.book.currency,
        },
    )


def high_intent_burst(s: Subject, view_ms: int, rule: HighIntentNoPurchaseRule) -> list[int]:
    """High-intent views in the ``window_hours`` ending at ``view_ms`` (inclusive)."""
    return high_intent_views_between(s.state, view_ms - rule.window_hours * MS_PER_HOUR, view_ms)


def high_intent_no_purchase(
    rule: HighIntentNoPurchaseRule, s: Subject, due: int, episode: int, ctx: Context
) -> Detection | None:
    burst = high_intent_burst(s, episode, rule)
    if len(burst) < rule.min_views or episode not in burst:
        return None
    if due != episode + rule.wait_hours * MS_PER_HOUR:
        return None
    if orders_between(s.view, burst[0] - 1, due):
        return None  # they bought
    return Detection(
        f"{len(burst)} cart/checkout/pricing views within {rule.window_hours} h "
        f"and no purchase {rule.wait_hours} h later",
        {
            "high_intent_views": len(burst),
            "min_views": rule.min_views,
            "window_hours": rule.window_hours,
            "first_view_at": iso(burst[0]),
            "last_view_at": iso(burst[-1]),
            "hours_without_purchase": rule.wait_hours,
        },
    )


def cross_sell(
    rule: CrossSellRule, s: Subject, due: int, episode: int, ctx: Context
) -> Detection | None:
    entry = order_at(s.view, episode)
    if entry is None or not entry.categories or last_purchase_as_of(s.view, due) != episode:
        return None
    owned = category_counts_as_of(s.state, s.view, due)
    picks = ctx.co_purchases.recommend(
        entry.categories,
        owned,
        as_of_ms=due,
        limit=rule.max_recommendations,
        min_customers=rule.min_co_purchases,
    )
    if not picks:
        return None
    return Detection(
        "Customers who bought "
        + ", ".join(entry.categories)
        + " also bought "
        + ", ".join(p["category"] for p in picks),
        {**_purchase_facts(s, episode, ctx), "recommendations": picks},
    )


def reactivated(
    rule: ReactivatedRule, s: Subject, due: int, episode: int, ctx: Context
) -> Detection | None:
    if last_purchase_as_of(s.view, episode) != episode:
        return None
    if order_at(s.view, episode) is None or not is_reactivation(s, episode, ctx.book.lifecycle):
        return None
    previous = previous_purchase(s.view, s.state, episode)
    assert previous is not None
    return Detection(
        f"Back after {_days(episode - previous)} days without a purchase",
        {
            **_purchase_facts(s, episode, ctx),
            "days_since_previous_purchase": _days(episode - previous),
            "previous_order_at": iso(previous),
            "lifetime_spend": spend_as_of(s.view, s.state, episode),
        },
    )


EVALUATORS: dict[type[RuleParams], Evaluator] = {
    LapseRule: lapse,
    SupportTroubleRule: support_trouble,
    CancellationRequestRule: cancellation_request,
    EngagementDropRule: engagement_drop,
    PostPurchaseFollowUpRule: follow_up,
    SecondPurchaseNudgeRule: second_purchase_nudge,
    LoyalPromotionRule: loyal_promotion,
    LoyalAtRiskRule: loyal_at_risk,
    HighIntentNoPurchaseRule: high_intent_no_purchase,
    CrossSellRule: cross_sell,
    ReactivatedRule: reactivated,
}


def evaluator_for(rule: RuleParams) -> Evaluator:
    """The evaluator of ``rule``'s type (a subclass uses its base's)."""
    for cls in type(rule).__mro__:
        if cls in EVALUATORS:
            return EVALUATORS[cls]
    raise KeyError(f"no evaluator for rule {rule.name}")
