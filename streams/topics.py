"""Kizuna's Kafka topics: their names and their creation.

Every topic keyed by customer id has ``[kafka] partitions`` partitions, so the
input topics, the customer table's changelog and the outputs are
co-partitioned: one worker owns a customer's whole history. An existing topic
with another partition count would break that silently, so
:func:`ensure_topics` refuses to go on and names it.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from schemas.contract import EVENT_TYPES
from streams.config import Settings

DEAD_LETTER = "dead-letter"
TRIGGERS = "triggers"
CLOCK_TICKS = "clock-ticks"
CO_PURCHASES = "co-purchases"


class TopologyError(RuntimeError):
    """The broker's topics do not match what Kizuna needs."""


@dataclass(frozen=True)
class TopicNames:
    """Full topic names under the configured prefix."""

    inputs: dict[str, str]  # event type name -> topic
    dead_letter: str
    triggers: str
    clock_ticks: str  # this app's own: wall-clock ticks (wall mode), stall-check wake-ups
    co_purchases: str  # this app's own: category-pair changes and progress, to every partition

    @classmethod
    def from_settings(cls, settings: Settings) -> TopicNames:
        """Inputs and outputs are named by the topic prefix; the topics a worker writes
        for itself by the prefix *and the app id*, so two apps on one prefix (a staging
        worker, a benchmark) never read each other's internal records."""
        own = f"{settings.kafka.topic_prefix}{settings.worker.app_id}-"
        return cls(
            inputs={t.name: settings.topic(t.topic) for t in EVENT_TYPES},
            dead_letter=settings.topic(DEAD_LETTER),
            triggers=settings.topic(TRIGGERS),
            clock_ticks=own + CLOCK_TICKS,
            co_purchases=own + CO_PURCHASES,
        )

    @property
    def internal(self) -> list[str]:
        """The topics only this app writes and reads."""
        return [self.clock_ticks, self.co_purchases]

    @property
    def all(self) -> list[str]:
        return [
            *self.inputs.values(),
            self.dead_letter,
            self.triggers,
            self.clock_ticks,
            self.co_purchases,
        ]


async def ensure_topics(settings: Settings, names: list[str], timeout_s: float = 30.0) -> None:
    """Create missing topics with the configured partition count; check existing ones.

    Waits until the broker reports every topic. Raises :class:`TopologyError`
    naming a topic whose partition count differs, or that never appears.
    """
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.bootstrap_servers)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [n for n in names if n not in existing]
        if missing:
            new_topics = [
                NewTopic(
                    name=n,
                    num_partitions=settings.kafka.partitions,
                    replication_factor=settings.kafka.replication_factor,
                )
                for n in missing
            ]
            with contextlib.suppress(TopicAlreadyExistsError):
                await admin.create_topics(new_topics)  # another worker may race us
        deadline = time.monotonic() + timeout_s
        while True:
            described = await admin.describe_topics(names)
            counts = {t["topic"]: len(t.get("partitions") or []) for t in described}
            leaderless = {
                t["topic"]
                for t in described
                if any(p.get("leader", -1) < 0 for p in t.get("partitions") or [])
            }
            absent = [n for n in names if counts.get(n, 0) == 0 or n in leaderless]
            if not absent:
                break
            if time.monotonic() > deadline:
                raise TopologyError(f"topic {absent[0]} did not get leaders within {timeout_s:g} s")
            await asyncio.sleep(0.2)
        for name in names:
            if counts[name] != settings.kafka.partitions:
                raise TopologyError(
                    f"topic {name} has {counts[name]} partitions but [kafka] partitions = "
                    f"{settings.kafka.partitions}; co-partitioning needs them equal "
                    "(recreate the topic or change the setting)"
                )
    finally:
        await admin.close()
