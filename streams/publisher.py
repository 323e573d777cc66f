"""Publish a JSON-lines file of events to the input topics.

Each line is one JSON object with a ``type`` (purchase, page_view,
support_ticket, customer_profile); it goes to that type's topic keyed by its
``customer_id``. The publisher does not validate events beyond routing them:
the pipeline does, and dead-letters what is wrong, so a file can carry bad
events on purpose. Lines that cannot be routed at all (not JSON, no known
``type``) are reported with their line number and skipped.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaProducer

from schemas.contract import EVENT_TYPES_BY_NAME
from schemas.ticks import TICK_HEADERS, encode_tick
from schemas.timestamps import day_index
from schemas.validation import parse_timestamp_ms
from streams.config import Settings
from streams.topics import TopicNames


@dataclass(frozen=True)
class Routed:
    """One line ready to send: topic, key bytes (or None) and the line's bytes."""

    line_no: int
    topic: str
    key: bytes | None
    value: bytes
    event: dict[str, Any]


@dataclass
class PublishReport:
    published: int = 0
    by_topic: dict[str, int] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)
    ticks: int = 0
    after_until: int = 0

    def count(self, item: Routed) -> None:
        self.published += 1
        self.by_topic[item.topic] = self.by_topic.get(item.topic, 0) + 1


def _producer(settings: Settings) -> AIOKafkaProducer:
    """Idempotent, acks=all: per-partition order survives retries."""
    return AIOKafkaProducer(
        bootstrap_servers=settings.bootstrap_servers,
        acks="all",
        enable_idempotence=True,
        linger_ms=5,
    )


def route_lines(lines: Iterable[bytes], names: TopicNames) -> Iterator[Routed | str]:
    """Route each non-blank line, yielding a :class:`Routed` or a ``"line N: why"`` string."""
    for line_no, raw in enumerate(lines, start=1):
        line = raw.strip()
        if not line:
            continue
        try:
            event = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            yield f"line {line_no}: not valid JSON ({exc})"
            continue
        if not isinstance(event, dict):
            yield f"line {line_no}: expected a JSON object"
            continue
        etype = event.get("type")
        if etype not in EVENT_TYPES_BY_NAME:
            known = ", ".join(EVENT_TYPES_BY_NAME)
            yield f"line {line_no}: type {etype!r} is not one of {known}"
            continue
        customer_id = event.get("customer_id")
        key = customer_id.encode() if isinstance(customer_id, str) and customer_id else None
        yield Routed(line_no, names.inputs[etype], key, line, event)


async def publish_routed(
    settings: Settings, items: Iterable[Routed | str], report: PublishReport
) -> PublishReport:
    """Send routed lines in file order (per partition order is kept) and wait for acks."""
    producer = _producer(settings)
    await producer.start()
    try:
        pending = []
        for item in items:
            if isinstance(item, str):
                report.skipped.append(item)
                continue
            pending.append(await producer.send(item.topic, item.value, key=item.key))
            report.count(item)
            if len(pending) >= 1000:
                for fut in pending:
                    await fut
                pending.clear()
        for fut in pending:
            await fut
    finally:
        await producer.stop()
    return report


async def publish_file(settings: Settings, path: Path) -> PublishReport:
    """Publish every routable line of ``path``."""
    names = TopicNames.from_settings(settings)
    with path.open("rb") as fh:
        return await publish_routed(settings, route_lines(fh, names), PublishReport())


def _event_time(item: Routed, fallback: int) -> int:
    value = item.event.get("occurred_at")
    try:
        return parse_timestamp_ms(value) if isinstance(value, str) else fallback
    except ValueError:
        return fallback


def event_clock_order(items: Iterable[Routed]) -> list[tuple[int, Routed]]:
    """Routed lines sorted by event time (file order breaks ties). A line without a
    valid ``occurred_at`` (it will be dead-lettered) keeps the time of the line before."""
    timed = []
    last = -(2**62)
    for item in items:
        last = _event_time(item, last)
        timed.append((last, item))
    return sorted(timed, key=lambda ti: (ti[0], ti[1].line_no))


async def publish_event_clock(
    settings: Settings, path: Path, *, until_ms: int | None = None
) -> PublishReport:
    """Publish ``path`` in event-time order with clock ticks, for a worker in event mode.

    Before the first event of each new UTC day, and once at the end (at ``until_ms``,
    default the last event's time), a tick goes to every partition of every input
    topic, promising that everything up to it has been sent. Events after
    ``until_ms`` are not sent (``report.after_until``).
    """
    names = TopicNames.from_settings(settings)
    report = PublishReport()
    with path.open("rb") as fh:
        routed: list[Routed] = []
        for item in route_lines(fh, names):
            if isinstance(item, str):
                report.skipped.append(item)
            else:
                routed.append(item)
    ordered = event_clock_order(routed)
    producer = _producer(settings)
    await producer.start()
    try:
        last_tick_day: int | None = None
        last_ms: int | None = None
        for at_ms, item in ordered:
            if until_ms is not None and at_ms > until_ms:
                report.after_until += 1
                continue
            if last_tick_day is None or day_index(at_ms) > last_tick_day:
                await _send_ticks(producer, settings, names, at_ms - 1, report)
                last_tick_day = day_index(at_ms)
            await producer.send(item.topic, item.value, key=item.key)
            report.count(item)
            last_ms = at_ms
        end = until_ms if until_ms is not None else last_ms
        if end is not None:
            await _send_ticks(producer, settings, names, end, report)
        await producer.flush()
    finally:
        await producer.stop()
    return report


async def _send_ticks(
    producer: AIOKafkaProducer,
    settings: Settings,
    names: TopicNames,
    at_ms: int,
    report: PublishReport,
) -> None:
    value = encode_tick(at_ms)
    for topic in names.inputs.values():
        for partition in range(settings.kafka.partitions):
            await producer.send(topic, value, partition=partition, headers=TICK_HEADERS)
            report.ticks += 1
