"""Helpers for tests against the real broker and Redis: isolated namespaces, workers, waits.

Each test gets its own topic prefix, Redis key prefix, app id and data
directory, so tests share one broker and one Redis without restarts.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from streams.config import Settings, load_settings
from streams.partition_reader import PartitionReader
from streams.read_model import RedisReadModel
from streams.topics import TopicNames, ensure_topics

REPO_ROOT = Path(__file__).resolve().parents[2]
T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rules_only_config(tmp: Path, *names: str) -> str:
    """A config file (shipped defaults) with only the rules ``names`` switched on;
    pass it as ``KIZUNA_CONFIG``."""
    from agents.domain.rulebook import RULE_TYPES

    shipped = (REPO_ROOT / "config" / "kizuna.toml").read_text(encoding="utf-8")
    rates = shipped[shipped.index("[currency.rates]") :].split("\n\n")[0]
    off = "".join(f"[rules.{t.name}]\nenabled = false\n" for t in RULE_TYPES if t.name not in names)
    path = tmp / "rules-only.toml"
    path.write_text(f"{rates}\n\n{off}", encoding="utf-8")
    return str(path)


@dataclass
class Namespace:
    """One test's private slice of the shared broker and Redis."""

    env: dict[str, str]
    data_dir: Path
    settings: Settings = field(init=False)

    def __post_init__(self) -> None:
        self.settings = load_settings(env=self.env)

    @classmethod
    def create(cls, base_env: Mapping[str, str], tmp: Path, **overrides: str) -> Namespace:
        tag = f"t{uuid.uuid4().hex[:10]}"
        env = {
            **base_env,
            "KIZUNA_TOPIC_PREFIX": f"{tag}.",
            "KIZUNA_REDIS_PREFIX": f"{tag}:",
            "KIZUNA_DATA_DIR": str(tmp / "worker-data"),
            "KIZUNA_WEB_PORT": str(free_port()),
            **overrides,
        }
        return cls(env=env, data_dir=tmp)

    @property
    def topics(self) -> TopicNames:
        return TopicNames.from_settings(self.settings)

    async def ensure_topics(self) -> None:
        await ensure_topics(self.settings, self.topics.all)

    def read_model(self) -> RedisReadModel:
        return RedisReadModel(self.settings.redis.url, self.settings.redis.key_prefix, 100)

    def run_cli(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "streams.cli", *args],
            env={**os.environ, **self.env},
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=timeout,
        )


class WorkerProcess:
    """A real ``kizuna worker`` subprocess with its log captured to a file."""

    def __init__(self, ns: Namespace, name: str = "worker", module: str = "streams.cli") -> None:
        self.ns = ns
        self.log_path = ns.data_dir / f"{name}.log"
        self.module = module  # the entry point: the CLI, or a test wrapper around it
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> WorkerProcess:
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", self.module, "worker"],
            env={**os.environ, **self.ns.env},
            cwd=REPO_ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        return self

    def stop(self, timeout: float = 30) -> int | None:
        """Graceful stop (SIGTERM); SIGKILL if it does not exit in ``timeout`` s."""
        if self.proc is None or self.proc.poll() is not None:
            return None if self.proc is None else self.proc.returncode
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return self.kill()

    def kill(self) -> int:
        """Crash the worker: SIGKILL, no chance to flush or commit."""
        assert self.proc is not None
        os.killpg(self.proc.pid, signal.SIGKILL)
        return self.proc.wait(10)

    def log_tail(self, lines: int = 60) -> str:
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def firing_helpers(self) -> list[int]:
        """Process ids of the worker's firing helpers (its ``streams.firing_helper`` children)."""
        assert self.proc is not None
        pid = self.proc.pid
        try:
            children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        except FileNotFoundError:  # the worker is gone
            return []
        helpers = []
        for child in map(int, children):
            try:
                if b"streams.firing_helper" in Path(f"/proc/{child}/cmdline").read_bytes():
                    helpers.append(child)
            except FileNotFoundError:  # exited meanwhile
                continue
        return helpers

    def assert_alive(self) -> None:
        assert self.proc is not None and self.proc.poll() is None, (
            f"worker exited with {self.proc and self.proc.returncode}:\n{self.log_tail()}"
        )


