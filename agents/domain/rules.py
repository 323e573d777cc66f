"""What each rule decides, given a customer's state and a time. Pure.

Every rule is evaluated *as of* a due time ``due`` (epoch ms) for an
``episode`` (epoch ms; what it denotes is rule-specific, see
``agents.domain.rulebook``). An evaluator returns a :class:`Detection`
(the reason and the facts a marketer reads) or ``None`` (stay quiet). It does
not check enablement, once-per-episode or cooldown: ``agents.domain.lifecycle``
does that for every rule alike.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from agents.domain.co_purchase import CoPurchaseModel
from agents.domain.customer_state import CustomerState
from agents.domain.history import (
    category_counts_as_of,
    high_intent_views_between,
    last_purchase_as_of,
    median_gap_ms,
    open_trouble_tickets_as_of,
    previous_purchase,
    purchase_at,
    purchases_as_of,
    purchases_between,
    spend_as_of,
    tickets_opened_at,
    top_categories_as_of,
    trouble_tickets_opened,
)
from agents.domain.rulebook import (
    CancellationRequestRule,
    CrossSellRule,
    EngagementDropRule,
    HighIntentNoPurchaseRule,
    LapseRule,
    LoyalAtRiskRule,
    LoyalPromotionRule,
    PostPurchaseFollowUpRule,
    ReactivatedRule,
    Rulebook,
    RuleParams,
    SecondPurchaseNudgeRule,
    SupportTroubleRule,
)
from agents.domain.stages import is_loyal, is_reactivation, loyal_purchases
from schemas.timestamps import MS_PER_DAY, MS_PER_HOUR, iso


@dataclass(frozen=True)
class Detection:
    """A rule's decision to fire: a short human reason and the numbers behind it."""

    reason: str
    facts: dict[str, Any]


@dataclass(frozen=True)
class Context:
    """What evaluators read besides the customer: the rulebook and the shared model."""

    book: Rulebook
    co_purchases: CoPurchaseModel


Evaluator = Callable[[Any, CustomerState, int, int, Context], Detection | None]


def _days(ms: int) -> int:
    return ms // MS_PER_DAY


def _purchase_facts(state: CustomerState, purchase_ms: int, ctx: Context) -> dict[str, Any]:
    entry = purchase_at(state, purchase_ms)
    return {
        "order_id": entry[2] if entry else None,
        "purchased_at": iso(purchase_ms),
        "amount": entry[1] if entry else None,
        "currency": ctx.book.currency,
        "categories": list(entry[3]) if entry else [],
    }


def lapse(
    rule: LapseRule, state: CustomerState, due: int, episode: int, ctx: Context
) -> Detection | None:
    if last_purchase_as_of(state, due) != episode:
        return None  # a purchase ended this episode before the timer fell due
    spend = spend_as_of(state, due)
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
            "purchase_count": purchases_as_of(state, due),
            "last_order_at": last_order_at,
            "last_order_date": last_order_at[:10],
            "top_categories": top_categories_as_of(state, due),
        },
    )


def support_trouble(
    rule: SupportTroubleRule, state: CustomerState, due: int, episode: int, ctx: Context
) -> Detection | None:
    opened = trouble_tickets_opened(state, due - rule.window_days * MS_PER_DAY, due)
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
    rule: CancellationRequestRule, state: CustomerState, due: int, episode: int, ctx: Context
) -> Detection | None:
    tickets = tickets_opened_at(state, episode, "cancellation")
    if not tickets:
        return None
    last = last_purchase_as_of(state, due)
    return Detection(
        "Cancellation request opened",
        {
            "ticket_id": tickets[0],
            "opened_at": iso(episode),
            "lifetime_spend": spend_as_of(state, due),
            "currency": ctx.book.currency,
            "purchase_count": purchases_as_of(state, due),
            "days_since_purchase": None if last is None else _days(due - last),
        },
    )


@dataclass(frozen=True)
class EngagementWindow:
    """Page views around a check at UTC midnight (the start of day ``check_day``)."""

    recent_views: int
    baseline_views: int
    recent_weekly: float
    baseline_weekly: float

    def dropped(self, rule: EngagementDropRule) -> bool:
        return engagement_dropped(self.recent_weekly, self.baseline_weekly, rule)


