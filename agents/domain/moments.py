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
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator

from agents.domain.history import openings, trouble_openings
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
from agents.domain.rules import Subject, engagement_onsets, is_loyal, loyal_at_risk_due
from schemas.timestamps import MS_PER_DAY, MS_PER_HOUR

STAGE_LAPSED = "stage:lapsed"
STAGE_CHURNED = "stage:churned"
Moment = tuple[int, str, int]  # (due ms, rule, episode ms)
_FAR = 2**62


def moments(s: Subject, book: Rulebook, lo: int, hi: int = _FAR) -> list[Moment]:
    """Every moment with ``lo <= due < hi``, sorted by (due, rule, episode)."""
    found: list[Moment] = []
    for rule in book.rules.values():
        if rule.enabled:
            found.extend(_rule_moments(s, rule, lo, hi, book))
    found.extend(_stage_moments(s, book, lo, hi))
    found.sort()
    return found


def next_due(s: Subject, book: Rulebook, after: int) -> int | None:
    """The earliest moment due at or after ``after``, or ``None``."""
    best = _FAR
    for rule in book.rules.values():
        if rule.enabled:
            for due, _, _ in _rule_moments(s, rule, after, best, book):
                best = due  # each rule lists its moments in due order
                break
    for due, _, _ in _stage_moments(s, book, after, best):
        best = due
        break
    return None if best == _FAR else best


def _stage_moments(s: Subject, book: Rulebook, lo: int, hi: int) -> Iterator[Moment]:
    policy = book.lifecycle
    lapsed = _after_each_order(s, STAGE_LAPSED, policy.lapsed_after_days * MS_PER_DAY, lo, hi)
    first = next(lapsed, None)
    churned = _after_each_order(s, STAGE_CHURNED, policy.churned_after_days * MS_PER_DAY, lo, hi)
    second = next(churned, None)
    # Merge the two ascending streams.
    while first is not None or second is not None:
        if second is None or (first is not None and first <= second):
            assert first is not None
            yield first
            first = next(lapsed, None)
        else:
            yield second
            second = next(churned, None)


def _rule_moments(
    s: Subject, rule: RuleParams, lo: int, hi: int, book: Rulebook
) -> Iterator[Moment]:
    """One rule's moments with ``lo <= due < hi``, in due order."""
    view, state = s.view, s.state
    times = view.times
    name = rule.name
    if isinstance(rule, LapseRule | PostPurchaseFollowUpRule):
        yield from _after_each_order(s, name, rule.days * MS_PER_DAY, lo, hi)
    elif isinstance(rule, CrossSellRule):
        for moment in _after_each_order(s, name, rule.days * MS_PER_DAY, lo, hi):
            order = view.orders[bisect.bisect_left(times, moment[2])]
            if order.categories:
                yield moment
    elif isinstance(rule, SecondPurchaseNudgeRule):
        if times and state.evicted_orders == 0:
            due = times[0] + rule.days * MS_PER_DAY
            after = times[1] if len(times) > 1 else None
            if lo <= due < hi and (after is None or after > due or view.refunded):
                yield due, name, times[0]
    elif isinstance(rule, LoyalPromotionRule | ReactivatedRule):
        for i in range(bisect.bisect_left(times, lo), bisect.bisect_left(times, hi)):
            if i == 0 or times[i - 1] != times[i]:
                yield times[i], name, times[i]
    elif isinstance(rule, LoyalAtRiskRule):
        yield from sorted(_loyal_at_risk_moments(s, rule, lo, hi, book))
    elif isinstance(rule, SupportTroubleRule):
        for at, _ in trouble_openings(state):
            if lo <= at < hi:
                yield at, name, at
    elif isinstance(rule, CancellationRequestRule):
        for at, _ in openings(state, "cancellation"):
            if lo <= at < hi:
                yield at, name, at
    elif isinstance(rule, HighIntentNoPurchaseRule):
        wait = rule.wait_hours * MS_PER_HOUR
        views = state.high_intent_ms
        for i in range(bisect.bisect_left(views, lo - wait), len(views)):
            due = views[i] + wait
            if due >= hi:
                break
            if i == 0 or views[i - 1] != views[i]:
                yield due, name, views[i]
    elif isinstance(rule, EngagementDropRule):
        yield from _engagement_moments(s, rule, lo, hi)


def _loyal_at_risk_moments(
    s: Subject, rule: LoyalAtRiskRule, lo: int, hi: int, book: Rulebook
) -> Iterator[Moment]:
    view = s.view
    times = view.times
    floor = rule.min_gap_days * MS_PER_DAY
    # An order followed by another one at or before ``lo`` has no moment left.
    first = 0 if view.refunded else max(0, bisect.bisect_right(times, lo) - 1)
    for i in range(first, bisect.bisect_left(times, hi)):
        p = times[i]
        nxt = times[i + 1] if i + 1 < len(times) else None
        if nxt is not None and nxt - p <= floor and not view.refunded:
            continue  # bought again before any silence could count
        if not is_loyal(s, p, book.lifecycle):
            continue
        due = loyal_at_risk_due(s, p, rule)
        if due is not None and lo <= due < hi and (nxt is None or nxt > due or view.refunded):
            yield due, rule.name, p


def _engagement_moments(s: Subject, rule: EngagementDropRule, lo: int, hi: int) -> Iterator[Moment]:
    days = s.state.view_days
    # A drop needs a baseline of min_baseline_weekly_views a week: skip quiet customers.
    if not days or sum(d[1] for d in days) < rule.min_baseline_weekly_views * rule.baseline_weeks:
        return
    first_day = -(-lo // MS_PER_DAY) if lo > -_FAR else days[0][0]
    last_day = -(-hi // MS_PER_DAY) if hi < _FAR else _FAR // MS_PER_DAY
    views = {d: v for d, v, _ in days}
    for day in engagement_onsets(views, first_day, last_day, rule):
        yield day * MS_PER_DAY, rule.name, day * MS_PER_DAY


def _after_each_order(s: Subject, name: str, delay: int, lo: int, hi: int) -> Iterator[Moment]:
    """``delay`` after each order, unless a newer order came first (with refunds, every
    order: a refund can make a newer order stop counting). In due order."""
    view = s.view
    times = view.times
    refunded = view.refunded
    n = len(times)
    start = bisect.bisect_left(times, lo - delay) if lo > -_FAR else 0
    for i in range(start, n):
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
        yield due, name, p
