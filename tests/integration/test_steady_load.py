"""A wall-clock worker under continuous load still fires on time and stays bounded.

Storefronts never pause: every input topic's log end is always a little ahead
of what the worker has processed. The worker used to fire nothing while any
input partition had a backlog, so under steady traffic due moments waited for
a lull that never came, and the pruning horizon stayed at "never". Here
records are published without pause for a minute while lapses fall due one
after another; each must fire within seconds of its due time, and a customer
who receives hundreds of events keeps a bounded state.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from aiokafka import AIOKafkaProducer

from agents.domain.customer_state import StateLimits
from agents.domain.customer_view import state_from_json
from schemas.timestamps import MS_PER_DAY, iso
from schemas.triggers import Trigger
from schemas.validation import parse_timestamp_ms
from tests.factories import page_view, purchase
from tests.integration.harness import Namespace, WorkerProcess, encode, wait_for, worker_counters
from tests.integration.test_ingest_pipeline import customer_row
from tests.integration.test_timers_pipeline import emitted_triggers, lapse_only

LOAD_SECONDS = 60
RATE = 150  # events a second: a fraction of what one worker ingests on this box
DUE = 12  # lapses falling due while the load runs, one every 4 s from 10 s in
HOT = "hot-1"  # the customer who gets a purchase and a view in every round


async def test_due_moments_fire_on_time_while_every_input_topic_keeps_a_backlog(
    stack_env: dict[str, str], tmp_path: Path
) -> None:
    ns = Namespace.create(
        stack_env, tmp_path, KIZUNA_CLOCK_MODE="wall", KIZUNA_CONFIG=lapse_only(tmp_path)
    )
    await ns.ensure_topics()
    purchases, views = ns.topics.inputs["purchase"], ns.topics.inputs["page_view"]
    worker = WorkerProcess(ns).start()
    producer = AIOKafkaProducer(bootstrap_servers=ns.settings.bootstrap_servers, linger_ms=5)
    await producer.start()

    async def send(event: dict[str, object]) -> None:
        key, value = encode(event)
        await producer.send(purchases if event["type"] == "purchase" else views, value, key=key)

    try:
        await send(page_view("warm-up", iso(int(time.time() * 1000))))
        await wait_for(
            lambda: worker_counters(ns),
            lambda c: c.get("events.applied", 0) >= 1,
            worker=worker,
            timeout=90,
            what="the worker processing",
        )
        start = int(time.time() * 1000)
        # A purchase 90 days minus (10 + 4 i) seconds ago: its lapse falls due during the load.
        due = {f"due-{i}": start + (10 + 4 * i) * 1000 for i in range(DUE)}
        for customer, due_ms in due.items():
            await send(purchase(customer, iso(due_ms - 90 * MS_PER_DAY), 8000))
        sent = 0
        for second in range(LOAD_SECONDS):
            began = time.monotonic()
            now = int(time.time() * 1000)
            for n in range(RATE // 2):
                await send(purchase(f"load-{second}-{n}", iso(now - n), 1200))
                await send(page_view(f"load-{second}-{n}", iso(now - n)))
                sent += 2
            await send(purchase(HOT, iso(now), 900, event_id=f"hot-p-{second}"))
            await send(page_view(HOT, iso(now), event_id=f"hot-v-{second}"))
            await producer.flush()
            worker.assert_alive()
            await asyncio.sleep(max(0.0, 1.0 - (time.monotonic() - began)))
        load_ended = int(time.time() * 1000)
        raw = await emitted_triggers(ns, DUE + 1)
        counters = await worker_counters(ns)
    finally:
        await producer.stop()
        worker.stop()

    fired = {t.customer_id: t for t in map(Trigger.from_bytes, raw)}
    assert set(fired) == set(due), f"fired while loaded: {sorted(fired)}"
    for customer, due_ms in due.items():
        trigger = fired[customer]
        assert trigger.rule == "lapse_90d" and parse_timestamp_ms(trigger.due_at) == due_ms
        late = parse_timestamp_ms(trigger.fired_at) - due_ms
        assert 0 <= late <= 10_000, f"{customer} fired {late} ms after its due time"
        assert parse_timestamp_ms(trigger.fired_at) < load_ended  # not in a lull after it
    assert counters.get("events.applied", 0) >= sent // 2

    row = await customer_row(ns, HOT)
    assert row is not None
    state = state_from_json(row["state"])
    limits = StateLimits()
    assert len(state.orders) <= limits.max_orders
    assert len(state.seen_ids) <= limits.max_event_ids
    assert len(state.view_days) <= limits.page_view_window_days
