"""Run hand-written histories through the offline backtest (the same rules as the worker)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from agents.domain.backtest import BacktestReport, load_events, run_backtest
from agents.domain.customer_state import CustomerState, StateLimits
from agents.domain.customer_view import summarize
from agents.domain.engine import EngineConfig
from agents.domain.rulebook import Rulebook
from schemas.timestamps import MS_PER_DAY, MS_PER_HOUR, iso
from schemas.triggers import Trigger
from schemas.validation import parse_timestamp_ms
from tests.factories import POLICY

DAY0 = parse_timestamp_ms("2025-01-01T00:00:00Z")
RATES = {"JPY": 1.0, "USD": 150.0}


def at(day: float, hour: float = 0) -> str:
    """RFC 3339 time ``day`` days (and ``hour`` hours) after DAY0."""
    return iso(DAY0 + int(day * MS_PER_DAY) + int(hour * MS_PER_HOUR))


def config(rules: Rulebook) -> EngineConfig:
    return EngineConfig(limits=StateLimits(), rates=RATES, rules=rules)


@dataclass
class Derived:
    """What a test reads of a customer after a backtest: the stored state and the
    derived view as of the backtest's end."""

    state: CustomerState
    summary: dict[str, Any]

    @property
    def stage(self) -> str:
        return str(self.summary["stage"])

    @property
    def stage_history(self) -> list[list[Any]]:
        return [
            [parse_timestamp_ms(h["at"]), h["stage"], h["cause"]]
            for h in self.summary["stage_history"]
        ]

    @property
    def reactivations(self) -> int:
        return int(self.summary["reactivations"])


def backtest(
    events: list[dict[str, Any]],
    until_day: float,
    rules: Rulebook,
    *,
    states: dict[str, Any] | None = None,
) -> list[Trigger]:
    """Triggers the pipeline fires for ``events`` with event time moved to ``until_day``.
    ``states``, if given, is filled with a :class:`Derived` per customer."""
    lines = [orjson.dumps(e) for e in events]
    report = BacktestReport()
    loaded = load_events(lines, now_ms=DAY0 + 2000 * MS_PER_DAY, policy=POLICY, report=report)
    until = DAY0 + int(until_day * MS_PER_DAY)
    raw: dict[str, CustomerState] = {}
    engine = config(rules)
    triggers = list(run_backtest(loaded, engine, until_ms=until, report=report, states=raw))
    if states is not None:
        for customer_id, state in raw.items():
            states[customer_id] = Derived(state, summarize(state, until, engine))
    return triggers


def fired(triggers: list[Trigger]) -> list[tuple[str, str]]:
    return [(t.rule, t.due_at) for t in triggers]
