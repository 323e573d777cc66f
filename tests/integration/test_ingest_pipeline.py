"""The worker on a real broker and Redis: state, dead letters, restarts.

Events are published with aiokafka exactly as a storefront would; the
assertions read the Redis read model, the dead-letter topic and the CLI.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import orjson
import pytest

from agents.domain.customer_view import state_from_json
from schemas.timestamps import iso
from tests.factories import page_view, profile, purchase, ticket
from tests.integration.harness import (
    Namespace,
    WorkerProcess,
    committed_to_the_end,
    encode,
    produce,
    read_topic,
    wait_for,
    worker_counters,
)


def good(ns: Namespace, event: dict[str, Any]) -> tuple[str, bytes | None, bytes | None]:
    key, value = encode(event)
    return ns.topics.inputs[event["type"]], key, value


def raw(
    ns: Namespace, etype: str, key: bytes | None, value: bytes
) -> tuple[str, bytes | None, bytes]:
    return ns.topics.inputs[etype], key, value


async def customer_row(ns: Namespace, customer_id: str) -> dict[str, str] | None:
    model = ns.read_model()
    try:
        return await model.read_customer(customer_id)
    finally:
        await model.close()


async def stats(ns: Namespace) -> dict[str, int]:
    model = ns.read_model()
    try:
        return await model.read_stats()
    finally:
        await model.close()


def purchases(row: dict[str, str] | None) -> int:
    return -1 if row is None else int(row["purchase_count"])


def version_of(row: dict[str, str] | None) -> int:
    return -1 if row is None else int(row["version"])


async def test_good_events_build_state_and_every_bad_class_is_dead_lettered(ns: Namespace) -> None:
    await ns.ensure_topics()
    bad = [
        ("malformed_json", raw(ns, "purchase", b"c-1", b'{"event_id": "x1", "customer_id": "c-1"')),
        ("not_an_object", raw(ns, "page_view", b"c-1", b'["c-1"]')),
        ("missing_customer_id", good(ns, {**purchase("c-1", event_id="x3"), "customer_id": None})),
        (
            "missing_customer_id",
            raw(ns, "purchase", b"", orjson.dumps(purchase("", event_id="x4"))),
        ),
        ("negative_amount", good(ns, purchase("c-1", amount=-100, event_id="x5"))),
        ("bad_timestamp", good(ns, purchase("c-1", at="2026-03-01 10:00:00", event_id="x6"))),
        ("future_timestamp", good(ns, purchase("c-1", at="2999-01-01T00:00:00Z", event_id="x7"))),
        ("schema_violation", good(ns, page_view("c-2", page_type="blog", event_id="x8"))),
        ("key_mismatch", raw(ns, "purchase", b"c-9", orjson.dumps(purchase("c-1", event_id="x9")))),
        ("unsupported_currency", good(ns, purchase("c-1", currency="GBP", event_id="x10"))),
        ("wrong_event_type", raw(ns, "support_ticket", b"c-1", orjson.dumps(purchase("c-1")))),
    ]
    goods = [
        good(ns, purchase("c-1", at="2026-05-01T10:00:00+09:00", amount=3000, categories=("tea",))),
        good(ns, purchase("c-1", at="2026-06-01T10:00:00+09:00", amount=2500)),
        good(ns, purchase("c-1", at="2026-04-01T10:00:00+09:00", amount=1000)),  # late
        good(ns, purchase("c-1", at="2026-06-01T10:00:00+09:00", amount=2500)),  # duplicate id
        good(ns, page_view("c-2", at="2026-06-02T10:00:00Z", page_type="cart")),
        good(ns, page_view("c-2", at="2026-06-02T11:00:00Z", page_type="pricing")),
        good(ns, ticket("c-2", at="2026-06-03T10:00:00Z", category="complaint")),
        good(ns, profile("c-3", consent={"email": True, "line": False}, timezone="Asia/Tokyo")),
    ]
    # Interleave: bad input between good events must not disturb them.
    bad_messages = [m for _, m in bad]
    messages = [m for pair in zip(goods, bad_messages, strict=False) for m in pair]
    messages += bad_messages[len(goods) :]
    sent = await produce(ns.settings, messages)
    origin = {value: meta for (_, _, value), meta in zip(messages, sent, strict=True)}

    worker = WorkerProcess(ns).start()
    try:
        final = await wait_for(
            lambda: stats(ns),
            lambda s: s.get("dead_letter.total", 0) >= len(bad),
            worker=worker,
            what="dead-letter counter",
        )
        row = await wait_for(
            lambda: customer_row(ns, "c-1"),
            lambda r: purchases(r) >= 3,
            worker=worker,
            what="customer c-1 in Redis",
        )
        await wait_for(lambda: customer_row(ns, "c-3"), lambda r: r is not None, worker=worker)
        c2 = await wait_for(
            lambda: customer_row(ns, "c-2"), lambda r: version_of(r) >= 3, worker=worker
        )
        worker.assert_alive()
    finally:
        worker.stop()

    assert final["dead_letter.total"] == len(bad)
    for code in {code for code, _ in bad}:
        assert final[f"dead_letter.{code}"] == sum(1 for c, _ in bad if c == code), code

    assert row is not None and row["purchase_count"] == "3"
    assert float(row["lifetime_spend"]) == 6500.0
    assert row["last_purchase_at"] == "2026-06-01T01:00:00.000Z"
    assert row["first_purchase_at"] == "2026-04-01T01:00:00.000Z"
    assert json.loads(row["top_categories"])[0] == "food"
    assert c2 is not None and c2["open_tickets"] == "1"
    c2_state = state_from_json(c2["state"])
    assert sum(day[2] for day in c2_state.view_days) == 2  # cart + pricing are high intent
    [opened] = c2_state.tickets["t1"]
    assert (opened.status, opened.category) == ("opened", "complaint")

    letters = await read_topic(ns.settings, ns.topics.dead_letter, expect=len(bad))
    assert len(letters) == len(bad)
    by_value = {msg.value: msg for msg in letters}
    for code, (topic, key, value) in bad:
        msg = by_value[value]  # the original bytes, untouched
        headers = {k: v.decode() for k, v in msg.headers}
        assert headers["kizuna.reason_code"] == code
        assert headers["kizuna.reason"]
        src_topic, src_partition, src_offset = origin[value]
        assert headers["kizuna.source_topic"] == topic == src_topic
        assert int(headers["kizuna.source_partition"]) == src_partition
        assert int(headers["kizuna.source_offset"]) == src_offset
        assert msg.key == key


async def test_customer_and_dead_letter_commands_read_what_the_worker_wrote(
    ns: Namespace,
) -> None:
    await ns.ensure_topics()
    await produce(
        ns.settings,
        [
            good(ns, purchase("c-7", amount=5400, categories=("coffee",))),
            raw(ns, "purchase", b"c-7", b"not json"),
        ],
    )
    worker = WorkerProcess(ns).start()
    try:
        await wait_for(lambda: customer_row(ns, "c-7"), lambda r: r is not None, worker=worker)
        await wait_for(lambda: stats(ns), lambda s: s.get("dead_letter.total") == 1, worker=worker)
    finally:
        worker.stop()

    shown = ns.run_cli("customer", "c-7")
    assert shown.returncode == 0, shown.stderr
    doc = json.loads(shown.stdout)
    assert doc["customer_id"] == "c-7"
    assert doc["lifetime_spend"] == 5400.0 and doc["top_categories"] == ["coffee"]
    assert doc["purchase_count"] == 1
    assert [order["amount"] for order in doc["state"]["orders"]] == [5400.0]

    missing = ns.run_cli("customer", "nobody")
    assert missing.returncode == 1 and "no customer 'nobody'" in missing.stderr

    letters = ns.run_cli("dead-letters")
    assert letters.returncode == 0, letters.stderr
    [letter] = [json.loads(line) for line in letters.stdout.splitlines()]
    assert letter["reason_code"] == "malformed_json" and letter["value"] == "not json"


@pytest.mark.parametrize("guarantee", ["at_least_once", "exactly_once"])
async def test_state_survives_a_crash_without_double_counting(
    stack_env: dict[str, str], tmp_path: Path, guarantee: str
) -> None:
    ns = Namespace.create(stack_env, tmp_path, KIZUNA_PROCESSING_GUARANTEE=guarantee)
    await ns.ensure_topics()
    first = [purchase("c-5", at=f"2026-0{m}-01T00:00:00Z", amount=100) for m in range(1, 7)]
    second = [purchase("c-5", at=f"2026-0{m}-15T00:00:00Z", amount=10) for m in range(1, 5)]
    await produce(ns.settings, [good(ns, e) for e in first])

    worker = WorkerProcess(ns, "worker-1").start()
    await wait_for(lambda: customer_row(ns, "c-5"), lambda r: purchases(r) == 6, worker=worker)
    worker.kill()  # SIGKILL: no flush, no commit

    # Replays of already-applied events (as a retrying producer would send) plus new ones.
    await produce(ns.settings, [good(ns, e) for e in first[:3] + second])
    restarted = WorkerProcess(ns, "worker-2").start()
    try:
        row = await wait_for(
            lambda: customer_row(ns, "c-5"),
            lambda r: purchases(r) >= 10,
            worker=restarted,
            timeout=120,  # a session timeout, a rebalance and recovery come first
            what="c-5 after restart",
        )
        # The new events sit after the replays in c-5's partition, so once they are
        # applied the replays have been consumed: any double count would show now.
        counters = await worker_counters(ns)
    finally:
        restarted.stop()
    assert row is not None
    assert row["purchase_count"] == "10"
    assert float(row["lifetime_spend"]) == 640.0
    assert (
        counters.get("events.duplicate_event", 0) + counters.get("events.duplicate_order", 0) >= 3
    )


async def test_committed_events_have_their_states_in_the_changelog_when_killed(
    stack_env: dict[str, str], tmp_path: Path
) -> None:
    # The event path keeps its changelog records in an open batch until it is full or
    # Faust commits; the commit must hand the batch over and wait for it first. A
    # trickle of events never fills a batch: if the commit did not, offsets would be
    # committed with the states still in the worker, and a SIGKILL would lose them.
    from tests.integration.test_timers_pipeline import lapse_only  # (it imports this module)

    ns = Namespace.create(
        stack_env,
        tmp_path,
        KIZUNA_PROCESSING_GUARANTEE="at_least_once",
        KIZUNA_CONFIG=lapse_only(tmp_path),  # a 90-day lapse: nothing fires in this test
    )
    await ns.ensure_topics()
    customers = [f"k-{i:02d}" for i in range(40)]
    now = iso(int(time.time() * 1000))  # nothing falls due (a firing would hand it over)
    await produce(ns.settings, [good(ns, purchase(c, now, 100)) for c in customers])
    worker = WorkerProcess(ns, "worker-1").start()
    try:
        await wait_for(
            lambda: all_committed(ns, ns.topics.inputs["purchase"]),
            bool,
            worker=worker,
            timeout=120,
            what="every purchase committed",
        )
    finally:
        worker.kill()  # SIGKILL: nothing more is handed over or committed
    changelog = f"{ns.settings.kafka.topic_prefix}{ns.settings.worker.app_id}-customers-changelog"
    records = await read_topic(ns.settings, changelog, expect=len(customers), timeout=20)
    assert sorted({orjson.loads(r.key) for r in records}) == customers


async def all_committed(ns: Namespace, topic: str) -> bool:
    return all(
        [await committed_to_the_end(ns, topic, p) for p in range(ns.settings.kafka.partitions)]
    )


async def test_publish_command_routes_lines_to_their_topics_by_customer(
    ns: Namespace, tmp_path: Any
) -> None:
    lines = [purchase("c-1"), page_view("c-2"), ticket("c-3"), profile("c-4")]
    path = tmp_path / "events.jsonl"
    path.write_bytes(b"\n".join(orjson.dumps(e) for e in lines) + b"\nnot json\n")
    result = ns.run_cli("publish", str(path))
    assert result.returncode == 1  # one line could not be routed
    assert "line 5: not valid JSON" in result.stderr
    assert "published 4 events" in result.stderr
    for event in lines:
        [msg] = await read_topic(ns.settings, ns.topics.inputs[event["type"]], expect=1)
        assert msg.key == event["customer_id"].encode()
        assert orjson.loads(msg.value) == event


@pytest.mark.parametrize("guarantee", ["at_least_once", "exactly_once"])
async def test_a_stop_under_load_ends_cleanly_and_the_next_start_loses_and_repeats_nothing(
    stack_env: dict[str, str], tmp_path: Path, guarantee: str
) -> None:
    ns = Namespace.create(stack_env, tmp_path, KIZUNA_PROCESSING_GUARANTEE=guarantee)
    await ns.ensure_topics()
    customers, per_customer = 400, 10
    events = [
        purchase(f"u-{c}", at=f"2026-{m + 1:02d}-0{1 + c % 9}T00:00:00Z", amount=100 + m)
        for c in range(customers)
        for m in range(per_customer)
    ]
    await produce(ns.settings, [good(ns, e) for e in events])

    worker = WorkerProcess(ns, "worker-1").start()
    await wait_for(
        lambda: worker_counters(ns),
        lambda c: c.get("events.applied", 0) >= len(events) // 10,
        worker=worker,
        what="the backlog half-way",
    )
    code = worker.stop(timeout=60)  # SIGTERM while the backlog is being processed
    log = worker.log_path.read_text(errors="replace")
    assert code == 0, log[-3000:]
    assert "crash" not in log.lower(), log[-3000:]

    restarted = WorkerProcess(ns, "worker-2").start()
    try:
        totals = await wait_for(
            lambda: stats(ns),
            lambda s: s.get("events.applied", 0) >= len(events),
            worker=restarted,
            timeout=180,
            what="every event applied",
        )
        await asyncio.sleep(2)  # anything applied twice would be counted by now
        totals = await stats(ns)
        row = await customer_row(ns, "u-7")
    finally:
        restarted.stop()
    assert totals["events.applied"] == len(events)
    assert totals.get("events.duplicate_event", 0) == 0
    assert row is not None and row["purchase_count"] == str(per_customer)
