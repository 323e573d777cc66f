"""One step of the lifecycle engine: an event in, the customer's state and timers out.

The Faust agents and the offline backtest both call :func:`process_event` and
:func:`agents.domain.lifecycle.fire_due_timers`, so both paths run the same
rules. Pure.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from agents.domain.co_purchase import Pair, new_pairs
from agents.domain.customer_state import CustomerState, Outcome, StateLimits, apply_event
from agents.domain.lifecycle import after_event
from agents.domain.rulebook import CrossSellRule, Rulebook
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


@dataclass(frozen=True)
class Step:
    """What :func:`process_event` did: the outcome, and the category pairs the
    customer newly co-purchased (for the shared co-purchase model)."""

    outcome: Outcome
    co_purchased: list[Pair] = field(default_factory=list)


def process_event(
    state: CustomerState,
    event: CustomerEvent,
    config: EngineConfig,
    *,
    horizon_ms: int | None = None,
) -> Step:
    """Fold ``event`` into ``state``, then update its lifecycle stage and timers.

    ``horizon_ms``: see :func:`agents.domain.customer_state.apply_event`.
    """
    before = set(state.categories) if isinstance(event, Purchase) else None
    outcome = apply_event(
        state, event, limits=config.limits, rates=config.rates, horizon_ms=horizon_ms
    )
    if outcome is not Outcome.APPLIED:
        return Step(outcome)
    after_event(state, event, config.rules)
    if before is None or not config.shares_co_purchases:
        return Step(outcome)
    return Step(outcome, new_pairs(before, state.categories))