async def wait_for(
    probe: Callable[[], Awaitable[T]],
    done: Callable[[T], bool],
    *,
    timeout: float = 60,
    interval: float = 0.25,
    worker: WorkerProcess | None = None,
    what: str = "condition",
) -> T:
    """Poll ``probe`` until ``done(result)``; fail with the last result and worker log."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        if worker is not None:
            worker.assert_alive()
        last = await probe()
        if done(last):
            return last
        await asyncio.sleep(interval)
    tail = worker.log_tail() if worker else ""
    raise AssertionError(f"timed out after {timeout}s waiting for {what}; last={last!r}\n{tail}")


async def produce(
    settings: Settings, messages: list[tuple[str, bytes | None, bytes | None]]
) -> list[tuple[str, int, int]]:
    """Send (topic, key, value) messages in order; returns (topic, partition, offset) of each.

    All are queued before any is awaited (aiokafka keeps one request in flight per
    partition, so each partition still receives them in call order)."""
    producer = AIOKafkaProducer(bootstrap_servers=settings.bootstrap_servers, acks="all")
    await producer.start()
    try:
        futures = [await producer.send(topic, value, key=key) for topic, key, value in messages]
        return [
            (topic, meta.partition, meta.offset)
            for (topic, _, _), meta in zip(messages, await asyncio.gather(*futures), strict=True)
        ]
    finally:
        await producer.stop()


async def read_topic(
    settings: Settings, topic: str, *, expect: int, timeout: float = 30
) -> list[Any]:
    """Read ``topic`` from the beginning until ``expect`` messages arrived (or time out)."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=settings.bootstrap_servers,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        group_id=None,
    )
    await consumer.start()
    try:
        out: list[Any] = []
        deadline = time.monotonic() + timeout
        while len(out) < expect and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=500)
            for records in batch.values():
                out.extend(records)
        return out
    finally:
        await consumer.stop()


async def committed_offset(ns: Namespace, topic: str, partition: int) -> int | None:
    """The worker group's committed offset of ``topic[partition]`` (None: nothing yet)."""
    group = f"{ns.settings.kafka.topic_prefix}{ns.settings.worker.app_id}"
    reader = PartitionReader(ns.settings.bootstrap_servers, group, read_committed=False)
    try:
        committed, _ = await reader.start_offsets(topic, partition)
    finally:
        await reader.close()
    return committed


async def log_end(ns: Namespace, topic: str, partition: int) -> int:
    """The end offset of ``topic[partition]`` (the offset its next record will get)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=ns.settings.bootstrap_servers)
    await consumer.start()
    try:
        tp = TopicPartition(topic, partition)
        return int((await consumer.end_offsets([tp]))[tp])
    finally:
        await consumer.stop()


async def committed_to_the_end(ns: Namespace, topic: str, partition: int) -> bool:
    """Whether the worker group has committed every record of ``topic[partition]``."""
    return await committed_offset(ns, topic, partition) == await log_end(ns, topic, partition)


async def worker_counters(ns: Namespace) -> dict[str, int]:
    """The worker's own counters from its web view (``redis.pending`` included)."""
    url = f"http://127.0.0.1:{ns.env['KIZUNA_WEB_PORT']}/kizuna/stats/"
    try:
        async with aiohttp.ClientSession() as session, session.get(url) as resp:
            doc = await resp.json()
    except aiohttp.ClientError:
        return {"redis.pending": -1}
    return {**doc["counters"], "redis.pending": doc["redis"]["pending"]}


def encode(event: dict[str, Any]) -> tuple[bytes, bytes]:
    """(key, value) of an event dict as a storefront would send it."""
    return str(event["customer_id"]).encode(), orjson.dumps(event)
