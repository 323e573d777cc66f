"""Records Faust's consumer fetched but never delivered are still processed, once,
and the guard that catches them leaves records merely waiting their turn alone.

The worker runs under ``tests.integration.dropping_worker``, which makes Faust's
consumer lose the first records of each ``purchases`` partition the way Faust's
recovery race does (the position moves past them, the agent never sees them), or
under ``tests.integration.eager_stall_worker``, whose stall check fires after one
check instead of two. The worker only reads the input topics: each test checks they
hold exactly the records it published.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path

import pytest

from streams.partition_reader import PartitionReader
from tests.factories import purchase
from tests.integration.harness import (
    Namespace,
    WorkerProcess,
    committed_offset,
    committed_to_the_end,
    encode,
    log_end,
    produce,
    wait_for,
    worker_counters,
)
from tests.integration.test_ingest_pipeline import customer_row, purchases

DROPPING_WORKER = "tests.integration.dropping_worker"
EAGER_STALL_WORKER = "tests.integration.eager_stall_worker"
BACKLOG = 6000  # purchases over all partitions: several seconds of work each


async def assert_inputs_hold_only(ns: Namespace, sent: list[tuple[str, int, int]]) -> None:
    """Every partition of every input topic ends where the records the test published
    (``sent``: topic, partition, offset) end: the worker appended nothing to them."""
    published = Counter((topic, partition) for topic, partition, _ in sent)
    ends = {
        (topic, partition): await log_end(ns, topic, partition)
        for topic in ns.topics.inputs.values()
        for partition in range(ns.settings.kafka.partitions)
    }
    assert ends == {tp: published[tp] for tp in ends}


async def start_losing(
    stack_env: dict[str, str], tmp_path: Path, first: int, **overrides: str
) -> tuple[Namespace, WorkerProcess, str, int]:
    """Three purchases of c-1 on one partition, then a worker that loses the first
    ``first`` records of it. Returns (namespace, worker, topic, partition)."""
    ns = Namespace.create(stack_env, tmp_path, **overrides)
    ns.env.update(
        KIZUNA_TEST_DROP_TOPIC=ns.topics.inputs["purchase"], KIZUNA_TEST_DROP_FIRST=str(first)
    )
    await ns.ensure_topics()
    events = [purchase("c-1", at=f"2026-0{m}-01T00:00:00Z", amount=100 * m) for m in (1, 2, 3)]
    sent = await produce(ns.settings, [(ns.topics.inputs["purchase"], *encode(e)) for e in events])
    [(topic, partition)] = {(t, p) for t, p, _ in sent}
    return ns, WorkerProcess(ns, "losing-worker", module=DROPPING_WORKER).start(), topic, partition


@pytest.mark.parametrize("guarantee", ["at_least_once", "exactly_once"])
async def test_records_skipped_before_a_delivered_one_are_read_back_first(
    stack_env: dict[str, str], tmp_path: Path, guarantee: str
) -> None:
    ns, worker, topic, partition = await start_losing(
        stack_env, tmp_path, first=1, KIZUNA_PROCESSING_GUARANTEE=guarantee
    )
    try:
        row = await wait_for(
            lambda: customer_row(ns, "c-1"), lambda r: purchases(r) == 3, worker=worker
        )
        assert row is not None and float(row["lifetime_spend"]) == 600.0
        assert row["first_purchase_at"] == "2026-01-01T00:00:00.000Z"  # the lost one
        # The group commits past the read-back record only once it is processed.
        await wait_for(
            lambda: committed_offset(ns, topic, partition), lambda c: c == 3, worker=worker
        )
        counters = await worker_counters(ns)
    finally:
        worker.stop()
    assert counters.get("offsets.skipped_records_recovered") == 1
    assert counters.get("events.applied") == 3
    await assert_inputs_hold_only(ns, [(topic, partition, n) for n in range(3)])


@pytest.mark.parametrize("guarantee", ["at_least_once", "exactly_once"])
async def test_a_partition_whose_records_were_all_skipped_is_read_back_when_woken(
    stack_env: dict[str, str], tmp_path: Path, guarantee: str
) -> None:
    # Nothing arrives after the lost records, so only the stall check can notice: it
    # sends a wake-up to the app's own clock-ticks topic (a plain record, readable at
    # once in exactly-once too), and the agent reads the records past the last one
    # processed back. Nothing is written to the input topic.
    ns, worker, topic, partition = await start_losing(
        stack_env,
        tmp_path,
        first=3,
        KIZUNA_STALL_CHECK_INTERVAL_S="1",
        KIZUNA_PROCESSING_GUARANTEE=guarantee,
    )
    try:
        row = await wait_for(
            lambda: customer_row(ns, "c-1"), lambda r: purchases(r) == 3, worker=worker
        )
        assert row is not None and float(row["lifetime_spend"]) == 600.0
        await wait_for(lambda: committed_to_the_end(ns, topic, partition), bool, worker=worker)
        counters = await worker_counters(ns)
    finally:
        worker.stop()
    assert counters.get("offsets.stalled_partitions_woken", 0) >= 1
    assert counters.get("offsets.stalled_partitions_read_back") == 1
    assert counters.get("offsets.skipped_records_recovered") == 3
    assert counters.get("events.applied") == 3
    assert "dead_letter.total" not in counters  # a wake-up is not a bad record
    await assert_inputs_hold_only(ns, [(topic, partition, n) for n in range(3)])


async def test_the_stall_check_leaves_a_busy_backlog_alone_and_commits_reach_the_end(
    stack_env: dict[str, str], tmp_path: Path
) -> None:
    # A backlog on every partition, each waiting its turn behind the others, and a stall
    # check that reports a partition after one check without progress: the records are
    # queued, not lost. A wake-up reaches the agent behind them and finds them
    # processed: nothing is read back, delivered or applied twice, and the group's
    # commits reach the end of every partition. (The check used to seek such a
    # partition back: Faust then delivered the queued records twice, counted them as a
    # gap too, and its commits stopped short for good.)
    ns = Namespace.create(stack_env, tmp_path, KIZUNA_STALL_CHECK_INTERVAL_S="0.5")
    await ns.ensure_topics()
    topic = ns.topics.inputs["purchase"]
    events = [purchase(f"c-{n}", at="2026-01-01T00:00:00Z", amount=100) for n in range(BACKLOG)]
    sent = await produce(ns.settings, [(topic, *encode(e)) for e in events])
    partitions = sorted({p for _, p, _ in sent})
    worker = WorkerProcess(ns, "eager-worker", module=EAGER_STALL_WORKER).start()
    try:
        await wait_for(
            lambda: worker_counters(ns),
            lambda c: c.get("events.applied", 0) >= BACKLOG,
            worker=worker,
            timeout=300,
        )
        for partition in partitions:
            await wait_for(
                lambda p=partition: committed_to_the_end(ns, topic, p),  # type: ignore[misc]
                bool,
                worker=worker,
                timeout=30,
            )
        counters = await worker_counters(ns)
    finally:
        worker.stop()
    assert counters.get("events.applied") == BACKLOG
    assert "events.duplicate_event" not in counters
    assert "offsets.redeliveries_skipped" not in counters  # nothing was delivered twice
    assert "offsets.skipped_records_recovered" not in counters  # nothing was lost
    assert "offsets.stalled_partitions_read_back" not in counters
    await assert_inputs_hold_only(ns, sent)


async def test_the_reader_can_be_used_again_while_read_back_records_are_handled(
    ns: Namespace,
) -> None:
    """Handling a read-back record may ask the same reader where another partition
    starts (firing checks every input topic's backlog). The reader used to yield records
    while holding its lock, so that call waited for itself forever."""
    await ns.ensure_topics()
    topic = ns.topics.inputs["purchase"]
    sent = await produce(ns.settings, [(topic, *encode(purchase("c-1", amount=m))) for m in (1, 2)])
    [(_, partition)] = {(t, p) for t, p, _ in sent}
    group = f"{ns.settings.kafka.topic_prefix}{ns.settings.worker.app_id}"
    reader = PartitionReader(ns.settings.bootstrap_servers, group, read_committed=False)
    try:
        handled = []
        for record in await reader.read(topic, partition, 0, 2):
            other = ns.topics.inputs["page_view"]
            await asyncio.wait_for(reader.start_offsets(other, partition), timeout=10)
            handled.append(record.offset)
    finally:
        await reader.close()
    assert handled == [0, 1]
