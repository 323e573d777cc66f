"""The pure engine step in a bare loop: validate + fold + lifecycle, no I/O.

    .venv/bin/python -m bench.engine_step [--customers 3000] [--days 365] [--repeat 3]

Generates a deterministic mixed history (purchases, page views, tickets,
profiles; ``tests.generators.generate_history``), encodes it as the wire
bytes storefronts send, and times, per event: ``decode_event`` (validation),
``process_event`` (fold, onsets, prune, reopen) on a state kept in a dict,
and ``encode_state`` (the table value), in event-time order, with the
moments due before each event fired as the backtest does. Prints events/s and
CPU µs per event for the whole step and for each part. No Kafka, no store:
this is the floor under the worker's per-event cost.
"""

from __future__ import annotations

import argparse
import time

import orjson

from agents.domain.customer_state import CustomerState
from agents.domain.driver import Driver
from agents.domain.state_codec import encode_state
from schemas.contract import EVENT_TYPES_BY_NAME
from schemas.timestamps import MS_PER_DAY
from schemas.validation import Rejection, decode_event
from streams.config import load_settings
from tests.generators import generate_history

START_MS = 1_735_689_600_000  # 2025-01-01T00:00:00Z


def wire(customers: int, days: int) -> list[tuple[str, bytes, bytes]]:
    events = generate_history(5, customers, START_MS, days)
    events.sort(key=lambda e: e["occurred_at"])
    return [(e["type"], str(e["customer_id"]).encode(), orjson.dumps(e)) for e in events]


def run(records: list[tuple[str, bytes, bytes]]) -> dict[str, float]:
    settings = load_settings(env={})
    engine = settings.engine_config()
    policy = settings.validation_policy()
    driver = Driver(engine)
    parts = {"decode": 0.0, "fold": 0.0, "fire": 0.0, "encode": 0.0}
    clock = time.thread_time
    now = START_MS + 400 * MS_PER_DAY
    started = clock()
    for etype, key, value in records:
        t0 = clock()
        event = decode_event(etype, key, value, now_ms=now, policy=policy)
        t1 = clock()
        parts["decode"] += t1 - t0
        if isinstance(event, Rejection):
            continue
        driver.fire(event.occurred_ms)
        t2 = clock()
        parts["fire"] += t2 - t1
        driver.share(driver.apply(event, horizon_ms=event.occurred_ms).co_purchases)
        t3 = clock()
        parts["fold"] += t3 - t2
        state: CustomerState = driver.states[event.customer_id]
        encode_state(state)
        parts["encode"] += clock() - t3
    parts["total"] = clock() - started
    return parts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=3000)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    assert set(EVENT_TYPES_BY_NAME) >= {"purchase", "page_view"}
    records = wire(args.customers, args.days)
    print(f"{len(records):,} events, {args.customers:,} customers, {args.days} days")
    for n in range(args.repeat):
        parts = run(records)
        total = parts["total"]
        detail = ", ".join(
            f"{k} {v / len(records) * 1e6:.1f}" for k, v in parts.items() if k != "total"
        )
        print(
            f"run {n + 1}: {len(records) / total:,.0f} events/s, "
            f"{total / len(records) * 1e6:.1f} CPU us/event ({detail} us)"
        )


if __name__ == "__main__":
    main()
