"""SIGKILL in the middle of a burst of 20,000 due moments loses no trigger.

A burst writes triggers and the customer states that record them as sent. If a
state reached the local store (or its changelog) before its triggers reached
Kafka, a crash in between would leave the moment marked as fired with no
trigger anywhere, and the restarted worker, trusting its store, would never
send it. The worker sends a state only after its triggers are delivered, and
writes the local store only after the input offsets behind it are committed,
so the restart fires whatever was not sent, with the same trigger ids.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from aiokafka import AIOKafkaConsumer, TopicPartition

from schemas.timestamps import MS_PER_DAY, iso
from schemas.triggers import Trigger
from tests.factories import purchase
from tests.integration.harness import (
    Namespace,
    WorkerProcess,
    read_topic,
    wait_for,
    worker_counters,
)
from tests.integration.test_timers_pipeline import (
    START,
    backtest,
    drain,
    lapse_only,
    publish_event_clock,
    write_jsonl,
)

CUSTOMERS = 20_000


async def triggers_in_topic(ns: Namespace, consumer: AIOKafkaConsumer) -> int:
    tps = [TopicPartition(ns.topics.triggers, p) for p in range(ns.settings.kafka.partitions)]
    return sum((await consumer.end_offsets(tps)).values())


async def trigger_ids_in_topic(ns: Namespace, consumer: AIOKafkaConsumer) -> set[str]:
    """Distinct trigger ids of every record on the triggers topic now (a crash re-fires
    some moments: their records are duplicates, so reading a fixed count is not enough)."""
    records = await read_topic(
        ns.settings, ns.topics.triggers, expect=await triggers_in_topic(ns, consumer), timeout=60
    )
    return {Trigger.from_bytes(r.value).trigger_id for r in records}


async def test_sigkill_in_the_middle_of_a_burst_loses_no_trigger(
    stack_env: dict[str, str], tmp_path: Path
) -> None:
    ns = Namespace.create(
        stack_env, tmp_path, KIZUNA_CLOCK_MODE="event", KIZUNA_CONFIG=lapse_only(tmp_path)
    )
    await ns.ensure_topics()
    # Every customer bought for 6,000 yen within the first hour: all the 90-day lapses
    # fall due within an hour of each other, in one burst once the clock passes them.
    spenders = [
        purchase(f"b-{i:05d}", iso(START + (i % 3_600) * 1_000), 6_000, event_id=f"b-{i}")
        for i in range(CUSTOMERS)
    ]
    first = write_jsonl(tmp_path / "first.jsonl", spenders)
    day_80, day_100 = iso(START + 80 * MS_PER_DAY), iso(START + 100 * MS_PER_DAY)

    worker = WorkerProcess(ns, "worker-1").start()
    consumer = AIOKafkaConsumer(bootstrap_servers=ns.settings.bootstrap_servers)
    await consumer.start()
    try:
        ticks = publish_event_clock(ns, first, day_80)  # nothing due yet
        await drain(ns, worker, ticks)
        assert (await worker_counters(ns))["events.applied"] == CUSTOMERS
        assert await triggers_in_topic(ns, consumer) == 0

        later = write_jsonl(tmp_path / "later.jsonl", [purchase("other", iso(START), 10)])
        publish_event_clock(ns, later, day_100)  # the burst: 20,000 lapses due at once
        deadline = time.monotonic() + 120
        while (sent := await triggers_in_topic(ns, consumer)) == 0:
            worker.assert_alive()
            assert time.monotonic() < deadline, "the burst did not start"
            await asyncio.sleep(0.02)
        worker.kill()
        assert sent < CUSTOMERS, "the burst was over before the kill: nothing was tested"
    finally:
        await consumer.stop()
        worker.stop()

    restarted = WorkerProcess(ns, "worker-2").start()
    consumer = AIOKafkaConsumer(bootstrap_servers=ns.settings.bootstrap_servers)
    await consumer.start()
    try:
        ids = await wait_for(
            lambda: trigger_ids_in_topic(ns, consumer),
            lambda got: len(got) >= CUSTOMERS,
            worker=restarted,
            timeout=240,
            interval=2,
            what=f"{CUSTOMERS} distinct trigger ids",
        )
    finally:
        await consumer.stop()
        restarted.stop()
    combined = write_jsonl(tmp_path / "all.jsonl", [*spenders, purchase("other", iso(START), 10)])
    assert ids == {Trigger.from_bytes(t).trigger_id for t in backtest(ns, combined, day_100)}