def engagement_window(
    views: dict[int, int], check_day: int, rule: EngagementDropRule
) -> EngagementWindow:
    """Views in the ``recent_days`` complete days before ``check_day`` and in the
    ``baseline_weeks`` weeks before those, as totals and weekly averages."""
    recent_first = check_day - rule.recent_days
    base_first = recent_first - 7 * rule.baseline_weeks
    recent = sum(views.get(d, 0) for d in range(recent_first, check_day))
    baseline = sum(views.get(d, 0) for d in range(base_first, recent_first))
    return EngagementWindow(
        recent,
        baseline,
        round(recent * 7 / rule.recent_days, 6),
        round(baseline / rule.baseline_weeks, 6),
    )


def drop_starts(views: dict[int, int], day: int, rule: EngagementDropRule) -> bool:
    """Whether a drop shows at ``day``'s midnight and did not at the one before (the
    onset: one episode lasts as long as the drop does)."""
    return engagement_window(views, day, rule).dropped(rule) and not engagement_window(
        views, day - 1, rule
    ).dropped(rule)


def first_engagement_drop(
    views: dict[int, int], from_day: int, rule: EngagementDropRule
) -> int | None:
    """The first UTC day >= ``from_day`` at whose midnight a drop starts, assuming no
    views beyond those in ``views``; ``None`` if none can. O(days) with running sums."""
    if not views:
        return None
    recent_len, base_len = rule.recent_days, 7 * rule.baseline_weeks
    last = max(views) + recent_len + base_len + 1
    first = min(views)
    # prefix[i] = views on days first..first+i-1; window sums are differences.
    span = last - first + 1
    prefix = [0] * (span + 1)
    for i in range(span):
        prefix[i + 1] = prefix[i] + views.get(first + i, 0)

    def total(lo: int, hi: int) -> int:  # views on days lo..hi-1
        lo, hi = max(lo, first), min(hi, last + 1)
        return prefix[hi - first] - prefix[lo - first] if hi > lo else 0

    def dropped(day: int) -> bool:
        recent = total(day - recent_len, day) * 7 / recent_len
        baseline = total(day - recent_len - base_len, day - recent_len) / rule.baseline_weeks
        return engagement_dropped(round(recent, 6), round(baseline, 6), rule)

    previous = dropped(from_day - 1)
    for day in range(from_day, last + 1):
        now = dropped(day)
        if now and not previous:
            return day
        previous = now
    return None


def engagement_dropped(
    recent_weekly: float, baseline_weekly: float, rule: EngagementDropRule
) -> bool:
    """The drop condition on weekly view rates."""
    return (
        baseline_weekly >= rule.min_baseline_weekly_views
        and recent_weekly < rule.drop_ratio * baseline_weekly
    )


def engagement_drop(
    rule: EngagementDropRule, state: CustomerState, due: int, episode: int, ctx: Context
) -> Detection | None:
    check_day = due // MS_PER_DAY
    views = {d: v for d, v, _ in state.view_days if d < check_day}
    if not drop_starts(views, check_day, rule):
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
    rule: PostPurchaseFollowUpRule, state: CustomerState, due: int, episode: int, ctx: Context
) -> Detection | None:
    if purchase_at(state, episode) is None or purchases_between(state, episode, due):
        return None  # unknown purchase, or a newer one makes this follow-up moot
    if open_trouble_tickets_as_of(state, due):
        return None  # an open complaint: support talks to the customer first
    return Detection(
        f"Purchase {rule.days} days ago: ask how it went",
        {**_purchase_facts(state, episode, ctx), "days_after_purchase": rule.days},
    )


def second_purchase_nudge(
    rule: SecondPurchaseNudgeRule, state: CustomerState, due: int, episode: int, ctx: Context
) -> Detection | None:
    if previous_purchase(state, episode) is not None or purchases_as_of(state, due) != 1:
        return None
    if purchase_at(state, episode) is None and state.first_purchase_ms != episode:
        return None
    return Detection(
        f"First purchase {rule.days} days ago and no second one yet",
        {**_purchase_facts(state, episode, ctx), "days_since_first_purchase": rule.days},
    )


