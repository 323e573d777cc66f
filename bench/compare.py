"""Side by side on one broker and one data set: bare aiokafka, bare Faust, Quix Streams, Kizuna.

    .venv/bin/python -m bench.compare [--events 200000] [--customers 20000] [--partitions 4]
        [--rounds 2] [--systems aiokafka,faust,quix,kizuna,kizuna-eos] [--time-cap 120]

Needs the stack (``KIZUNA_BROKER``, ``KIZUNA_REDIS_URL``). Creates a fresh input
data set once under a unique topic prefix ``bench-XXXXXXXX.``: purchases, page
views and support tickets mixed (built with ``tests/factories.py``), keyed by
customer id, timestamps spread over the last two days of the wall clock, in time
order, about three purchases per customer so that ``loyal_promotion`` fires
during the run. Then, round after round (the order of the systems reversed every
other round), each system runs in its own subprocess with its own consumer group
from the start of the topics until it has consumed ``--events`` events or
``--time-cap`` seconds have passed since its first one:

* ``aiokafka``: ``bench/peers/aiokafka_loop.py``, consume + ``orjson.loads`` (the ceiling);
* ``faust``: ``bench/peers/faust_agent.py``, a bare Faust agent, dict update per message;
* ``quix``: ``bench/peers/quix_app.py``, Quix Streams with RocksDB state and changelog,
  a trigger record on a customer's third purchase, at-least-once (its own virtualenv,
  ``.cache/bench-quix-venv``, created on first use);
* ``kizuna`` / ``kizuna-eos``: ``kizuna worker``, default configuration and catalogue,
  wall clock, at-least-once / exactly-once.

Measured per run, over the window from the first event processed to the last (the
peers report both; for the Kizuna worker the parent polls its ``/kizuna/stats/``
counters ``events.*`` + ``dead_letter.total`` every 0.25 s): events/s, CPU time of
the subprocess and its children (utime + stime from /proc, the firing helper
included) per 1,000 events, and peak RSS (VmHWM of the process plus its children).
The event loop is the same for Faust and Kizuna: ``F_LOOP`` (``--loop``, uvloop when
installed), which ``faust`` reads when imported; each run reports whether uvloop
was loaded. Topics, consumer groups, Redis keys and data directories of the run are
deleted at the end (``--keep`` keeps them).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import importlib.util
import json
import os
import queue
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import orjson

from tests.factories import page_view, purchase, ticket

REPO = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent
QUIX_VENV = REPO / ".cache" / "bench-quix-venv"
BENCH_DIR = REPO / ".cache" / "bench"
SYSTEMS = ("aiokafka", "faust", "quix", "kizuna", "kizuna-eos")
INPUTS = ("purchases", "page-views", "support-tickets")
CLK_TCK = os.sysconf("SC_CLK_TCK")
JST = dt.timezone(dt.timedelta(hours=9))
CATEGORIES = ("food", "books", "toys", "garden", "beauty", "sports", "kitchen", "games")
PAGE_WEIGHTS = {"home": 3, "category": 3, "product": 6, "cart": 1, "checkout": 1, "support": 1}
TICKET_CATEGORIES = {"question": 5, "trouble": 3, "complaint": 1, "cancellation": 1, "other": 1}


# ---------------------------------------------------------------- /proc


def _descendants(pid: int) -> list[int]:
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        try:
            tasks = os.listdir(f"/proc/{p}/task")
        except FileNotFoundError:
            continue
        for tid in tasks:
            with contextlib.suppress(FileNotFoundError, ProcessLookupError):
                kids = Path(f"/proc/{p}/task/{tid}/children").read_text().split()
                out.extend(map(int, kids))
                todo.extend(map(int, kids))
    return out


def tree_cpu_s(pid: int) -> float:
    """User + system CPU seconds of ``pid`` and its live descendants (and reaped children)."""
    total = 0
    for p in [pid, *_descendants(pid)]:
        try:
            stat = Path(f"/proc/{p}/stat").read_text()
        except (FileNotFoundError, ProcessLookupError):
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        total += sum(int(f) for f in fields[11:15])  # utime stime cutime cstime
    return total / CLK_TCK


def tree_hwm_mb(pid: int) -> float:
    """Peak RSS (VmHWM) of ``pid`` plus that of each live descendant, in MB."""
    total = 0
    for p in [pid, *_descendants(pid)]:
        with contextlib.suppress(FileNotFoundError, ProcessLookupError):
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    total += int(line.split()[1])
    return total / 1024


def uvloop_loaded(pid: int) -> bool:
    try:
        return "uvloop/loop." in Path(f"/proc/{pid}/maps").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False


def box_jiffies() -> tuple[int, int]:
    """(busy, total) jiffies of the whole box since boot, from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]
    return sum(values) - idle, sum(values)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# ---------------------------------------------------------------- results


