"""Rule moments: when each rule is due for a customer, derived from the facts. Pure.

A *moment* is ``(due_ms, rule, episode_ms)``: a time at which a rule must be
evaluated (as of that time) for one episode. Moments are not stored: they are
a function of the customer's facts, so they are bounded like the facts, they
are the same whatever order the events arrived in, and a late event simply
changes what the function says. The worker keeps only, per customer,
``evaluated_before`` (every moment due before it was evaluated) and the
earliest moment due at or after it (``next_due``, for its timer index).

This module lists candidates (a superset is harmless: an evaluator that finds
its condition false stays quiet); the obvious moot ones (a newer purchase came
before the due time, a customer who is not loyal) are left out so they cost no
wake-up. Two pseudo-rules, ``stage:lapsed`` and ``stage:churned``, mark when
the derived stage changes by the passage of time alone, so the read model is
rewritten then.

The rulebook is compiled once into a :class:`_Plan` (which rule reads which
facts, with what delay), so a customer's moments cost a few list searches.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache

from agents.domain.engagement import engagement_onsets, rule_key
from agents.domain.history import openings, trouble_openings
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
from agents.domain.rules import Subject, is_loyal, loyal_at_risk_due
from schemas.timestamps import MS_PER_DAY, MS_PER_HOUR

STAGE_LAPSED = "stage:lapsed"
STAGE_CHURNED = "stage:churned"
Moment = tuple[int, str, int]  # (due ms, rule, episode ms)
_FAR = 2**62


@dataclass(frozen=True)
class _Plan:
    """A rulebook compiled for moment search."""

    after_order: tuple[tuple[str, int, bool], ...]  # (name, delay ms, needs categories)
    at_order: tuple[str, ...]  # rules due at each purchase
    second_purchase: tuple[str, int] | None
    loyal_at_risk: LoyalAtRiskRule | None
    trouble: str | None
    cancellation: str | None
    high_intent: tuple[str, int] | None  # (name, wait ms)
    engagement: EngagementDropRule | None
    engagement_key: int  # its parameters' fingerprint (``rule_key``)
    lifecycle: LifecyclePolicy


@cache
def _compile(rules: tuple[RuleParams, ...], lifecycle: LifecyclePolicy) -> _Plan:
    after: list[tuple[str, int, bool]] = []
    at: list[str] = []
    second = at_risk = trouble = cancellation = intent = engagement = None
    for rule in rules:
        if not rule.enabled:
            continue
        if isinstance(rule, LapseRule | PostPurchaseFollowUpRule):
            after.append((rule.name, rule.days * MS_PER_DAY, False))
        elif isinstance(rule, CrossSellRule):
            after.append((rule.name, rule.days * MS_PER_DAY, True))
        elif isinstance(rule, SecondPurchaseNudgeRule):
            second = (rule.name, rule.days * MS_PER_DAY)
        elif isinstance(rule, LoyalPromotionRule | ReactivatedRule):
            at.append(rule.name)
        elif isinstance(rule, LoyalAtRiskRule):
            at_risk = rule
        elif isinstance(rule, SupportTroubleRule):
            trouble = rule.name
        elif isinstance(rule, CancellationRequestRule):
            cancellation = rule.name
        elif isinstance(rule, HighIntentNoPurchaseRule):
            intent = (rule.name, rule.wait_hours * MS_PER_HOUR)
        elif isinstance(rule, EngagementDropRule):
            engagement = rule
    after.append((STAGE_LAPSED, lifecycle.lapsed_after_days * MS_PER_DAY, False))
    after.append((STAGE_CHURNED, lifecycle.churned_after_days * MS_PER_DAY, False))
    return _Plan(
        tuple(after),
        tuple(at),
        second,
        at_risk,
        trouble,
        cancellation,
        intent,
        engagement,
        rule_key(engagement) if engagement is not None else 0,
        lifecycle,
    )


def plan_for(book: Rulebook) -> _Plan:
    """The compiled plan of ``book`` (kept on the book: a rulebook is immutable)."""
    plan = book.__dict__.get("_moment_plan")
    if plan is None:
        plan = _compile(tuple(book.rules.values()), book.lifecycle)
        object.__setattr__(book, "_moment_plan", plan)
    return plan


def moments(s: Subject, book: Rulebook, lo: int, hi: int = _FAR) -> list[Moment]:
    """Every moment with ``lo <= due < hi``, sorted by (due, rule, episode)."""
    plan = plan_for(book)
    view, state = s.view, s.state
    times = view.times
    found: list[Moment] = []
    for name, delay, needs_categories in plan.after_order:
        for i in _after_order_indices(s, delay, lo, hi):
            if not needs_categories or view.orders[i].categories:
                found.append((times[i] + delay, name, times[i]))
    if plan.at_order:
        for i in range(bisect.bisect_left(times, lo), bisect.bisect_left(times, hi)):
            if i == 0 or times[i - 1] != times[i]:
                found.extend((times[i], name, times[i]) for name in plan.at_order)
    if plan.second_purchase is not None:
        moment = _second_purchase(s, *plan.second_purchase)
        if moment is not None and lo <= moment[0] < hi:
            found.append(moment)
    if plan.loyal_at_risk is not None:
        found.extend(_loyal_at_risk(s, plan.loyal_at_risk, plan.lifecycle, lo, hi))
    if plan.trouble is not None and state.tickets:
        found.extend((at, plan.trouble, at) for at, _ in trouble_openings(state) if lo <= at < hi)
    if plan.cancellation is not None and state.tickets:
        found.extend(
            (at, plan.cancellation, at)
            for at, _ in openings(state, "cancellation")
            if lo <= at < hi
        )
    if plan.high_intent is not None and state.high_intent_ms:
        name, wait = plan.high_intent
        views = state.high_intent_ms
        for i in range(bisect.bisect_left(views, lo - wait), len(views)):
            due = views[i] + wait
            if due >= hi:
                break
            if i == 0 or views[i - 1] != views[i]:
                found.append((due, name, views[i]))
    if plan.engagement is not None and state.view_days:
        found.extend(_engagement(s, plan.engagement, plan.engagement_key, lo, hi))
    found.sort()
    return found


def next_due(s: Subject, book: Rulebook, after: int) -> int | None:
    """The earliest moment due at or after ``after``, or ``None``."""
    plan = plan_for(book)
    view, state = s.view, s.state
    times = view.times
    best = _FAR
    for _, delay, needs_categories in plan.after_order:
        for i in _after_order_indices(s, delay, after, best):
            if not needs_categories or view.orders[i].categories:
                best = times[i] + delay  # ascending: the first is this rule's earliest
                break
    if plan.at_order:
        i = bisect.bisect_left(times, after)
        if i < len(times):
            best = min(best, times[i])
    if plan.second_purchase is not None:
        moment = _second_purchase(s, *plan.second_purchase)
        if moment is not None and after <= moment[0] < best:
            best = moment[0]
    if plan.loyal_at_risk is not None:
        for due, _, _ in _loyal_at_risk(s, plan.loyal_at_risk, plan.lifecycle, after, best):
            best = min(best, due)
    if state.tickets and (plan.trouble is not None or plan.cancellation is not None):
        for name, found in (
            (plan.trouble, trouble_openings),
            (plan.cancellation, lambda st: openings(st, "cancellation")),
        ):
            if name is not None:
                for at, _ in found(state):
                    if after <= at < best:
                        best = at
                        break
    if plan.high_intent is not None and state.high_intent_ms:
        _, wait = plan.high_intent
        views = state.high_intent_ms
        i = bisect.bisect_left(views, after - wait)
        if i < len(views):
            best = min(best, views[i] + wait)
    if plan.engagement is not None and state.view_days:
        for due, _, _ in _engagement(s, plan.engagement, plan.engagement_key, after, best):
            best = due
            break
    return None if best == _FAR else best


def _after_order_indices(s: Subject, delay: int, lo: int, hi: int) -> Iterator[int]:
    """Indices of orders whose ``delay`` falls in ``[lo, hi)`` before a newer order
    came (with refunds, every order: a refund can make a newer one stop counting);
    ascending, lazily (:func:`next_due` reads only the first)."""
    view = s.view
    times = view.times
    n = len(times)
    refunded = view.refunded
    for i in range(bisect.bisect_left(times, lo - delay) if lo > -_FAR else 0, n):
        p = times[i]
        due = p + delay
        if due >= hi:
            break
        if i > 0 and times[i - 1] == p:
            continue
        if not refunded:
            j = i + 1
            while j < n and times[j] == p:
                j += 1
            if j < n and times[j] <= due:
                continue
        yield i


def _second_purchase(s: Subject, name: str, delay: int) -> Moment | None:
    view = s.view
    times = view.times
    if not times or s.state.evicted_orders:
        return None
    due = times[0] + delay
    if len(times) > 1 and times[1] <= due and not view.refunded:
        return None
    return due, name, times[0]


def _loyal_at_risk(
    s: Subject, rule: LoyalAtRiskRule, lifecycle: LifecyclePolicy, lo: int, hi: int
) -> list[Moment]:
    view = s.view
    times = view.times
    floor = rule.min_gap_days * MS_PER_DAY
    found = []
    # An order followed by another one at or before ``lo`` has no moment left.
    first = 0 if view.refunded else max(0, bisect.bisect_right(times, lo) - 1)
    for i in range(first, bisect.bisect_left(times, hi)):
        p = times[i]
        nxt = times[i + 1] if i + 1 < len(times) else None
        if nxt is not None and nxt - p <= floor and not view.refunded:
            continue  # bought again before any silence could count
        if p + floor >= hi or not is_loyal(s, p, lifecycle):
            continue
        due = loyal_at_risk_due(s, p, rule)
        if due is not None and lo <= due < hi and (nxt is None or nxt > due or view.refunded):
            found.append((due, rule.name, p))
    found.sort()
    return found


def _engagement(s: Subject, rule: EngagementDropRule, key: int, lo: int, hi: int) -> list[Moment]:
    state = s.state
    onsets = state.drop_onsets
    if state.drop_key != key:  # derived with other parameters: derive afresh
        views = {d: v for d, v, _ in state.view_days}
        onsets = engagement_onsets(views, -(2**40), 2**40, rule)
    found = []
    for day in onsets[bisect.bisect_left(onsets, -(-lo // MS_PER_DAY)) if lo > -_FAR else 0 :]:
        due = day * MS_PER_DAY
        if due >= hi:
            break
        found.append((due, rule.name, due))
    return found
