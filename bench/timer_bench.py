"""Timer benchmark: many pending timers in one real worker, a burst of them falling due.

    scripts/stack.sh up   # then, with the printed KIZUNA_* variables exported:
    .venv/bin/python -m bench.timer_bench --customers 1000000 --due 100000

Every customer buys once for 6,000 yen (so each holds a lapse_90d, a
lapse_180d and two stage timers: 4 pending timers per customer), in cohorts
of ``--due`` customers: cohort k buys on day k. After ingest, one clock tick
per partition moves event time to day 90: exactly ``--due`` lapse_90d timers
(cohort 0) fall due at once. Reported: ingest rate, time from sending that
tick until the triggers topic holds all of them (acknowledged by the broker,
readable by notification services), firing rate, the worker's RSS and CPU
time during the burst (CPU per trigger varies less with the machine's load
than wall time does), and the timer-index rebuild time after a restart.
``--bursts N`` then ticks to days 91, 92, ... for the next cohorts, with the
same worker.

``--resume DIR`` skips publishing and ingest: it restarts a worker on the
topics and data directory of an earlier run (``data=`` in its output) and
measures the next cohorts' bursts, so a changed worker can be re-measured at
full scale without re-ingesting. ``--firing-processes N`` sets the worker's
firing helpers (``worker.firing_processes``; 0 fires in the event loop only),
for a run or for a resumed run. Runs in event-clock mode on a fresh topic
prefix; leaves the stack running.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from schemas.ticks import TICK_HEADERS, encode_tick
from schemas.timestamps import MS_PER_DAY, iso
from schemas.validation import parse_timestamp_ms
from tests.integration.harness import (
    Namespace,
    WorkerProcess,
    rules_only_config,
    wait_for,
    worker_counters,
)

DAY0 = parse_timestamp_ms("2025-01-01T00:00:00Z")
LAPSE_DAYS = 90
STATE_FILE = "bench-state.json"
STALL_S = 30  # a burst whose triggers stop growing this long has stalled
SETTLE_S = 10  # wait after a restart before the first measured tick
RECOVERED = "offsets.skipped_records_recovered"  # the worker's count of records read back


def cohorts(customers: int, due: int) -> int:
    return -(-customers // due)


def cpu_s(pid: int, *, main_thread: bool = False) -> float:
    """CPU time (user + system) the process has used so far, in seconds: all its
    threads (RocksDB's and the consumer's too), or only its main (event-loop) thread."""
    stat = Path(f"/proc/{pid}/task/{pid}/stat" if main_thread else f"/proc/{pid}/stat")
    fields = stat.read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def publish(ns: Namespace, customers: int, due: int) -> None:
    topic = ns.topics.inputs["purchase"]
    producer = AIOKafkaProducer(
        bootstrap_servers=ns.settings.bootstrap_servers,
        linger_ms=20,
        max_batch_size=256 * 1024,
        acks=1,
    )
    await producer.start()
    try:
        pending = []
        for n in range(customers):
            cid = f"b{n:07d}"
            at = DAY0 + (n // due) * MS_PER_DAY  # cohort n // due
            value = orjson.dumps(
                {
                    "event_id": f"e{n}",
                    "customer_id": cid,
                    "occurred_at": iso(at),
                    "order_id": f"o{n}",
                    "amount": 6000,
                    "items": [{"sku": "s", "category": "tea", "quantity": 1, "price": 6000}],
                }
            )
            pending.append(await producer.send(topic, value, key=cid.encode()))
            if len(pending) >= 20_000:
                await asyncio.gather(*pending)
                pending.clear()
        await asyncio.gather(*pending)
        await send_ticks(producer, ns, DAY0 + cohorts(customers, due) * MS_PER_DAY)
    finally:
        await producer.stop()


async def send_ticks(producer: AIOKafkaProducer, ns: Namespace, at_ms: int) -> None:
    for topic in ns.topics.inputs.values():
        for partition in range(ns.settings.kafka.partitions):
            await producer.send_and_wait(
                topic, encode_tick(at_ms), partition=partition, headers=TICK_HEADERS
            )


async def tick_to(ns: Namespace, at_ms: int) -> float:
    producer = AIOKafkaProducer(bootstrap_servers=ns.settings.bootstrap_servers)
    await producer.start()
    try:
        started = time.monotonic()
        await send_ticks(producer, ns, at_ms)
        return started
    finally:
        await producer.stop()


async def unprocessed_ticks(ns: Namespace) -> list[str]:
    """Input topic partitions whose consumer-group offset is behind their end: the
    worker has not processed their last clock tick."""
    group = ns.settings.topic(ns.settings.worker.app_id)  # the app id is the group id
    admin = AIOKafkaAdminClient(bootstrap_servers=ns.settings.bootstrap_servers)
    consumer = AIOKafkaConsumer(bootstrap_servers=ns.settings.bootstrap_servers)
    await admin.start()
    await consumer.start()
    try:
        committed = await admin.list_consumer_group_offsets(group)
        inputs = set(ns.topics.inputs.values())
        tps = [tp for tp in committed if tp.topic in inputs]
        ends = await consumer.end_offsets(tps)
        return [
            f"{tp.topic}[{tp.partition}] committed {committed[tp].offset}, end {ends[tp]}"
            for tp in sorted(tps)
            if committed[tp].offset < ends[tp]
        ]
    finally:
        await consumer.stop()
        await admin.close()


async def wait_for_triggers(ns: Namespace, expect: int, worker: WorkerProcess) -> int:
    """Wait until the triggers topic holds ``expect`` records (acknowledged by the
    broker, readable by consumers); returns how many it holds. Fails if it stops
    growing for ``STALL_S`` seconds, naming the input partitions left behind."""
    consumer = AIOKafkaConsumer(bootstrap_servers=ns.settings.bootstrap_servers)
    await consumer.start()
    try:
        partitions = [
            TopicPartition(ns.topics.triggers, p) for p in range(ns.settings.kafka.partitions)
        ]
        held, grown_at = -1, time.monotonic()
        while True:
            worker.assert_alive()
            now_held = sum((await consumer.end_offsets(partitions)).values())
            if now_held >= expect:
                return now_held
            if now_held != held:
                held, grown_at = now_held, time.monotonic()
            elif time.monotonic() - grown_at > STALL_S:
                behind = await unprocessed_ticks(ns)
                raise RuntimeError(
                    f"burst stalled at {held:,} of {expect:,} triggers for {STALL_S} s; "
                    f"input partitions with an unprocessed tick: {behind or 'none'} "
                    "(see 'a message lost after a restart' in docs/benchmarks.md)"
                )
            await asyncio.sleep(0.1)
    finally:
        await consumer.stop()


async def ingest(args: argparse.Namespace) -> Namespace:
    """Publish the cohorts into a fresh namespace and run a worker until it has
    applied them all; the namespace's env is saved for ``--resume``."""
    base_env = {k: v for k, v in os.environ.items() if k.startswith("KIZUNA_")}
    tmp = Path(tempfile.mkdtemp(prefix="kizuna-bench-"))
    ns = Namespace.create(
        base_env,
        tmp,
        KIZUNA_CLOCK_MODE="event",
        KIZUNA_STORE=args.store,
        KIZUNA_LOG_LEVEL="warning",
        KIZUNA_FIRING_PROCESSES=str(1 if args.firing_processes is None else args.firing_processes),
        # The burst under test is lapse timers; the rest of the catalogue would add
        # follow-ups, nudges and cross-sells due before day 90.
        KIZUNA_CONFIG=rules_only_config(tmp, "lapse_90d", "lapse_180d"),
    )
    await ns.ensure_topics()
    print(
        f"store={args.store} partitions={ns.settings.kafka.partitions} "
        f"firing_processes={ns.settings.worker.firing_processes} data={tmp}"
    )

    t0 = time.monotonic()
    await publish(ns, args.customers, args.due)
    print(f"published {args.customers} purchases in {time.monotonic() - t0:.1f} s")

    worker = WorkerProcess(ns).start()
    assert worker.proc is not None
    t0 = time.monotonic()
    await wait_for(
        lambda: worker_counters(ns),
        lambda c: c.get("events.applied", 0) >= args.customers and c["redis.pending"] == 0,
        worker=worker,
        timeout=3600,
        interval=2,
        what="ingest",
    )
    ingest_s = time.monotonic() - t0
    print(
        f"ingest: {args.customers} events in {ingest_s:.1f} s "
        f"({args.customers / ingest_s:,.0f}/s incl. worker start-up); "
        f"pending timers: {4 * args.customers:,} ({args.customers:,} customers); "
        f"worker RSS {rss_mb(worker.proc.pid):,.0f} MB"
    )
    save_state(ns, customers=args.customers, due=args.due, fired_cohorts=0)
    await bursts(ns, worker, args.customers, args.due, first=0, count=args.bursts)
    worker.stop()
    return ns


