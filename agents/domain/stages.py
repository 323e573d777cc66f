"""Lifecycle stages, derived from the customer's facts as of a time. Pure.

State machine (docs/lifecycle.md has the diagram)::

    prospect --first purchase--> new --2nd--> repeat --N in window--> loyal
    new/repeat/loyal/reactivated --churn signal--> at_risk
    any buyer stage --lapsed_after_days silent--> lapsed --churned_after_days--> churned
    any gap >= lapsed_after_days --purchase--> reactivated
    at_risk/reactivated --purchase--> new/repeat/loyal (by counts)

Nothing here is stored: :func:`stage_at` says what stage the customer was in at
any time from the facts, and :func:`stage_history` lists the changes. So the
stage and its history are a function of the events received, never of the
order they arrived in: a late earlier event rewrites what follows it.

At ``t``, with ``p`` the last purchase counting at ``t``: no purchase ->
``prospect``; ``t - p >= churned_after_days`` -> ``churned``; ``>=
lapsed_after_days`` -> ``lapsed``; a churn signal detected in ``(p, t]`` ->
``at_risk``; otherwise the stage the purchase at ``p`` put the customer in
(``reactivated`` after a long gap, ``loyal`` by the trailing count, else
``new``/``repeat``). A churn signal is the condition of an enabled rule
marked ``marks_at_risk`` holding at its due time (whether or not its trigger
was sent: cooldowns do not hide a signal).

History depth: the changes after the customer's newest
``max_recent_purchases`` orders began (all of them, for customers with fewer),
and churn signals whose evidence is still kept (tickets and page views older
than their windows cannot be re-examined, so a signal older than that is not
shown). Entries are ``[ms, stage, cause]``, oldest first, at most
``MAX_STAGE_HISTORY``.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass

from agents.domain.co_purchase import CoPurchaseModel
from agents.domain.customer_state import StateLimits
from agents.domain.history import last_purchase_as_of, previous_purchase, purchases_as_of
from agents.domain.moments import moments
from agents.domain.rulebook import (
    CancellationRequestRule,
    EngagementDropRule,
    LoyalAtRiskRule,
    Rulebook,
    SupportTroubleRule,
)
from agents.domain.rules import Context, Subject, evaluator_for, is_loyal, loyal_purchases
from schemas.timestamps import MS_PER_DAY

PROSPECT = "prospect"
NEW = "new"
REPEAT = "repeat"
LOYAL = "loyal"
AT_RISK = "at_risk"
LAPSED = "lapsed"
CHURNED = "churned"
REACTIVATED = "reactivated"
STAGES = (PROSPECT, NEW, REPEAT, LOYAL, AT_RISK, LAPSED, CHURNED, REACTIVATED)
#: Stages a churn signal can move to at_risk (prospects have nothing to lose yet;
#: lapsed and churned customers are already past it).
ACTIVE_BUYER_STAGES = frozenset({NEW, REPEAT, LOYAL, REACTIVATED})
MAX_STAGE_HISTORY = 16
_EMPTY_MODEL = CoPurchaseModel()


@dataclass(frozen=True)
class Stage:
    """A stage, why the customer is in it, and since when (epoch ms)."""

    stage: str
    cause: str
    since: int


def churn_signals(s: Subject, book: Rulebook, limits: StateLimits, as_of_ms: int) -> list[int]:
    """Times at or before ``as_of_ms`` at which an enabled churn-signal rule's condition
    held, within the windows whose evidence is kept as of ``as_of_ms``; sorted.
    ``s`` must hold what is :func:`~agents.domain.customer_state.retained` then."""
    ctx = Context(book, _EMPTY_MODEL)
    floors = _signal_floors(s, book, limits, as_of_ms)
    lo = min(floors.values(), default=as_of_ms + 1)
    found = []
    for due, name, episode in moments(s, book, lo, as_of_ms + 1):
        floor = floors.get(name)
        if floor is None or due < floor:
            continue
        rule = book.rules[name]
        if evaluator_for(rule)(rule, s, due, episode, ctx) is not None:
            found.append(due)
    return sorted(set(found))


def _signal_floors(
    s: Subject, book: Rulebook, limits: StateLimits, as_of_ms: int
) -> dict[str, int]:
    """Per churn-signal rule: the earliest due time whose evidence is fully kept."""
    floors: dict[str, int] = {}
    view_floor = as_of_ms - limits.page_view_window_days * MS_PER_DAY
    for rule in book.rules.values():
        if not (rule.enabled and rule.marks_at_risk):
            continue
        if isinstance(rule, SupportTroubleRule | CancellationRequestRule):
            floors[rule.name] = -(2**62)  # the tickets kept as of as_of_ms are the evidence
        elif isinstance(rule, EngagementDropRule):
            # A drop's onset needs the whole baseline before it: not at the window's edge.
            floors[rule.name] = view_floor + (rule.recent_days + 7 * rule.baseline_weeks + 1) * (
                MS_PER_DAY
            )
        elif isinstance(rule, LoyalAtRiskRule):
            # Its median gap needs the gap_sample orders before: complete unless older
            # orders are no longer remembered one by one.
            times = s.view.times
            if s.state.evicted_orders == 0:
                floors[rule.name] = -(2**62)
            else:
                floors[rule.name] = times[min(rule.gap_sample, len(times) - 1)]
    return floors


def purchase_stage(s: Subject, purchase_ms: int, book: Rulebook) -> Stage:
    """The stage a purchase at ``purchase_ms`` put the customer in."""
    policy = book.lifecycle
    previous = previous_purchase(s.view, s.state, purchase_ms)
    if previous is not None and purchase_ms - previous >= policy.lapsed_after_days * MS_PER_DAY:
        gap = (purchase_ms - previous) // MS_PER_DAY
        return Stage(REACTIVATED, f"purchase after {gap} days without one", purchase_ms)
    if is_loyal(s, purchase_ms, policy):
        n = loyal_purchases(s, purchase_ms, policy, book.purchase_memory)
        return Stage(LOYAL, f"{n} purchases in {policy.loyal_window_days} days", purchase_ms)
    count = purchases_as_of(s.view, s.state, purchase_ms)
    if count <= 1:
        return Stage(NEW, "first purchase", purchase_ms)
    return Stage(REPEAT, f"purchase #{count}", purchase_ms)


def stage_at(s: Subject, book: Rulebook, at_ms: int, signals: list[int]) -> Stage | None:
    """The customer's stage at ``at_ms`` (``None`` before their first event).
    ``signals``: :func:`churn_signals` as of a time at or after ``at_ms``."""
    state = s.state
    policy = book.lifecycle
    p = last_purchase_as_of(s.view, at_ms)
    if p is None and state.evicted_last_ms is not None and state.evicted_last_ms <= at_ms:
        p = state.evicted_last_ms
    if p is None:
        if state.first_seen_ms is None or state.first_seen_ms > at_ms:
            return None
        return Stage(PROSPECT, "first seen", state.first_seen_ms)
    churned = p + policy.churned_after_days * MS_PER_DAY
    if at_ms >= churned:
        return Stage(CHURNED, f"no purchase for {policy.churned_after_days} days", churned)
    lapsed = p + policy.lapsed_after_days * MS_PER_DAY
    if at_ms >= lapsed:
        return Stage(LAPSED, f"no purchase for {policy.lapsed_after_days} days", lapsed)
    i = bisect.bisect_right(signals, p)
    if i < len(signals) and signals[i] <= at_ms:
        return Stage(AT_RISK, "churn signal", signals[i])
    return purchase_stage(s, p, book)


def stage_history(
    s: Subject, book: Rulebook, limits: StateLimits, as_of_ms: int
) -> list[tuple[int, str, str]]:
    """The stage changes up to ``as_of_ms`` as ``(ms, stage, cause)``, oldest first."""
    state = s.state
    if state.first_seen_ms is None or state.first_seen_ms > as_of_ms:
        return []
    signals = churn_signals(s, book, limits, as_of_ms)
    causes = _signal_causes(s, book, limits, as_of_ms, signals)
    times = s.view.times
    depth = limits.max_recent_purchases
    truncated = state.evicted_orders > 0 or len(times) > depth
    start = times[max(0, len(times) - depth)] if truncated and times else state.first_seen_ms
    policy = book.lifecycle
    points = {start}
    for i, p in enumerate(times):
        if p < start or p > as_of_ms:
            continue
        points.add(p)
        points.add(p + policy.lapsed_after_days * MS_PER_DAY)
        points.add(p + policy.churned_after_days * MS_PER_DAY)
        end = s.view.ends[i]
        if end <= as_of_ms:
            points.add(end)
    points.update(t for t in signals if t >= start)
    history: list[tuple[int, str, str]] = []
    for t in sorted(points):
        if t > as_of_ms:
            break
        stage = stage_at(s, book, t, signals)
        if stage is None or (history and history[-1][1] == stage.stage):
            continue
        cause = stage.cause
        if stage.stage == AT_RISK:
            cause = causes.get(stage.since, cause)
        elif t in _refund_ends(s) and stage.since != t:
            cause = f"order refunded; {cause}"
        history.append((t, stage.stage, cause))
    return history[-MAX_STAGE_HISTORY:]


def _refund_ends(s: Subject) -> set[int]:
    return {e for e in s.view.ends if e < 2**62} if s.view.refunded else set()


def _signal_causes(
    s: Subject, book: Rulebook, limits: StateLimits, as_of_ms: int, signals: list[int]
) -> dict[int, str]:
    """Signal time -> ``churn signal: <rule>`` (the first rule by name at that time)."""
    if not signals:
        return {}
    ctx = Context(book, _EMPTY_MODEL)
    wanted = set(signals)
    causes: dict[int, str] = {}
    for due, name, episode in moments(s, book, signals[0], signals[-1] + 1):
        rule = book.rules.get(name)
        if due not in wanted or due in causes or rule is None or not rule.marks_at_risk:
            continue
        if evaluator_for(rule)(rule, s, due, episode, ctx) is not None:
            causes[due] = f"churn signal: {name}"
    return causes


def current_stage(
    s: Subject, book: Rulebook, limits: StateLimits, as_of_ms: int
) -> tuple[int, str, str]:
    """The newest entry of :func:`stage_history`, or the prospect entry of a customer
    not seen yet."""
    history = stage_history(s, book, limits, as_of_ms)
    return history[-1] if history else (as_of_ms, PROSPECT, "first seen")
