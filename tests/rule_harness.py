"""Run hand-written histories through the offline backtest (the same rules as the worker)."""

from __future__ import annotations

from typing import Any

import orjson

from agents.domain.backtest import BacktestReport, load_events, run_backtest
from agents.domain.customer_state import CustomerState, StateLimits
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


def backtest(
    events: list[dict[str, Any]],
    until_day: float,
    rules: Rulebook,
    *,
    states: dict[str, CustomerState] | None = None,
) -> list[Trigger]:
    """Triggers the pipeline fires for ``events`` with event time moved to ``until_day``."""
    lines = [orjson.dumps(e) for e in events]
    report = BacktestReport()
    loaded = load_events(lines, now_ms=DAY0 + 2000 * MS_PER_DAY, policy=POLICY, report=report)
    until = DAY0 + int(until_day * MS_PER_DAY)
    return list(run_backtest(loaded, config(rules), until_ms=until, report=report, states=states))


def fired(triggers: list[Trigger]) -> list[tuple[str, str]]:
    return [(t.rule, t.due_at) for t in triggers]