def load_state(data_dir: Path) -> dict[str, Any]:
    """What ``--resume`` needs of an earlier run: its env, sizes and cohorts fired."""
    state: dict[str, Any] = orjson.loads((data_dir / STATE_FILE).read_bytes())
    return state


def save_state(ns: Namespace, **changes: int) -> None:
    path = ns.data_dir / STATE_FILE
    state = load_state(ns.data_dir) if path.exists() else {"env": ns.env}
    path.write_bytes(orjson.dumps({**state, **changes}))


async def bursts(
    ns: Namespace, worker: WorkerProcess, customers: int, due: int, *, first: int, count: int
) -> None:
    """Tick to day 90 + k for cohorts ``first`` .. ``first + count - 1``; report each."""
    assert worker.proc is not None
    last = min(first + count, cohorts(customers, due))
    if first >= last:
        print(f"no burst: all {cohorts(customers, due)} cohorts have fired")
    for cohort in range(first, last):
        size = min(due, customers - cohort * due)
        helpers = worker.firing_helpers()
        cpu_before = cpu_s(worker.proc.pid)
        main_before = cpu_s(worker.proc.pid, main_thread=True)
        helpers_before = sum(cpu_s(pid) for pid in helpers)
        recovered_before = (await worker_counters(ns)).get(RECOVERED, 0)
        started = await tick_to(ns, DAY0 + (LAPSE_DAYS + cohort) * MS_PER_DAY)
        expect = cohort * due + size  # the triggers topic holds every earlier cohort's too
        held = await wait_for_triggers(ns, expect, worker)
        fire_s = time.monotonic() - started
        fire_cpu_s = cpu_s(worker.proc.pid) - cpu_before
        main_cpu_s = cpu_s(worker.proc.pid, main_thread=True) - main_before
        helpers_cpu_s = sum(cpu_s(pid) for pid in helpers) - helpers_before
        counters = await worker_counters(ns)
        print(
            f"burst (cohort {cohort}): {size:,} triggers on the triggers topic "
            f"{fire_s:.2f} s after they fell due ({size / fire_s:,.0f}/s; topic holds "
            f"{held:,}, worker counted {counters.get('triggers.lapse_90d', 0):,} lapse_90d "
            f"since its start); worker RSS {rss_mb(worker.proc.pid):,.0f} MB; worker CPU "
            f"{fire_cpu_s:.2f} s in all threads, {main_cpu_s:.2f} s in the event loop "
            f"({main_cpu_s / size * 1e6:.0f} us per trigger); "
            f"{describe_helpers(helpers, helpers_cpu_s, size, counters)}"
        )
        recovered = counters.get(RECOVERED, 0) - recovered_before
        if recovered:
            print(
                f"  (not a valid measurement: the worker read back {recovered} record(s) the "
                "consumer had skipped, so their firing waited for the stall check; see "
                "'a message lost after a restart' in docs/benchmarks.md)"
            )
        save_state(ns, fired_cohorts=cohort + 1)


