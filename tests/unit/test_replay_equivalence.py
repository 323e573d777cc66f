"""The Kafka path's semantics, simulated without Kafka, give the backtest's triggers.

On the Kafka path each input topic-partition is consumed in time order, but
the topics interleave arbitrarily: one can run a year ahead of another. The
worker folds every event as it comes, fires a partition's moments below its
watermark (the minimum progress over the topics) and prunes only below that
horizon. This simulation does exactly that, through the same driver the
worker and the backtest use, for random interleavings, and must produce the
backtest's triggers byte for byte — every rule of the catalogue included.
(The integration test checks the real worker on the real broker.)
"""

from __future__ import annotations

import random
from collections import Counter, defaultdict

import orjson
import pytest

from agents.domain.backtest import BacktestReport, load_events, run_backtest
from agents.domain.driver import Driver
from agents.domain.engine import EngineConfig
from agents.domain.rulebook import RULE_TYPES, Rulebook
from schemas.events import CustomerEvent
from schemas.timestamps import MS_PER_DAY
from schemas.triggers import Trigger
from tests.factories import POLICY
from tests.generators import generate_history
from tests.rule_harness import DAY0, config

UNTIL = DAY0 + 480 * MS_PER_DAY
NEVER = -(2**62)


def load(customers: int) -> list[CustomerEvent]:
    lines = [orjson.dumps(e) for e in generate_history(7, customers, DAY0, 450, bad_every=300)]
    return load_events(
        lines, now_ms=UNTIL + 400 * MS_PER_DAY, policy=POLICY, report=BacktestReport()
    )


def kafka_like(
    events: list[CustomerEvent], engine: EngineConfig, seed: int, burst: int
) -> list[Trigger]:
    """One partition consuming its input topics in random bursts of up to ``burst`` records."""
    rng = random.Random(seed)
    topics: dict[str, list[CustomerEvent]] = defaultdict(list)
    for event in events:
        topics[type(event).__name__].append(event)
    cursor = dict.fromkeys(topics, 0)
    progress: dict[str, int] = {}
    driver = Driver(engine)
    triggers: list[Trigger] = []

    def watermark() -> int:
        return min(progress.values()) if len(progress) == len(topics) else NEVER

    while busy := [t for t in topics if cursor[t] < len(topics[t])]:
        topic = rng.choice(busy)
        for event in topics[topic][cursor[topic] : cursor[topic] + rng.randrange(1, burst)]:
            cursor[topic] += 1
            progress[topic] = max(progress.get(topic, event.occurred_ms), event.occurred_ms)
            step = driver.apply(event, horizon_ms=watermark())
            driver.share(step.co_purchases)
        triggers.extend(driver.fire(watermark()))
    triggers.extend(driver.fire(UNTIL + 1))  # the publisher's final tick on every topic
    return triggers


def as_bytes(triggers: list[Trigger]) -> list[bytes]:
    return sorted(orjson.dumps(t) for t in triggers)


@pytest.mark.parametrize(("seed", "burst"), [(1, 40), (2, 400)])
def test_any_interleaving_of_the_topics_fires_the_backtest_triggers(seed: int, burst: int) -> None:
    events = load(70)
    engine = config(Rulebook())
    expected = list(run_backtest(events, engine, until_ms=UNTIL, report=BacktestReport()))
    rules = Counter(t.rule for t in expected)
    assert set(rules) == {t.name for t in RULE_TYPES}, f"every rule must fire: {rules}"
    assert as_bytes(kafka_like(events, engine, seed, burst)) == as_bytes(expected)


def test_a_backfill_in_any_order_fires_the_backtest_triggers_once_caught_up() -> None:
    """A wall-clock worker backfilling history applies it in whatever order it was
    published (here: shuffled) and fires once the backlog is processed: the facts are
    the same whatever the order, so every rule fires as in the backtest, cross-sell
    included (a co-purchase is stamped from the customers' first purchase times)."""
    events = load(50)
    engine = config(Rulebook())
    expected = list(run_backtest(events, engine, until_ms=UNTIL, report=BacktestReport()))
    shuffled = list(events)
    random.Random(3).shuffle(shuffled)
    driver = Driver(engine)
    for event in shuffled:
        driver.share(driver.apply(event, horizon_ms=NEVER).co_purchases)  # still behind
    assert as_bytes(driver.fire(UNTIL + 1)) == as_bytes(expected)