def loyal_promotion(
    rule: LoyalPromotionRule, state: CustomerState, due: int, episode: int, ctx: Context
) -> Detection | None:
    policy = ctx.book.lifecycle
    if not is_loyal(state, episode, policy) or is_reactivation(state, episode, policy):
        return None
    previous = previous_purchase(state, episode)
    if previous is not None and is_loyal(state, previous, policy):
        return None  # already loyal before this purchase
    memory = ctx.book.purchase_memory
    return Detection(
        f"Became loyal: {loyal_purchases(state, episode, policy, memory)} purchases in "
        f"{policy.loyal_window_days} days",
        {
            "purchases_in_window": loyal_purchases(state, episode, policy, memory),
            "window_days": policy.loyal_window_days,
            "min_purchases": policy.loyal_min_purchases,
            "lifetime_spend": spend_as_of(state, episode),
            "currency": ctx.book.currency,
            "purchased_at": iso(episode),
        },
    )


def loyal_at_risk_due(state: CustomerState, purchase_ms: int, rule: LoyalAtRiskRule) -> int | None:
    """When a loyal customer's silence after ``purchase_ms`` becomes a risk."""
    median = median_gap_ms(state, purchase_ms, rule.gap_sample)
    if median is None:
        return None
    allowed = max(rule.gap_multiplier * median, rule.min_gap_days * MS_PER_DAY)
    return purchase_ms + math.ceil(allowed)


def loyal_at_risk(
    rule: LoyalAtRiskRule, state: CustomerState, due: int, episode: int, ctx: Context
) -> Detection | None:
    if last_purchase_as_of(state, due) != episode or not is_loyal(
        state, episode, ctx.book.lifecycle
    ):
        return None
    if loyal_at_risk_due(state, episode, rule) != due:
        return None  # scheduled from a history that has changed since
    median = median_gap_ms(state, episode, rule.gap_sample)
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
                state, episode, ctx.book.lifecycle, ctx.book.purchase_memory
            ),
            "lifetime_spend": spend_as_of(state, due),
            "currency": ctx.book.currency,
        },
    )


def high_intent_burst(
    state: CustomerState, view_ms: int, rule: HighIntentNoPurchaseRule
) -> list[int]:
    """High-intent views in the ``window_hours`` ending at ``view_ms`` (inclusive)."""
    return high_intent_views_between(state, view_ms - rule.window_hours * MS_PER_HOUR, view_ms)


def high_intent_no_purchase(
    rule: HighIntentNoPurchaseRule, state: CustomerState, due: int, episode: int, ctx: Context
) -> Detection | None:
    burst = high_intent_burst(state, episode, rule)
    if len(burst) < rule.min_views or episode not in burst:
        return None
    if purchases_between(state, burst[0] - 1, due):
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
    rule: CrossSellRule, state: CustomerState, due: int, episode: int, ctx: Context
) -> Detection | None:
    entry = purchase_at(state, episode)
    if entry is None or not entry[3] or purchases_between(state, episode, due):
        return None
    owned = category_counts_as_of(state, due)
    picks = ctx.co_purchases.recommend(
        entry[3],
        owned,
        as_of_ms=due,
        limit=rule.max_recommendations,
        min_customers=rule.min_co_purchases,
    )
    if not picks:
        return None
    return Detection(
        "Customers who bought "
        + ", ".join(entry[3])
        + " also bought "
        + ", ".join(p["category"] for p in picks),
        {**_purchase_facts(state, episode, ctx), "recommendations": picks},
    )


def reactivated(
    rule: ReactivatedRule, state: CustomerState, due: int, episode: int, ctx: Context
) -> Detection | None:
    if purchase_at(state, episode) is None or not is_reactivation(
        state, episode, ctx.book.lifecycle
    ):
        return None
    previous = previous_purchase(state, episode)
    assert previous is not None
    return Detection(
        f"Back after {_days(episode - previous)} days without a purchase",
        {
            **_purchase_facts(state, episode, ctx),
            "days_since_previous_purchase": _days(episode - previous),
            "previous_order_at": iso(previous),
            "lifetime_spend": spend_as_of(state, episode),
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
