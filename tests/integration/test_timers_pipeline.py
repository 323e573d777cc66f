"""Timers and lapse triggers through the real worker: replay = backtest, crash, catch-up."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import time
from pathlib import Path
from typing import Any

import orjson

from agents.domain.rulebook import RULE_TYPES, RULE_TYPES_BY_NAME
from schemas.timestamps import MS_PER_DAY, iso
from schemas.triggers import Trigger
from schemas.validation import parse_timestamp_ms
from tests.factories import purchase
from tests.generators import generate_history
from tests.integration.harness import (
    Namespace,
    WorkerProcess,
    encode,
    produce,
    read_topic,
    rules_only_config,
    wait_for,
    worker_counters,
)
from tests.integration.test_ingest_pipeline import customer_row

START = parse_timestamp_ms("2025-01-01T00:00:00Z")


def lapse_only(tmp: Path) -> str:
    """Timer tests about lapses run the lapse rules alone (the year test runs them all)."""
    return rules_only_config(tmp, "lapse_90d", "lapse_180d")


UNTIL = iso(START + 480 * MS_PER_DAY)


def write_jsonl(path: Path, events: list[dict[str, Any]]) -> Path:
    path.write_bytes(b"".join(orjson.dumps(e) + b"\n" for e in events))
    return path


def backtest(ns: Namespace, path: Path, until: str) -> list[bytes]:
    result = ns.run_cli("backtest", str(path), "--until", until)
    assert result.returncode == 0, result.stderr
    return [line.encode() for line in result.stdout.splitlines()]


async def emitted_triggers(ns: Namespace, expect: int) -> list[bytes]:
    messages = await read_topic(ns.settings, ns.topics.triggers, expect=expect, timeout=10)
    return [m.value for m in messages]


def publish_event_clock(ns: Namespace, path: Path, until: str) -> int:
    """Publish with the event clock; returns the number of ticks sent."""
    result = ns.run_cli("publish", str(path), "--event-clock", "--until", until, timeout=300)
    assert result.returncode == 0, result.stderr
    match = re.search(r"sent (\d+) clock ticks", result.stderr)
    assert match, result.stderr
    return int(match.group(1))


async def drain(ns: Namespace, worker: WorkerProcess, ticks: int) -> dict[str, int]:
    """Wait until the worker consumed every tick sent (the last message of each partition)."""
    return await wait_for(
        lambda: worker_counters(ns),
        lambda c: c.get("clock.ticks", 0) >= ticks,
        worker=worker,
        timeout=180,
        what=f"{ticks} clock ticks consumed",
    )


async def test_event_clock_replay_of_a_year_fires_exactly_the_backtest_triggers_of_every_rule(
    stack_env: dict[str, str], tmp_path: Path
) -> None:
    # Every firing goes to a helper process (and cross-sells come back to the worker).
    ns = Namespace.create(
        stack_env, tmp_path, KIZUNA_CLOCK_MODE="event", KIZUNA_FIRING_OFFLOAD_MIN="1"
    )
    await ns.ensure_topics()
    events = generate_history(7, 150, START, 450, bad_every=400)
    path = write_jsonl(tmp_path / "year.jsonl", events)
    expected = backtest(ns, path, UNTIL)
    rules = {Trigger.from_bytes(t).rule for t in expected}
    assert rules == set(RULE_TYPES_BY_NAME), f"every rule of the catalogue must fire: {rules}"
    assert expected == backtest(ns, path, UNTIL), "backtest must be deterministic"

    worker = WorkerProcess(ns).start()
    try:
        ticks = publish_event_clock(ns, path, UNTIL)
        await wait_for(
            lambda: emitted_triggers(ns, len(expected)),
            lambda got: len(got) >= len(expected),
            worker=worker,
            timeout=240,
            what=f"{len(expected)} triggers",
        )
        counters = await drain(ns, worker, ticks)  # nothing left that could fire more
    finally:
        worker.stop()

    got = await emitted_triggers(ns, len(expected) + 1)
    assert {Trigger.from_bytes(t).trigger_id for t in got} == {
        Trigger.from_bytes(t).trigger_id for t in expected
    }
    assert sorted(got) == sorted(expected)  # byte for byte, facts included
    assert counters.get("dead_letter.bad_timestamp", 0) == len(events) // 400 + 1
    assert counters["firing.customers_in_helpers"] > 0
    assert counters.get("firing.helper_failures", 0) == 0


async def test_a_killed_firing_helper_loses_no_trigger_and_is_replaced(
    stack_env: dict[str, str], tmp_path: Path
) -> None:
    ns = Namespace.create(
        stack_env,
        tmp_path,
        KIZUNA_CLOCK_MODE="event",
        KIZUNA_CONFIG=lapse_only(tmp_path),
        KIZUNA_FIRING_OFFLOAD_MIN="1",
    )
    await ns.ensure_topics()
    spenders = [purchase(f"h-{i}", iso(START + i * 3_600_000), 7000) for i in range(40)]
    first = write_jsonl(tmp_path / "first.jsonl", spenders)
    worker = WorkerProcess(ns).start()
    try:
        ticks = publish_event_clock(ns, first, iso(START + 100 * MS_PER_DAY))
        before = await drain(ns, worker, ticks)  # the 90-day lapses fired through a helper
        assert before["firing.customers_in_helpers"] >= 40
        [helper] = await wait_for(
            lambda: asyncio.sleep(0, worker.firing_helpers()), lambda pids: len(pids) == 1
        )
        os.kill(helper, signal.SIGKILL)

        later = write_jsonl(tmp_path / "later.jsonl", [purchase("other", iso(START), 10)])
        more_ticks = publish_event_clock(ns, later, iso(START + 200 * MS_PER_DAY))
        after = await drain(ns, worker, ticks + more_ticks)
        got = await emitted_triggers(ns, 81)
        replaced = worker.firing_helpers()
    finally:
        worker.stop()
    ids = [Trigger.from_bytes(t).trigger_id for t in got]
    assert len(ids) == len(set(ids)) == 80  # every 180-day lapse too, none twice
    combined = write_jsonl(tmp_path / "all.jsonl", [*spenders, orjson.loads(later.read_bytes())])
    assert sorted(got) == sorted(backtest(ns, combined, iso(START + 200 * MS_PER_DAY)))
    assert after["firing.helper_failures"] == 1
    assert len(replaced) == 1 and replaced != [helper]


async def test_sigkill_with_pending_timers_then_restart_fires_each_due_trigger_once(
    stack_env: dict[str, str], tmp_path: Path
) -> None:
    ns = Namespace.create(
        stack_env, tmp_path, KIZUNA_CLOCK_MODE="event", KIZUNA_CONFIG=lapse_only(tmp_path)
    )
    await ns.ensure_topics()
    spenders = [purchase(f"k-{i}", iso(START + i * 3_600_000), 6000 + i) for i in range(40)]
    small = [purchase(f"s-{i}", iso(START + i * 3_600_000), 100) for i in range(10)]
    first = write_jsonl(tmp_path / "first.jsonl", spenders + small)
    day_30 = iso(START + 30 * MS_PER_DAY)

    worker = WorkerProcess(ns, "worker-1").start()
    publish_event_clock(ns, first, day_30)  # timers pending, none due yet
    await wait_for(
        lambda: worker_counters(ns),
        lambda c: c.get("events.applied", 0) >= 50 and c.get("clock.ticks", 0) >= 16 * 2,
        worker=worker,
        what="first batch applied",
    )
    assert await emitted_triggers(ns, 1) == []
    worker.kill()

    # While the worker is down, time moves on past day 90 and day 180 (ticks only).
    later = write_jsonl(
        tmp_path / "later.jsonl", [purchase("k-0", iso(START + 60 * MS_PER_DAY), 10)]
    )
    day_200 = iso(START + 200 * MS_PER_DAY)
    later_ticks = publish_event_clock(ns, later, day_200)

    restarted = WorkerProcess(ns, "worker-2").start()
    try:
        # 39 customers lapse twice (90d, 180d); k-0 bought again on day 60 (one 90d on day 150).
        expected_count = 39 * 2 + 1
        got = await wait_for(
            lambda: emitted_triggers(ns, expected_count),
            lambda t: len(t) >= expected_count,
            worker=restarted,
            timeout=120,
            what="due triggers after restart",
        )
        await drain(ns, restarted, later_ticks)
        got = await emitted_triggers(ns, expected_count + 1)
    finally:
        restarted.stop()
    ids = [Trigger.from_bytes(t).trigger_id for t in got]
    assert len(ids) == len(set(ids)) == expected_count  # each fired exactly once
    combined = write_jsonl(
        tmp_path / "all.jsonl", spenders + small + [orjson.loads(later.read_bytes())]
    )
    assert set(ids) == {Trigger.from_bytes(t).trigger_id for t in backtest(ns, combined, day_200)}


async def test_a_worker_without_local_state_rebuilds_fired_timers_from_the_changelog(
    stack_env: dict[str, str], tmp_path: Path
) -> None:
    """Firing writes the customer table's changelog in batches, around Faust's own
    per-key path: a worker that lost its RocksDB files must rebuild every customer
    from that changelog alone, fired episodes included, and fire nothing twice."""
    ns = Namespace.create(
        stack_env, tmp_path, KIZUNA_CLOCK_MODE="event", KIZUNA_CONFIG=lapse_only(tmp_path)
    )
    await ns.ensure_topics()
    spenders = [purchase(f"r-{i}", iso(START + i * 3_600_000), 5000 + i) for i in range(30)]
    first = write_jsonl(tmp_path / "first.jsonl", spenders)
    worker = WorkerProcess(ns, "worker-1").start()
    try:
        ticks = publish_event_clock(ns, first, iso(START + 100 * MS_PER_DAY))
        await drain(ns, worker, ticks)
        assert len(await emitted_triggers(ns, 31)) == 30  # lapse_90d, once each
    finally:
        worker.stop()

    fresh = Namespace(env={**ns.env, "KIZUNA_DATA_DIR": str(tmp_path / "fresh")}, data_dir=tmp_path)
    later = write_jsonl(tmp_path / "later.jsonl", [purchase("other", iso(START), 10)])
    restarted = WorkerProcess(fresh, "worker-2").start()
    try:
        more_ticks = publish_event_clock(fresh, later, iso(START + 200 * MS_PER_DAY))
        await drain(fresh, restarted, more_ticks)
        got = await emitted_triggers(ns, 61)
    finally:
        restarted.stop()
    ids = [Trigger.from_bytes(t).trigger_id for t in got]
    assert len(ids) == len(set(ids)) == 60  # lapse_180d added; no lapse_90d again
    combined = write_jsonl(tmp_path / "all.jsonl", [*spenders, orjson.loads(later.read_bytes())])
    until = iso(START + 200 * MS_PER_DAY)
    assert sorted(got) == sorted(backtest(ns, combined, until))


async def test_wall_clock_worker_catches_up_overdue_timers_on_start(
    stack_env: dict[str, str], tmp_path: Path
) -> None:
    ns = Namespace.create(
        stack_env, tmp_path, KIZUNA_CLOCK_MODE="wall", KIZUNA_CONFIG=lapse_only(tmp_path)
    )
    await ns.ensure_topics()
    now = int(time.time() * 1000)
    overdue = purchase("w-1", iso(now - 100 * MS_PER_DAY), 8000)
    not_yet = purchase("w-2", iso(now - 10 * MS_PER_DAY), 8000)
    topic = ns.topics.inputs["purchase"]
    await produce(ns.settings, [(topic, *encode(overdue)), (topic, *encode(not_yet))])

    worker = WorkerProcess(ns).start()
    lapse_180 = iso(now - 100 * MS_PER_DAY + 180 * MS_PER_DAY)
    try:
        [raw] = await wait_for(
            lambda: emitted_triggers(ns, 1), lambda t: len(t) >= 1, worker=worker, what="lapse"
        )
        # The row is rewritten after the firing: the fired moment is no longer pending.
        row = await wait_for(
            lambda: customer_row(ns, "w-1"),
            lambda r: r is not None and r["next_timer_at"] == lapse_180,
            worker=worker,
            what="w-1's row after the firing",
        )
    finally:
        worker.stop()
    pending = [m["rule"] for m in orjson.loads(row["pending_timers"])]
    assert "lapse_90d" not in pending and pending[0] == "lapse_180d", pending
    trigger = Trigger.from_bytes(raw)
    assert trigger.customer_id == "w-1" and trigger.rule == "lapse_90d"
    assert trigger.due_at == iso(now - 100 * MS_PER_DAY + 90 * MS_PER_DAY)
    fired_ms = parse_timestamp_ms(trigger.fired_at)
    assert now <= fired_ms <= int(time.time() * 1000)  # wall clock stamps the real firing time
    assert trigger.facts["days_since_purchase"] == 90


async def test_wall_clock_backfill_of_history_fires_what_the_backtest_fires(
    stack_env: dict[str, str], tmp_path: Path
) -> None:
    """Publishing months of history (not in time order) to a wall-clock worker must not
    fire timers before the customer's later events in the backlog are processed."""
    # Every rule but cross-sell: in wall mode its co-purchase counts are as fresh as the
    # other partitions' progress, which no backfill can make deterministic (event mode gates it).
    config = rules_only_config(tmp_path, *(t.name for t in RULE_TYPES if t.name != "cross_sell"))
    ns = Namespace.create(stack_env, tmp_path, KIZUNA_CLOCK_MODE="wall", KIZUNA_CONFIG=config)
    await ns.ensure_topics()
    events = generate_history(11, 60, START, 400)  # grouped by customer, not by time
    path = write_jsonl(tmp_path / "backfill.jsonl", events)
    published = ns.run_cli("publish", str(path), timeout=120)
    assert published.returncode == 0, published.stderr
    now = iso(int(time.time() * 1000))
    expected = {Trigger.from_bytes(t).trigger_id for t in backtest(ns, path, now)}
    assert len(expected) > 200

    worker = WorkerProcess(ns).start()
    try:
        await wait_for(
            lambda: worker_counters(ns),
            lambda c: c.get("events.applied", 0) >= len(events),
            worker=worker,
            timeout=180,
            what="all events applied",
        )
        # Then wait for the expected count, or (to show the difference) for the output
        # to stop growing.
        seen: list[int] = []

        def complete_or_settled(got: list[bytes]) -> bool:
            seen.append(len(got))
            return len(got) >= len(expected) or seen[-3:] == [len(got)] * 3  # ~30 s still

        await wait_for(
            lambda: emitted_triggers(ns, len(expected) + 1),
            complete_or_settled,
            worker=worker,
            timeout=180,
            what=f"{len(expected)} triggers",
        )
        got = await emitted_triggers(ns, len(expected) + 1)
    finally:
        worker.stop()
    assert {Trigger.from_bytes(t).trigger_id for t in got} == expected
