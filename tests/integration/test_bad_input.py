"""Hostile input through the real worker: it keeps running, every bad record is
dead-lettered with its reason, and the good events' state equals the backtest's.

About 2,000 records: a generated history of good events interleaved with bad
records of every kind (``tests/bad_inputs.py``) and a few records whose
processing raises (``tests/integration/poison_worker.py``), in event-clock mode
so no timer fires and the comparison with the backtest is exact.
"""

from __future__ import annotations

import random
from collections import Counter
from pathlib import Path

import orjson

from agents.domain.backtest import BacktestReport, load_events, run_backtest
from agents.domain.customer_state import CustomerState
from agents.domain.customer_view import summarize
from schemas.contract import EVENT_TYPES
from schemas.customer_row import encode_row
from schemas.validation import PROCESSING_ERROR, Rejection, decode_event, parse_timestamp_ms
from tests.bad_inputs import bad_message
from tests.generators import generate_history
from tests.integration.harness import (
    Namespace,
    WorkerProcess,
    encode,
    produce,
    read_topic,
    wait_for,
    worker_counters,
)
from tests.integration.poison_worker import POISON_PREFIX
from tests.integration.test_ingest_pipeline import customer_row
from tests.integration.test_ingest_pipeline import stats as redis_stats

START = parse_timestamp_ms("2025-01-01T00:00:00Z")
BAD_RECORDS = 1_000
POISONED = 12
#: Summary fields derived from the facts alone (not from what fired or when it was
#: processed), compared with the backtest's as of the row's own ``as_of``.
COMPARED = (
    "stage",
    "stage_changed_at",
    "stage_history",
    "first_seen_at",
    "last_event_at",
    "first_purchase_at",
    "last_purchase_at",
    "purchase_count",
    "lifetime_spend",
    "purchases_365d",
    "spend_365d",
    "top_categories",
    "last_visit_at",
    "page_views_30d",
    "high_intent_views_30d",
    "open_tickets",
    "trouble_tickets_30d",
    "consent",
)

Wire = tuple[str, bytes | None, bytes | None]


async def test_hostile_input_is_dead_lettered_and_the_good_state_equals_the_backtest(
    stack_env: dict[str, str], tmp_path: Path
) -> None:
    ns = Namespace.create(stack_env, tmp_path, KIZUNA_CLOCK_MODE="event")
    await ns.ensure_topics()
    policy, engine = ns.settings.validation_policy(), ns.settings.engine_config()
    topic_of = ns.topics.inputs

    goods = generate_history(11, 40, START, 300)
    customers = sorted({e["customer_id"] for e in goods})
    rng = random.Random(20260301)
    bad: list[tuple[Wire, str]] = []  # the message and the code the worker must give it
    for _ in range(BAD_RECORDS):
        etype = rng.choice(EVENT_TYPES).name
        key, value = bad_message(rng, etype, rng.choice(customers))
        expected = decode_event(etype, key, value, now_ms=None, policy=policy)
        assert isinstance(expected, Rejection), (etype, key, value)
        bad.append(((topic_of[etype], key, value), expected.code))
    for i in range(POISONED):  # valid, but the poisoned engine step raises on them
        event = {**goods[i * 7], "event_id": f"{POISON_PREFIX}{i}"}
        bad.append(((topic_of[event["type"]], *encode(event)), PROCESSING_ERROR))
    good_messages: list[Wire] = [(topic_of[e["type"]], *encode(e)) for e in goods]

    # Interleave: the good events keep their order, bad records fall in between.
    slots = sorted(rng.sample(range(len(goods) + len(bad)), len(bad)))
    messages: list[Wire] = []
    codes: dict[int, str] = {}  # index in messages -> expected code
    good_iter, bad_iter = iter(good_messages), iter(bad)
    for i in range(len(goods) + len(bad)):
        if slots and slots[0] == i:
            slots.pop(0)
            message, code = next(bad_iter)
            codes[i] = code
            messages.append(message)
        else:
            messages.append(next(good_iter))
    sent = await produce(ns.settings, messages)
    expected_by_origin = {sent[i]: code for i, code in codes.items()}

    worker = WorkerProcess(ns, module="tests.integration.poison_worker").start()
    try:
        counters = await wait_for(
            lambda: worker_counters(ns),
            lambda c: handled(c) >= len(messages) and c.get("redis.pending", 1) == 0,
            worker=worker,
            timeout=120,
            what=f"{len(messages)} records handled and mirrored",
        )
        letters = await read_topic(ns.settings, ns.topics.dead_letter, expect=len(bad))
        rows = {c: await customer_row(ns, c) for c in customers}
        stats = await redis_stats(ns)
        worker.assert_alive()
    finally:
        worker.stop()

    # Every bad record is on the dead-letter topic, once, with its reason code.
    assert handled(counters) == len(messages)
    assert len(letters) == len(bad)
    got: dict[tuple[str, int, int], str] = {}
    for letter in letters:
        headers = {k: v.decode() for k, v in letter.headers}
        assert headers["kizuna.reason"], headers
        origin = (
            headers["kizuna.source_topic"],
            int(headers["kizuna.source_partition"]),
            int(headers["kizuna.source_offset"]),
        )
        assert origin not in got, f"dead-lettered twice: {origin}"
        got[origin] = headers["kizuna.reason_code"]
    assert got == expected_by_origin
    poisoned = [m for m in letters if m.value and POISON_PREFIX.encode() in m.value]
    assert len(poisoned) == POISONED
    for letter in poisoned:
        reason = dict(letter.headers)["kizuna.reason"].decode()
        assert reason.startswith("ZeroDivisionError: injected failure for poison-"), reason

    # The counters add up: in the worker, in Redis, and with the topic.
    by_code = Counter(expected_by_origin.values())
    for source in (counters, stats):
        assert source["dead_letter.total"] == len(bad)
        assert {
            k.removeprefix("dead_letter."): n
            for k, n in source.items()
            if k.startswith("dead_letter.") and k != "dead_letter.total"
        } == dict(by_code)

    # The good events built exactly the backtest's customers.
    report = BacktestReport()
    lines = [orjson.dumps(e) for e in goods]
    states: dict[str, CustomerState] = {}
    list(
        run_backtest(
            load_events(lines, policy=policy, report=report),
            engine,
            until_ms=None,
            report=report,
            states=states,
        )
    )
    assert not report.rejected
    assert set(states) == set(customers)
    for customer_id in customers:
        row = rows[customer_id]
        assert row is not None, customer_id
        as_of = parse_timestamp_ms(row["as_of"])
        expected_row = encode_row(summarize(states[customer_id], as_of, engine))
        mismatched = {f: (row[f], expected_row[f]) for f in COMPARED if row[f] != expected_row[f]}
        assert not mismatched, (customer_id, mismatched)


def handled(counters: dict[str, int]) -> int:
    """Input records the worker is done with: folded (any outcome) or dead-lettered."""
    folded = sum(n for k, n in counters.items() if k.startswith("events."))
    return folded + counters.get("dead_letter.total", 0)