@dataclass
class Run:
    system: str
    round: int
    events: int = 0
    seconds: float = 0.0
    cpu_s: float = 0.0
    rss_mb: float = 0.0
    uvloop: bool = False
    triggers: int = 0
    loyal_promotion: int = 0
    startup_s: float = 0.0
    box_busy: float = 0.0  # share of the box's 2 cores busy during the window (all processes)
    error: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else 0.0

    @property
    def cpu_ms_per_1k(self) -> float:
        return 1e6 * self.cpu_s / self.events if self.events else 0.0


class Window:
    """CPU of a process tree and of the box between :meth:`open` and :meth:`close`."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.cpu0 = self.cpu1 = 0.0
        self.box0 = self.box1 = (0, 0)

    def open(self) -> None:
        self.cpu0, self.box0 = tree_cpu_s(self.pid), box_jiffies()

    def close(self) -> None:
        self.cpu1, self.box1 = tree_cpu_s(self.pid), box_jiffies()

    def fill(self, run: Run) -> None:
        run.cpu_s = self.cpu1 - self.cpu0
        busy, total = (b - a for a, b in zip(self.box0, self.box1, strict=True))
        run.box_busy = busy / total if total else 0.0
        run.rss_mb = tree_hwm_mb(self.pid)
        run.uvloop = uvloop_loaded(self.pid)


# ---------------------------------------------------------------- the bench


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.tag = f"bench-{uuid.uuid4().hex[:8]}"
        self.prefix = f"{self.tag}."
        self.broker_url = os.environ.get("KIZUNA_BROKER", "kafka://127.0.0.1:19092")
        self.bootstrap = self.broker_url.split(",")[0].removeprefix("kafka://")
        self.redis_url = os.environ.get("KIZUNA_REDIS_URL", "redis://127.0.0.1:16379/0")
        self.work = BENCH_DIR / self.tag
        self.topics = {name: f"{self.prefix}{name}" for name in INPUTS}
        self.redis_prefixes: list[str] = []
        self.loop = args.loop

    # ------------------------------------------------------------ setup

    def base_env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("KIZUNA_", "F_LOOP"))}
        env.pop("FAUST_LOOP", None)
        if self.loop != "asyncio":
            env["F_LOOP"] = self.loop
        return env

    def kizuna_env(self, app_id: str, guarantee: str) -> dict[str, str]:
        redis_prefix = f"{self.tag}-{app_id}:"
        self.redis_prefixes.append(redis_prefix)
        return {
            **self.base_env(),
            "KIZUNA_BROKER": self.broker_url,
            "KIZUNA_REDIS_URL": self.redis_url,
            "KIZUNA_TOPIC_PREFIX": self.prefix,
            "KIZUNA_REDIS_PREFIX": redis_prefix,
            "KIZUNA_APP_ID": app_id,
            "KIZUNA_DATA_DIR": str(self.work / app_id),
            "KIZUNA_WEB_PORT": str(free_port()),
            "KIZUNA_PARTITIONS": str(self.args.partitions),
            "KIZUNA_CLOCK_MODE": "wall",
            "KIZUNA_PROCESSING_GUARANTEE": guarantee,
        }

    def kizuna_topics(self, env: dict[str, str]) -> None:
        subprocess.run(
            [str(VENV_BIN / "kizuna"), "topics"],
            env=env,
            cwd=REPO,
            check=True,
            capture_output=True,
            timeout=120,
        )

    def events(self) -> list[dict[str, Any]]:
        """The data set, in time order: ~30% purchases, ~55% page views, ~15% tickets."""
        rng = random.Random(self.args.seed)
        n, customers = self.args.events, self.args.customers
        now_ms = int(time.time() * 1000) - 60_000
        span_ms = 2 * 86_400_000
        stamps = sorted(rng.randrange(now_ms - span_ms, now_ms) for _ in range(n))
        pages, page_w = zip(*PAGE_WEIGHTS.items(), strict=True)
        cats, cat_w = zip(*TICKET_CATEGORIES.items(), strict=True)
        open_tickets: dict[str, list[str]] = {}
        out = []
        for i, ms in enumerate(stamps):
            cid = f"c{rng.randrange(customers):07d}"
            at = dt.datetime.fromtimestamp(ms / 1000, tz=JST).isoformat(timespec="milliseconds")
            kind = rng.random()
            if kind < 0.30:
                amount = float(rng.randrange(500, 20_000, 10))
                categories = tuple(rng.sample(CATEGORIES, rng.choice((1, 1, 2, 3))))
                out.append(
                    purchase(
                        cid, at, amount, event_id=f"p{i}", order_id=f"o{i}", categories=categories
                    )
                )
            elif kind < 0.85:
                page = rng.choices(pages, page_w)[0]
                out.append(page_view(cid, at, page, event_id=f"v{i}"))
            else:
                mine = open_tickets.setdefault(cid, [])
                if mine and rng.random() < 0.6:
                    tid = mine.pop(0)
                    status, category = rng.choice(("resolved", "closed")), "question"
                else:
                    tid, status = f"t{i}", "opened"
                    category = rng.choices(cats, cat_w)[0]
                    mine.append(tid)
                out.append(ticket(cid, at, tid, status, category, event_id=f"t{i}"))
        return out

    async def produce(self, events: list[dict[str, Any]]) -> dict[str, int]:
        from aiokafka import AIOKafkaProducer

        topic_of = {"purchase": "purchases", "page_view": "page-views"}
        counts = dict.fromkeys(INPUTS, 0)
        producer = AIOKafkaProducer(
            bootstrap_servers=self.bootstrap, acks="all", linger_ms=20, max_batch_size=262_144
        )
        await producer.start()
        try:
            pending = []
            for event in events:
                name = topic_of.get(event["type"], "support-tickets")
                counts[name] += 1
                pending.append(
                    await producer.send(
                        self.topics[name], orjson.dumps(event), key=event["customer_id"].encode()
                    )
                )
                if len(pending) >= 20_000:
                    await asyncio.gather(*pending)
                    pending.clear()
            await asyncio.gather(*pending)
        finally:
            await producer.stop()
        return counts

    def ensure_quix_venv(self) -> str:
        python = QUIX_VENV / "bin" / "python"
        if not python.exists():
            print(f"creating {QUIX_VENV} (quixstreams, orjson) ...", flush=True)
            subprocess.run(["python3.11", "-m", "venv", str(QUIX_VENV)], check=True)
            subprocess.run(
                [str(python), "-m", "pip", "install", "-q", "quixstreams", "orjson"], check=True
            )
        version = subprocess.run(
            [str(python), "-c", "import quixstreams; print(quixstreams.__version__)"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
        return version

    # ------------------------------------------------------------ runs

    def run_peer(self, system: str, rnd: int, cmd: list[str], env: dict[str, str]) -> Run:
        run = Run(system, rnd)
        log_path = self.work / f"{system}-r{rnd}.log"
        started = time.monotonic()
        with log_path.open("wb") as log:
            proc = subprocess.Popen(
                cmd,
                env=env,
                cwd=REPO,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log,
                start_new_session=True,
            )
        window = Window(proc.pid)
        lines: queue.Queue[list[str]] = queue.Queue()

        def read() -> None:
            assert proc.stdout is not None
            for raw in proc.stdout:
                words = raw.decode(errors="replace").split()
                if words[:1] != ["@@bench"]:
                    continue
                if words[1] == "first":
                    window.open()  # sampled in this thread, as soon as the line arrives
                elif words[1] == "done":
                    window.close()
                    window.fill(run)
                lines.put(words[1:])
            lines.put(["eof"])

        threading.Thread(target=read, daemon=True).start()
        deadline = started + self.args.time_cap + 300
        try:
            while True:
                try:
                    words = lines.get(timeout=max(0.1, deadline - time.monotonic()))
                except queue.Empty:
                    run.error = "timed out"
                    break
                if words[0] == "first":
                    run.startup_s = time.monotonic() - started
                elif words[0] == "triggers":
                    run.triggers = run.loyal_promotion = int(words[1])
                elif words[0] == "done":
                    run.events = int(words[1])
                    run.seconds = float(words[3]) - float(words[2])
                    break
                elif words[0] == "eof":
                    run.error = f"exited with {proc.wait()} before done; see {log_path}"
                    break
        finally:
            self.stop(proc, graceful=False)
        return run

    def run_kizuna(self, system: str, rnd: int) -> Run:
        run = Run(system, rnd)
        guarantee = "exactly_once" if system == "kizuna-eos" else "at_least_once"
        app_id = f"{system}-r{rnd}"
        env = self.kizuna_env(app_id, guarantee)
        self.kizuna_topics(env)
        url = f"http://127.0.0.1:{env['KIZUNA_WEB_PORT']}/kizuna/stats/"
        log_path = self.work / f"{app_id}.log"
        started = time.monotonic()
        with log_path.open("wb") as log:
            proc = subprocess.Popen(
                [str(VENV_BIN / "kizuna"), "worker"],
                env=env,
                cwd=REPO,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        window = Window(proc.pid)
        deadline = started + self.args.time_cap + 300
        first: tuple[float, int] | None = None
        counters: dict[str, int] = {}
        try:
            while time.monotonic() < deadline:
                if proc.poll() is not None:
                    run.error = f"worker exited with {proc.returncode}; see {log_path}"
                    break
                time.sleep(0.25)
                try:
                    with urllib.request.urlopen(url, timeout=5) as resp:
                        counters = json.load(resp)["counters"]
                except (OSError, ValueError):
                    continue
                now = time.time()
                done = sum(v for k, v in counters.items() if k.startswith("events."))
                done += counters.get("dead_letter.total", 0)
                if first is None:
                    if done > 0:
                        window.open()
                        first = (now, done)
                        run.startup_s = time.monotonic() - started
                    continue
                if done >= self.args.events or now - first[0] >= self.args.time_cap:
                    window.close()
                    window.fill(run)
                    run.events, run.seconds = done - first[1], now - first[0]
                    run.triggers = sum(v for k, v in counters.items() if k.startswith("triggers."))
                    run.loyal_promotion = counters.get("triggers.loyal_promotion", 0)
                    if done >= self.args.events:
                        counters = self.settle(url, counters, proc)
                    break
            else:
                run.error = f"timed out; see {log_path}"
        finally:
            self.stop(proc, graceful=True)
        # triggers_in_window: counted when the window closed (part of the measured run);
        # the rest fired after it, once the worker's backlog barrier let it (not timed)
        run.extra = {
            k: v
            for k, v in counters.items()
            if k.startswith(("events.", "dead_letter.total", "triggers."))
        }
        run.extra["triggers_in_window"] = run.triggers
        run.extra["triggers_after"] = sum(
            v for k, v in counters.items() if k.startswith("triggers.")
        )
        return run

    @staticmethod
    def settle(url: str, counters: dict[str, int], proc: subprocess.Popen[bytes]) -> dict[str, int]:
        """Counters once the triggers stop growing (5 s unchanged, 60 s at most): a
        worker that processed the whole backlog fires what fell due during it."""
        last, since, deadline = counters, time.monotonic(), time.monotonic() + 60
        while time.monotonic() < deadline and time.monotonic() - since < 5 and proc.poll() is None:
            time.sleep(0.5)
            with (
                contextlib.suppress(OSError, ValueError),
                urllib.request.urlopen(url, timeout=5) as r,
            ):
                now = json.load(r)["counters"]
                if {k: v for k, v in now.items() if k.startswith("triggers.")} != {
                    k: v for k, v in last.items() if k.startswith("triggers.")
                }:
                    since = time.monotonic()
                last = now
        return last

    @staticmethod
    def stop(proc: subprocess.Popen[bytes], *, graceful: bool) -> None:
        if proc.poll() is not None:
            return
        if graceful:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
        elif proc.stdin is not None:
            with contextlib.suppress(OSError):
                proc.stdin.close()  # the peers exit when their stdin closes
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)

    def run_system(self, system: str, rnd: int) -> Run:
        n, cap = str(self.args.events), str(self.args.time_cap)
        topics = ",".join(self.topics[t] for t in INPUTS)
        name = f"{self.prefix}{system}-r{rnd}"
        if system == "aiokafka":
            cmd = [sys.executable, "-m", "bench.peers.aiokafka_loop", "--broker", self.bootstrap]
            cmd += ["--topics", topics, "--group", name, "--events", n, "--time-cap", cap]
            return self.run_peer(system, rnd, cmd, self.base_env())
        if system == "faust":
            cmd = [sys.executable, "-m", "bench.peers.faust_agent", "--broker", self.broker_url]
            cmd += ["--topics", topics, "--app-id", name, "--events", n, "--time-cap", cap]
            cmd += ["--partitions", str(self.args.partitions)]
            cmd += ["--data-dir", str(self.work / f"faust-r{rnd}")]
            return self.run_peer(system, rnd, cmd, self.base_env())
        if system == "quix":
            cmd = [str(QUIX_VENV / "bin" / "python"), str(REPO / "bench/peers/quix_app.py")]
            cmd += ["--broker", self.bootstrap, "--purchases", self.topics["purchases"]]
            cmd += ["--page-views", self.topics["page-views"]]
            cmd += ["--tickets", self.topics["support-tickets"]]
            cmd += ["--triggers", f"{self.prefix}quix-triggers", "--group", name]
            cmd += ["--state-dir", str(self.work / f"quix-r{rnd}"), "--events", n]
            cmd += ["--time-cap", cap, "--guarantee", "at-least-once"]
            return self.run_peer(system, rnd, cmd, self.base_env())
        return self.run_kizuna(system, rnd)

    # ------------------------------------------------------------ cleanup

    async def cleanup(self) -> None:
        from aiokafka.admin import AIOKafkaAdminClient

        admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap)
        await admin.start()
        try:
            topics = [t for t in await admin.list_topics() if self.tag in t]
            if topics:
                await admin.delete_topics(topics)
            groups = [g[0] for g in await admin.list_consumer_groups() if self.tag in g[0]]
            if groups:
                with contextlib.suppress(Exception):
                    await admin.delete_consumer_groups(groups)
            print(f"deleted {len(topics)} topics and {len(groups)} consumer groups ({self.tag})")
        finally:
            await admin.close()
        import redis.asyncio as aioredis

        client = aioredis.from_url(self.redis_url)
        try:
            keys = 0
            for prefix in self.redis_prefixes:
                async for key in client.scan_iter(match=f"{prefix}*", count=1000):
                    keys += await client.delete(key)
            print(f"deleted {keys} Redis keys")
        finally:
            await client.aclose()
        shutil.rmtree(self.work, ignore_errors=True)

    # ------------------------------------------------------------ main

    def main(self) -> list[Run]:
        args = self.args
        systems = [s.strip() for s in args.systems.split(",") if s.strip()]
        unknown = set(systems) - set(SYSTEMS)
        if unknown:
            raise SystemExit(f"unknown systems: {sorted(unknown)}; choose from {SYSTEMS}")
        self.work.mkdir(parents=True, exist_ok=True)
        print(
            f"bench {self.tag}: {args.events:,} events, {args.customers:,} customers, "
            f"{args.partitions} partitions, {args.rounds} rounds, time cap {args.time_cap:g} s, "
            f"loop {self.loop}; {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}",
            flush=True,
        )
        if "quix" in systems:
            print(f"quixstreams {self.ensure_quix_venv()} in {QUIX_VENV}", flush=True)
        runs: list[Run] = []
        try:
            self.kizuna_topics(self.kizuna_env("setup", "at_least_once"))
            t0 = time.monotonic()
            events = self.events()
            counts = asyncio.run(self.produce(events))
            del events
            print(f"produced {counts} in {time.monotonic() - t0:.1f} s", flush=True)
            for rnd in range(1, args.rounds + 1):
                order = systems if rnd % 2 else systems[::-1]
                for system in order:
                    run = self.run_system(system, rnd)
                    runs.append(run)
                    print(describe(run), flush=True)
        finally:
            (BENCH_DIR / f"{self.tag}.json").write_text(
                json.dumps([{**asdict(r), "rate": r.rate} for r in runs], indent=1)
            )
            if args.keep:
                print(f"kept topics {self.prefix}*, data in {self.work}")
            else:
                asyncio.run(self.cleanup())
        print()
        print(table(runs, systems))
        print(f"\nruns as JSON: {BENCH_DIR / f'{self.tag}.json'}")
        return runs


def describe(run: Run) -> str:
    if run.error:
        return f"round {run.round} {run.system}: FAILED ({run.error})"
    return (
        f"round {run.round} {run.system:<10} {run.events:>8,} events in {run.seconds:6.1f} s "
        f"= {run.rate:>9,.0f}/s, CPU {run.cpu_ms_per_1k:7.1f} ms/1k, peak RSS "
        f"{run.rss_mb:5.0f} MB, uvloop {'yes' if run.uvloop else 'no'}, triggers "
        f"{run.triggers:,} (loyal_promotion {run.loyal_promotion:,}; "
        f"{run.extra.get('triggers_after', run.triggers):,} once settled), startup "
        f"{run.startup_s:.1f} s, box busy {100 * run.box_busy:.0f}%"
    )


def triggers(run: Run) -> str:
    after = run.extra.get("triggers_after", run.triggers)
    return f"{run.triggers:,}" if after == run.triggers else f"{run.triggers:,} ({after:,} after)"


def table(runs: list[Run], systems: list[str]) -> str:
    rows = [
        "| system | events/s (median) | per round | CPU ms / 1,000 events | peak RSS MB "
        "| events measured | triggers in window | loop |",
        "|---|---|---|---|---|---|---|---|",
    ]
    rate: dict[str, float] = {}
    for system in systems:
        ok = [r for r in runs if r.system == system and not r.error]
        if not ok:
            rows.append(f"| {system} | failed | | | | | | |")
            continue
        rate[system] = statistics.median(r.rate for r in ok)
        cpu = statistics.median(r.cpu_ms_per_1k for r in ok)
        per_round = ", ".join(f"{r.rate:,.0f}" for r in ok)
        if system == "quix":
            loop = "none (librdkafka, synchronous)"
        else:
            loop = "uvloop" if all(r.uvloop for r in ok) else "asyncio"
            loop = "mixed" if loop == "asyncio" and any(r.uvloop for r in ok) else loop
        rows.append(
            f"| {system} | {rate[system]:,.0f} | {per_round} | {cpu:,.1f} | "
            f"{max(r.rss_mb for r in ok):,.0f} | {', '.join(f'{r.events:,}' for r in ok)} | "
            f"{', '.join(map(triggers, ok))} | {loop} |"
        )
    ratios = [
        ("Kizuna / Faust", "kizuna", "faust", ">= 0.50"),
        ("Kizuna-EOS / Kizuna", "kizuna-eos", "kizuna", ">= 0.80"),
        ("Kizuna / Quix", "kizuna", "quix", ""),
        ("Kizuna / aiokafka", "kizuna", "aiokafka", ""),
    ]
    rows += ["", "| ratio (median rates) | value | target |", "|---|---|---|"]
    for label, a, b, target in ratios:
        if a in rate and b in rate and rate[b]:
            value = rate[a] / rate[b]
            verdict = ""
            if target:
                verdict = " (met)" if value >= float(target.split()[1]) else " (not met)"
            rows.append(f"| {label} | {value:.3f} | {target}{verdict} |")
    return "\n".join(rows)


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--systems", default=",".join(SYSTEMS))
    parser.add_argument(
        "--time-cap",
        type=float,
        default=120.0,
        help="seconds after its first event at which a run stops and counts what it processed",
    )
    parser.add_argument(
        "--loop",
        default="uvloop" if importlib.util.find_spec("uvloop") else "asyncio",
        choices=("uvloop", "asyncio"),
        help="event loop of the Faust agent and the Kizuna worker (F_LOOP)",
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--keep", action="store_true", help="keep topics, groups and data")
    return parser.parse_args(argv)


if __name__ == "__main__":
    Bench(parse()).main()