def describe_helpers(
    helpers: list[int], cpu_used_s: float, size: int, counters: dict[str, int]
) -> str:
    """The firing helpers' share of a burst: CPU, RSS, customers they evaluated."""
    if not helpers:
        return "no firing helpers"
    rss = sum(rss_mb(pid) for pid in helpers)
    return (
        f"{len(helpers)} firing helper(s): CPU {cpu_used_s:.2f} s "
        f"({cpu_used_s / size * 1e6:.0f} us per trigger), RSS {rss:,.0f} MB, "
        f"{counters.get('firing.customers_in_helpers', 0):,} customers evaluated in helpers "
        f"since the worker's start, helper failures "
        f"{counters.get('firing.helper_failures', 0)}"
    )


async def restart(ns: Namespace) -> WorkerProcess:
    """Start a worker on existing state; report recovery time and RSS."""
    worker = WorkerProcess(ns, "worker-restart").start()
    t0 = time.monotonic()
    await wait_for(
        lambda: worker_counters(ns),
        lambda c: c.get("timers.index_rebuilds", 0) >= 1,
        worker=worker,
        timeout=3600,
        interval=0.5,
        what="restart recovery",
    )
    assert worker.proc is not None
    print(
        f"restart: recovered and rebuilt the timer index in {time.monotonic() - t0:.1f} s "
        f"(incl. process start); worker RSS {rss_mb(worker.proc.pid):,.0f} MB"
    )
    return worker


