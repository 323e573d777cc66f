"""The broker goes away and comes back while a worker processes a stream.

The worker must reconnect by itself and carry on: no event lost, and the
triggers equal to the backtest's (duplicates of the same trigger id are
allowed: delivery is at-least-once).

This test stops and restarts the session's shared broker, so it runs last
(see ``pytest_collection_modifyitems`` in conftest.py) and waits until the
broker serves again before it ends.
"""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path

from schemas.timestamps import MS_PER_DAY, iso
from schemas.triggers import Trigger
from tests.generators import generate_history
from tests.integration.harness import REPO_ROOT, Namespace, WorkerProcess, wait_for
from tests.integration.test_timers_pipeline import (
    START,
    backtest,
    drain,
    emitted_triggers,
    lapse_only,
    publish_event_clock,
    write_jsonl,
)

KAFKA = REPO_ROOT / "scripts" / "kafka.sh"


def kafka(*args: str) -> None:
    done = subprocess.run(
        ["bash", str(KAFKA), *args], capture_output=True, text=True, timeout=300, cwd=REPO_ROOT
    )
    assert done.returncode == 0, done.stderr


async def test_a_broker_restart_mid_stream_loses_nothing(
    stack_env: dict[str, str], tmp_path: Path
) -> None:
    ns = Namespace.create(
        stack_env, tmp_path, KIZUNA_CLOCK_MODE="event", KIZUNA_CONFIG=lapse_only(tmp_path)
    )
    await ns.ensure_topics()
    events = generate_history(13, 80, START, 300)
    cut = START + 150 * MS_PER_DAY
    first = write_jsonl(
        tmp_path / "first.jsonl", [e for e in events if e["occurred_at"] < iso(cut)]
    )
    second = write_jsonl(
        tmp_path / "second.jsonl", [e for e in events if e["occurred_at"] >= iso(cut)]
    )
    until = iso(START + 320 * MS_PER_DAY)
    expected = backtest(ns, write_jsonl(tmp_path / "all.jsonl", events), until)
    assert len(expected) > 20

    worker = WorkerProcess(ns).start()
    try:
        ticks = publish_event_clock(ns, first, iso(cut - 1))
        await drain(ns, worker, ticks)
        kafka("down")  # not purged: the broker comes back with its data
        await asyncio.sleep(8)  # the worker's connections fail meanwhile
        kafka("up")
        worker.assert_alive()
        ticks += publish_event_clock(ns, second, until)
        await drain(ns, worker, ticks)
        got = await wait_for(
            lambda: emitted_triggers(ns, len(expected) * 2),
            lambda t: (
                {Trigger.from_bytes(x).trigger_id for x in t}
                >= {Trigger.from_bytes(x).trigger_id for x in expected}
            ),
            worker=worker,
            timeout=120,
            what="every expected trigger",
        )
    finally:
        worker.stop()
    assert sorted(set(got)) == sorted(expected)  # the same bytes, each at least once
