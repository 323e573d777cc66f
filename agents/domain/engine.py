"""One step of the lifecycle engine: an event in, the customer's state and timers out.

The Faust agents and the offline backtest both call :func:`process_event` and
:func:`agents.domain.lifecycle.fire_due_timers`, so both paths run the same
rules. Pure.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from agents.domain.customer_state import CustomerState, Outcome, StateLimits, apply_event
from agents.domain.lifecycle import Rulebook, after_event
from schemas.events import CustomerEvent, Purchase
from schemas.timestamps import to_ms


@dataclass(frozen=True)
class EngineConfig:
    """Everything the pure engine needs from the configuration."""

    limits: StateLimits
    rates: Mapping[str, float]
    rules: Rulebook


def process_event(state: CustomerState, event: CustomerEvent, config: EngineConfig) -> Outcome:
    """Fold ``event`` into ``state``, then update its lifecycle stage and timers."""
    outcome = apply_event(state, event, limits=config.limits, rates=config.rates)
    if outcome is Outcome.APPLIED:
        after_event(state, to_ms(event.occurred_at), isinstance(event, Purchase), config.rules)
    return outcome
