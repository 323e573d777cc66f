"""Baseline: the same ingest work in a bare aiokafka loop, without Faust.

    .venv/bin/python -m bench.raw_baseline --topic <prefix>purchases --messages 200000

Consumes ``--messages`` purchase events from ``--topic`` (from the start, no
consumer group), and for each one does what the worker does in pure Python:
validate, fold into a customer state kept in a dict, encode the state (the
table value). No table, no changelog, no Redis. The gap to the worker's ingest rate
is what Faust's tables, changelog and acking cost on this machine.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time

from aiokafka import AIOKafkaConsumer

from agents.domain.customer_state import CustomerState
from agents.domain.engine import process_event
from agents.domain.state_codec import encode_state
from schemas.validation import Rejection, ValidationPolicy, decode_event
from streams.config import load_settings


async def main(topic: str, messages: int) -> None:
    settings = load_settings(env=os.environ)
    engine = settings.engine_config()
    policy = ValidationPolicy(
        max_future_ms=10**13, currencies=frozenset(settings.currency.all_rates())
    )
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=settings.bootstrap_servers,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        group_id=None,
        max_poll_records=2000,
    )
    await consumer.start()
    states: dict[str, CustomerState] = {}
    seen = 0
    started = time.monotonic()
    try:
        while seen < messages:
            batch = await consumer.getmany(timeout_ms=1000)
            if not batch and time.monotonic() - started > 60 and seen == 0:
                break
            for records in batch.values():
                for msg in records:
                    if msg.headers:
                        continue  # clock ticks
                    event = decode_event("purchase", msg.key, msg.value, now_ms=0, policy=policy)
                    seen += 1
                    if isinstance(event, Rejection):
                        continue
                    state = states.get(event.customer_id) or CustomerState(
                        customer_id=event.customer_id
                    )
                    process_event(state, event, engine)
                    states[event.customer_id] = state
                    encode_state(state)
    finally:
        await consumer.stop()
    elapsed = time.monotonic() - started
    print(f"raw aiokafka loop: {seen} events in {elapsed:.1f} s ({seen / elapsed:,.0f}/s)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--topic", required=True, help="full name of a purchases topic")
    parser.add_argument("--messages", type=int, default=200_000)
    args = parser.parse_args()
    asyncio.run(main(args.topic, args.messages))
