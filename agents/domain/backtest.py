"""Offline replay of an event file through the same rules. Pure.

Two orders, one driver (:class:`agents.domain.driver.Driver`):

* **time order** (the default): valid events are processed in ``occurred_at``
  order (file order breaks ties); before an event at ``t`` every moment due
  strictly before ``t`` fires, in due order (customer id breaks ties),
  stamped with its due time; at the end the clock moves to ``until`` (default:
  the last event's time) and moments due at or before it fire. This is what
  an event-clock worker fires for the same events, byte for byte.
* **as received** (``--as-received``): events in the file's line order, as a
  worker receives them; the clock is the latest ``occurred_at`` seen so far,
  and moments due before it fire before the next event. The facts, and so
  every derived stage, count and date, equal the time-ordered run's; only the
  triggers already sent may differ.

Invalid events are counted by rejection code, as the worker would dead-letter
them; events after ``until`` are not processed (counted as ``after_until``).
The backtest runs on event time, like an event-clock worker: it has no wall
clock, so it never rejects an event as ``future_timestamp`` (``now_ms=None``,
the default); ``until`` is what bounds the time instead.
The same input gives byte-identical output.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import orjson

from agents.domain.customer_state import CustomerState
from agents.domain.driver import Driver
from agents.domain.engine import EngineConfig
from schemas.contract import EVENT_TYPES_BY_NAME
from schemas.events import CustomerEvent
from schemas.triggers import Trigger
from schemas.validation import Rejection, ValidationPolicy, decode_event


@dataclass
class BacktestReport:
    """What the backtest saw besides the triggers."""

    events: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    rejected: Counter[str] = field(default_factory=Counter)
    after_until: int = 0
    end_ms: int | None = None  # the clock at the end (the states are as of it)


def decode_lines(
    lines: Iterable[bytes],
    *,
    now_ms: int | None = None,
    policy: ValidationPolicy,
    report: BacktestReport,
) -> list[CustomerEvent]:
    """Decode JSON lines (each with a ``type``) exactly as the worker would, in file order.

    ``now_ms``: see :func:`schemas.validation.decode_event` (``None``: event time, no
    ``future_timestamp`` check).
    """
    decoded: list[CustomerEvent] = []
    for raw in lines:
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
        if not isinstance(etype, str) or etype not in EVENT_TYPES_BY_NAME:
            report.rejected["unroutable"] += 1
            continue
        customer = doc.get("customer_id")
        key = customer.encode() if isinstance(customer, str) and customer else None
        result = decode_event(etype, key, line, now_ms=now_ms, policy=policy)
        if isinstance(result, Rejection):
            report.rejected[result.code] += 1
            continue
        decoded.append(result)
    return decoded


def load_events(
    lines: Iterable[bytes],
    *,
    now_ms: int | None = None,
    policy: ValidationPolicy,
    report: BacktestReport,
) -> list[CustomerEvent]:
    """:func:`decode_lines`, sorted by event time (file order breaks ties)."""
    events = decode_lines(lines, now_ms=now_ms, policy=policy, report=report)
    order = sorted(range(len(events)), key=lambda i: (events[i].occurred_ms, i))
    return [events[i] for i in order]


def run_backtest(
    events: Iterable[CustomerEvent],
    config: EngineConfig,
    *,
    until_ms: int | None,
    report: BacktestReport,
    states: dict[str, CustomerState] | None = None,
    as_received: bool = False,
) -> Iterator[Trigger]:
    """Yield the triggers the pipeline would fire for ``events``: in time order
    (``events`` sorted by :func:`load_events`), or as received (file order).

    ``states`` (customer id -> state), if given, is filled in for inspection.
    """
    driver = Driver(config, states={} if states is None else states)
    clock: int | None = None
    for event in events:
        occurred = event.occurred_ms
        if until_ms is not None and occurred > until_ms:
            report.after_until += 1
            continue
        if as_received:
            if clock is not None:
                yield from driver.fire(clock, stepwise=True)
            horizon = clock
            clock = occurred if clock is None else max(clock, occurred)
        else:
            yield from driver.fire(occurred, stepwise=True)
            horizon = occurred
            clock = occurred
        step = driver.apply(event, horizon_ms=horizon)
        report.outcomes[step.outcome.value] += 1
        driver.share(step.co_purchases)
    end = until_ms if until_ms is not None else clock
    report.end_ms = end
    if end is not None:
        yield from driver.fire(end + 1, stepwise=True)
