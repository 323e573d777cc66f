"""Offline replay of an event file through the same rules, on the event clock. Pure.

Semantics (the Kafka path in event mode gives the same trigger ids):

* valid events are processed in ``occurred_at`` order (file order breaks ties);
  invalid ones are counted by rejection code, as the worker would dead-letter them;
* before an event at time ``t`` is applied, every timer due strictly before
  ``t`` fires, in due order (customer id breaks ties), stamped with its due time;
* at the end the clock advances to ``until`` (default: the last event's time):
  timers due at or before it fire. Events after ``until`` are not processed
  (counted as ``after_until``).

The same input gives byte-identical output.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import orjson

from agents.domain.co_purchase import CoPurchaseModel
from agents.domain.customer_state import CustomerState
from agents.domain.engine import EngineConfig, process_event
from agents.domain.lifecycle import fire_due_timers, next_due
from agents.domain.timer_index import TimerIndex
from schemas.contract import EVENT_TYPES_BY_NAME
from schemas.events import CustomerEvent
from schemas.timestamps import to_ms
from schemas.triggers import Trigger
from schemas.validation import Rejection, ValidationPolicy, decode_event

_ONE_PARTITION = 0


@dataclass
class BacktestReport:
    """What the backtest saw besides the triggers."""

    events: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    rejected: Counter[str] = field(default_factory=Counter)
    after_until: int = 0


def load_events(
    lines: Iterable[bytes], *, now_ms: int, policy: ValidationPolicy, report: BacktestReport
) -> list[CustomerEvent]:
    """Decode JSON lines (each with a ``type``) exactly as the worker would; sort by time."""
    decoded: list[tuple[int, int, CustomerEvent]] = []
    for line_no, raw in enumerate(lines):
        line = raw.strip()
        if not line:
            continue
        report.events += 1
        try:
            doc = orjson.loads(line)
        except orjson.JSONDecodeError:
            report.rejected["unroutable"] += 1
            continue
        etype = doc.get("type") if isinstance(doc, dict) else None
        if etype not in EVENT_TYPES_BY_NAME:
            report.rejected["unroutable"] += 1
            continue
        customer = doc.get("customer_id")
        key = customer.encode() if isinstance(customer, str) and customer else None
        result = decode_event(etype, key, line, now_ms=now_ms, policy=policy)
        if isinstance(result, Rejection):
            report.rejected[result.code] += 1
            continue
        decoded.append((to_ms(result.occurred_at), line_no, result))
    decoded.sort(key=lambda item: (item[0], item[1]))
    return [event for _, _, event in decoded]


def run_backtest(
    events: Iterable[CustomerEvent],
    config: EngineConfig,
    *,
    until_ms: int | None,
    report: BacktestReport,
    states: dict[str, CustomerState] | None = None,
) -> Iterator[Trigger]:
    """Yield the triggers the pipeline would fire for time-ordered ``events``.

    ``states`` (customer id -> state), if given, is filled in for inspection.
    """
    states = {} if states is None else states
    index = TimerIndex()
    co_purchases = CoPurchaseModel()

    def fire_before(bound: int) -> Iterator[Trigger]:
        while (due := index.next_due(_ONE_PARTITION)) is not None and due < bound:
            for customer_id in index.pop_due(_ONE_PARTITION, due + 1):
                state = states[customer_id]
                yield from fire_due_timers(
                    state, before_ms=due + 1, book=config.rules, co_purchases=co_purchases
                )
                index.schedule(_ONE_PARTITION, customer_id, next_due(state))
        co_purchases.fold(bound)

    last_ms: int | None = None
    for event in events:
        occurred = to_ms(event.occurred_at)
        if until_ms is not None and occurred > until_ms:
            report.after_until += 1
            continue
        yield from fire_before(occurred)
        last_ms = occurred
        state = states.get(event.customer_id)
        if state is None:
            state = states[event.customer_id] = CustomerState(event.customer_id)
        step = process_event(state, event, config, horizon_ms=occurred)
        report.outcomes[step.outcome.value] += 1
        co_purchases.add(occurred, step.co_purchased)
        index.schedule(_ONE_PARTITION, event.customer_id, next_due(state))
    end = until_ms if until_ms is not None else last_ms
    if end is not None:
        yield from fire_before(end + 1)