async def main(args: argparse.Namespace) -> None:
    if args.resume is None:
        (await restart(await ingest(args))).stop()
        return
    state = load_state(args.resume)
    env = dict(state["env"])
    if args.firing_processes is not None:
        env["KIZUNA_FIRING_PROCESSES"] = str(args.firing_processes)
    ns = Namespace(env=env, data_dir=args.resume)
    print(
        f"resuming {args.resume}: {state['customers']:,} customers, cohorts of "
        f"{state['due']:,}, firing_processes={ns.settings.worker.firing_processes}"
    )
    worker = await restart(ns)
    # Faust can drop a message that reaches a partition right after its recovery (see
    # 'a message lost after a restart' in docs/benchmarks.md): let the worker settle so
    # the measured ticks do not race it.
    await asyncio.sleep(SETTLE_S)
    try:
        await bursts(
            ns,
            worker,
            state["customers"],
            state["due"],
            first=state["fired_cohorts"],
            count=args.bursts,
        )
    finally:
        worker.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--customers", type=int, default=1_000_000, help="customers (pending timers x4)"
    )
    parser.add_argument("--due", type=int, default=100_000, help="timers falling due at once")
    parser.add_argument("--store", default="rocksdict://", choices=("rocksdict://", "memory://"))
    parser.add_argument("--bursts", type=int, default=1, help="cohorts to fire, one by one")
    parser.add_argument(
        "--firing-processes",
        type=int,
        help="the worker's firing helpers (worker.firing_processes; default 1)",
    )
    parser.add_argument(
        "--resume", type=Path, help="data directory of an earlier run: re-measure its next bursts"
    )
    args = parser.parse_args()
    if not 0 < args.due <= args.customers:
        parser.error("expected 0 < --due <= --customers")
    if cohorts(args.customers, args.due) >= LAPSE_DAYS:
        parser.error(f"expected --customers / --due < {LAPSE_DAYS} (one cohort per day)")
    if args.firing_processes is not None and not 0 <= args.firing_processes <= 64:
        parser.error("expected 0 <= --firing-processes <= 64")
    if args.bursts < 1:
        parser.error("expected --bursts >= 1")
    if args.resume is not None and not (args.resume / STATE_FILE).is_file():
        parser.error(f"expected --resume to name a bench data directory holding {STATE_FILE}")
    sys.exit(asyncio.run(main(args)))
