"""Two Kizuna apps on one topic prefix keep their internal records to themselves.

A staging worker or a benchmark may run beside production on the same input
topics. Each app names the topics it writes for itself (wall-clock ticks, the
co-purchase changes every partition shares) by its app id, so neither reads the
other's: were the co-purchase records shared, every cross-sell count would be
counted twice and the triggers' facts would differ from the backtest's.
"""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

from schemas.timestamps import MS_PER_DAY, iso
from schemas.triggers import Trigger
from tests.generators import generate_history
from tests.integration.harness import Namespace, WorkerProcess, free_port, wait_for
from tests.integration.test_timers_pipeline import (
    START,
    backtest,
    drain,
    emitted_triggers,
    publish_event_clock,
    write_jsonl,
)


async def test_two_apps_on_one_prefix_do_not_read_each_others_internal_records(
    stack_env: dict[str, str], tmp_path: Path
) -> None:
    tag = f"t{uuid.uuid4().hex[:10]}"
    spaces = []
    for app in ("kizuna", "kizuna-staging"):
        (tmp_path / app).mkdir()
        spaces.append(
            Namespace.create(
                stack_env,
                tmp_path / app,
                KIZUNA_CLOCK_MODE="event",
                KIZUNA_TOPIC_PREFIX=f"{tag}.",
                KIZUNA_REDIS_PREFIX=f"{tag}-{app}:",
                KIZUNA_APP_ID=app,
                KIZUNA_WEB_PORT=str(free_port()),
            )
        )
    prod, staging = spaces
    assert prod.topics.inputs == staging.topics.inputs
    assert prod.topics.triggers == staging.topics.triggers
    assert not set(prod.topics.internal) & set(staging.topics.internal)
    for ns in spaces:
        await ns.ensure_topics()

    until = iso(START + 300 * MS_PER_DAY)
    path = write_jsonl(tmp_path / "events.jsonl", generate_history(5, 60, START, 290))
    expected = backtest(prod, path, until)
    assert "cross_sell" in {Trigger.from_bytes(t).rule for t in expected}

    workers = [WorkerProcess(ns).start() for ns in spaces]
    try:
        ticks = publish_event_clock(prod, path, until)  # one publish: both apps read it
        await wait_for(
            lambda: emitted_triggers(prod, 2 * len(expected)),
            lambda got: len(got) >= 2 * len(expected),
            worker=workers[0],
            timeout=240,
            what=f"{2 * len(expected)} triggers",
        )
        counters = await asyncio.gather(
            *(drain(ns, w, ticks) for ns, w in zip(spaces, workers, strict=True))
        )
    finally:
        for worker in workers:
            worker.stop()

    got = await emitted_triggers(prod, 2 * len(expected) + 1)
    assert sorted(got) == sorted(expected * 2)  # each app: the backtest's bytes, facts included
    for seen in counters:
        assert seen.get("dead_letter.bad_co_purchase", 0) == 0
