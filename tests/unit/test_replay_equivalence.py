"""The Kafka path's semantics, simulated without Kafka, give the backtest's triggers.

On the Kafka path each input topic-partition is consumed in time order, but
the topics interleave arbitrarily: one can run a year ahead of another. The
worker folds every event as it comes, fires a partition's timers below its
watermark (the minimum progress over the topics) and prunes only below that
horizon. This simulation does exactly that for random interleavings and must
produce the backtest's triggers byte for byte — every rule of the catalogue
included. (The integration test checks the real worker on the real broker.)
"""

from __future__ import annotations

import random
from collections import Counter, defaultdict

import orjson
import pytest

from agents.domain.backtest import BacktestReport, load_events, run_backtest
from agents.domain.co_purchase import CoPurchaseModel
from agents.domain.customer_state import CustomerState
from agents.domain.engine import EngineConfig, process_event
from agents.domain.lifecycle import fire_due_timers, next_due
from agents.domain.rulebook import RULE_TYPES, Rulebook
from agents.domain.timer_index import TimerIndex
from schemas.events import CustomerEvent
from schemas.timestamps import MS_PER_DAY, to_ms
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
    """One partition consuming its four topics in random bursts of up to ``burst`` records."""
    rng = random.Random(seed)
    topics: dict[str, list[CustomerEvent]] = defaultdict(list)
    for event in events:
        topics[type(event).__name__].append(event)
    cursor = dict.fromkeys(topics, 0)
    progress: dict[str, int] = {}
    states: dict[str, CustomerState] = {}
    index, model = TimerIndex(), CoPurchaseModel()
    triggers: list[Trigger] = []

    def watermark() -> int:
        return min(progress.values()) if len(progress) == len(topics) else NEVER

    def fire(bound: int) -> None:
        for customer_id in index.pop_due(0, bound):
            state = states[customer_id]
            triggers.extend(
                fire_due_timers(state, before_ms=bound, book=engine.rules, co_purchases=model)
            )
            index.schedule(0, customer_id, next_due(state))
        model.fold(max(bound, model.folded_before))

    while busy := [t for t in topics if cursor[t] < len(topics[t])]:
        topic = rng.choice(busy)
        for event in topics[topic][cursor[topic] : cursor[topic] + rng.randrange(1, burst)]:
            cursor[topic] += 1
            occurred = to_ms(event.occurred_at)
            progress[topic] = max(progress.get(topic, occurred), occurred)
            state = states.setdefault(event.customer_id, CustomerState(event.customer_id))
            step = process_event(state, event, engine, horizon_ms=watermark())
            model.add(occurred, step.co_purchased)
            index.schedule(0, event.customer_id, next_due(state))
            fire(watermark())
    fire(UNTIL + 1)  # the publisher's final tick on every topic
    return triggers


@pytest.mark.parametrize(("seed", "burst"), [(1, 40), (2, 400)])
def test_any_interleaving_of_the_topics_fires_the_backtest_triggers(seed: int, burst: int) -> None:
    events = load(70)
    engine = config(Rulebook())
    expected = list(run_backtest(events, engine, until_ms=UNTIL, report=BacktestReport()))
    rules = Counter(t.rule for t in expected)
    assert set(rules) == {t.name for t in RULE_TYPES}, f"every rule must fire: {rules}"

    got = kafka_like(events, engine, seed, burst)

    key = lambda t: t.trigger_id  # noqa: E731
    assert sorted(map(orjson.dumps, sorted(got, key=key))) == sorted(
        map(orjson.dumps, sorted(expected, key=key))
    )


def test_a_backfill_in_any_order_fires_the_backtest_triggers_once_caught_up() -> None:
    """A wall-clock worker backfilling history applies it in whatever order it was
    published (here: shuffled) and fires only once the backlog is processed.

    Cross-sell is left out: a co-purchase is stamped with the purchase that completes
    the pair *in processing order*, so out-of-order history shifts some stamps (a
    documented limit; replays in time order, as in event mode, are exact)."""
    events = load(50)
    engine = config(Rulebook())
    expected = list(run_backtest(events, engine, until_ms=UNTIL, report=BacktestReport()))
    shuffled = list(events)
    random.Random(3).shuffle(shuffled)
    states: dict[str, CustomerState] = {}
    model = CoPurchaseModel()
    for event in shuffled:
        state = states.setdefault(event.customer_id, CustomerState(event.customer_id))
        step = process_event(state, event, engine, horizon_ms=NEVER)  # still behind
        model.add(to_ms(event.occurred_at), step.co_purchased)
    expected = [t for t in expected if t.rule != "cross_sell"]
    got = [
        trigger
        for customer_id in sorted(states)
        for trigger in fire_due_timers(
            states[customer_id], before_ms=UNTIL + 1, book=engine.rules, co_purchases=model
        )
        if trigger.rule != "cross_sell"
    ]
    assert sorted(t.trigger_id for t in got) == sorted(t.trigger_id for t in expected)
    assert sorted(map(orjson.dumps, got)) == sorted(map(orjson.dumps, expected))
