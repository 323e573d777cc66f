"""Lifecycle stages and the changes between them. Pure.

State machine (docs/lifecycle.md has the diagram)::

    prospect --first purchase--> new --2nd--> repeat --N in window--> loyal
    new/repeat/loyal/reactivated --churn signal--> at_risk
    any buyer stage --lapsed_after_days silent--> lapsed --churned_after_days--> churned
    lapsed/churned (or any gap >= lapsed_after_days) --purchase--> reactivated
    at_risk/reactivated --purchase--> new/repeat/loyal (by counts)

The current stage is the newest entry of ``stage_history`` (``[ms, stage,
cause]``, sorted by time). Entries are inserted at their event time, so a
late event lands where it belongs; a stage set by a timer (at_risk, lapsed,
churned) is followed again by the stage of the next purchase after it.
"""

from __future__ import annotations

from agents.domain.customer_state import CustomerState
from agents.domain.history import previous_purchase, purchases_as_of, purchases_between
from agents.domain.rulebook import LifecyclePolicy
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


def stage_as_of(state: CustomerState, as_of_ms: int) -> str:
    """The stage the customer was in at ``as_of_ms``."""
    stage = PROSPECT
    for at, entry_stage, _ in state.stage_history:
        if at > as_of_ms:
            break
        stage = entry_stage
    return stage


def loyal_purchases(
    state: CustomerState, as_of_ms: int, policy: LifecyclePolicy, memory: int | None = None
) -> int:
    """Purchases in the trailing ``loyal_window_days`` ending at ``as_of_ms`` (inclusive),
    among the newest ``memory`` (the state's purchase memory) at or before it."""
    since = as_of_ms - policy.loyal_window_days * MS_PER_DAY
    within = purchases_between(state, since, as_of_ms)
    return len(within) if memory is None else min(len(within), memory)


def is_loyal(state: CustomerState, as_of_ms: int, policy: LifecyclePolicy) -> bool:
    return loyal_purchases(state, as_of_ms, policy) >= policy.loyal_min_purchases


def is_reactivation(state: CustomerState, purchase_ms: int, policy: LifecyclePolicy) -> bool:
    """Whether the purchase at ``purchase_ms`` ended a silence of ``lapsed_after_days``."""
    previous = previous_purchase(state, purchase_ms)
    return previous is not None and purchase_ms - previous >= policy.lapsed_after_days * MS_PER_DAY


def stage_after_purchase(
    state: CustomerState, purchase_ms: int, policy: LifecyclePolicy
) -> tuple[str, str]:
    """(stage, cause) a purchase at ``purchase_ms`` puts the customer in."""
    if is_reactivation(state, purchase_ms, policy):
        previous = previous_purchase(state, purchase_ms)
        assert previous is not None
        gap = (purchase_ms - previous) // MS_PER_DAY
        return REACTIVATED, f"purchase after {gap} days without one"
    if is_loyal(state, purchase_ms, policy):
        n = loyal_purchases(state, purchase_ms, policy)
        return LOYAL, f"{n} purchases in {policy.loyal_window_days} days"
    count = purchases_as_of(state, purchase_ms)
    return (NEW, "first purchase") if count == 1 else (REPEAT, f"purchase #{count}")


def record_purchase_stage(state: CustomerState, purchase_ms: int, policy: LifecyclePolicy) -> None:
    record_stage(state, purchase_ms, *stage_after_purchase(state, purchase_ms, policy))


def record_timed_stage(
    state: CustomerState, at_ms: int, stage: str, cause: str, policy: LifecyclePolicy
) -> None:
    """Record a stage a timer or signal set at ``at_ms``; a purchase already known to
    come after it sets its own stage again (so the current stage stays right)."""
    if not record_stage(state, at_ms, stage, cause):
        return
    later = purchases_between(state, at_ms, 2**62)
    if later:
        record_purchase_stage(state, later[0][0], policy)
