"""One step of the lifecycle engine: an event in, the customer's facts and moments out.

The Faust agents and the offline backtest both call :func:`process_event` and
:func:`agents.domain.lifecycle.fire_due` (through ``agents.domain.driver``),
so both paths run the same rules. Pure.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from agents.domain.co_purchase import Delta, pair_deltas
from agents.domain.customer_state import (
    CHANGED,
    CustomerState,
    Outcome,
    StateLimits,
    apply_event,
    category_first_times,
    prune,
)
from agents.domain.engagement import refresh_onsets, rule_key
from agents.domain.lifecycle import reopen
from agents.domain.rulebook import CrossSellRule, EngagementDropRule, Rulebook
from schemas.events import CustomerEvent, Purchase


@dataclass(frozen=True)
class EngineConfig:
    """Everything the pure engine needs from the configuration."""

    limits: StateLimits
    rates: Mapping[str, float]
    rules: Rulebook

    @property
    def shares_co_purchases(self) -> bool:
        """Whether customers' purchases feed the shared co-purchase model."""
        return self.rules.active(CrossSellRule.name) is not None

    @property
    def co_purchase_categories(self) -> int:
        """Rows the shared co-purchase model may hold."""
        rule = self.rules.rules.get(CrossSellRule.name)
        return rule.model_categories if isinstance(rule, CrossSellRule) else 1000


@dataclass(frozen=True)
class Step:
    """What :func:`process_event` did: the outcome, and how the customer's category
    pairs changed (for the shared co-purchase model)."""

    outcome: Outcome
    co_purchases: list[Delta] = field(default_factory=list)


def process_event(
    state: CustomerState,
    event: CustomerEvent,
    config: EngineConfig,
    *,
    horizon_ms: int | None = None,
) -> Step:
    """Fold ``event`` into ``state`` and reopen the moments it may change.

    ``horizon_ms``: the earliest time a moment may still be evaluated at (the
    partition's firing bound); windowed facts before their windows ending there
    are dropped. ``None``: the event's own time (time-ordered replays).
    """
    shares = config.shares_co_purchases and isinstance(event, Purchase)
    before = category_first_times(state) if shares else None
    outcome, moved, view_days = apply_event(state, event, limits=config.limits, rates=config.rates)
    if outcome not in CHANGED:
        return Step(outcome)
    state.version += 1
    engagement = config.rules.active(EngagementDropRule.name)
    if engagement is not None and (view_days or state.drop_key != rule_key(engagement)):
        refresh_onsets(state, engagement, view_days)
    prune(state, config.limits, event.occurred_ms if horizon_ms is None else horizon_ms)
    reopen(state, event.occurred_ms, config.rules)
    if before is None or not moved:
        return Step(outcome)
    return Step(outcome, pair_deltas(before, category_first_times(state), moved))
