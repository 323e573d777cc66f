"""Lapse rules, lifecycle stages and durable timers, on hand-written histories (no Kafka)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import orjson
import pytest

from agents.domain.backtest import BacktestReport, load_events, run_backtest
from agents.domain.customer_state import CustomerState, StateLimits
from agents.domain.customer_view import summarize
from agents.domain.engine import EngineConfig, process_event
from agents.domain.lifecycle import fire_due
from agents.domain.rulebook import Rulebook
from schemas.timestamps import MS_PER_DAY, iso
from schemas.triggers import Trigger, trigger_id
from schemas.validation import parse_timestamp_ms
from tests.factories import POLICY, page_view, purchase, record
from tests.rule_harness import Derived

LAPSE_ONLY = Rulebook.only("lapse_90d", "lapse_180d")
CONFIG = EngineConfig(limits=StateLimits(), rates={"JPY": 1.0, "USD": 150.0}, rules=LAPSE_ONLY)
DAY0 = parse_timestamp_ms("2025-01-01T00:00:00Z")


def at(day: float) -> str:
    return iso(DAY0 + int(day * MS_PER_DAY))


def backtest(
    events: list[dict[str, Any]], until_day: float, config: EngineConfig = CONFIG
) -> list[Trigger]:
    lines = [orjson.dumps(e) for e in events]
    report = BacktestReport()
    loaded = load_events(lines, now_ms=DAY0 + 2000 * MS_PER_DAY, policy=POLICY, report=report)
    until = DAY0 + int(until_day * MS_PER_DAY)
    return list(run_backtest(loaded, config, until_ms=until, report=report))


def fired(triggers: list[Trigger]) -> list[tuple[str, str]]:
    return [(t.rule, t.due_at) for t in triggers]


def test_lapse_fires_on_day_90_and_180_with_its_facts() -> None:
    triggers = backtest(
        [
            purchase("c1", at(0), 3000, categories=("tea",)),
            purchase("c1", at(10), 2500, categories=("tea", "cups")),
        ],
        until_day=400,
    )
    assert fired(triggers) == [("lapse_90d", at(100)), ("lapse_180d", at(190))]
    lapse = triggers[0]
    assert lapse.fired_at == at(100)  # event time: fired at the due time, not at a batch later
    assert lapse.episode == at(10)
    assert lapse.trigger_id == trigger_id("c1", "lapse_90d", at(10))
    assert lapse.facts == {
        "days_since_purchase": 90,
        "lifetime_spend": 5500.0,
        "min_lifetime_spend": 5000.0,
        "currency": "JPY",
        "purchase_count": 2,
        "last_order_at": at(10),
        "last_order_date": at(10)[:10],
        "top_categories": ["tea", "cups"],
    }
    assert "90 days" in lapse.reason


def test_a_purchase_on_day_89_cancels_the_lapse_due_on_day_90() -> None:
    triggers = backtest([purchase("c1", at(0), 6000), purchase("c1", at(89), 100)], until_day=200)
    assert fired(triggers) == [("lapse_90d", at(179))]


def test_a_purchase_exactly_on_the_boundary_ends_the_episode() -> None:
    triggers = backtest([purchase("c1", at(0), 6000), purchase("c1", at(90), 100)], until_day=150)
    assert triggers == []  # the lapse for day 0 is moot; the next is due on day 180


def test_the_timer_fires_exactly_at_its_due_time_not_before() -> None:
    assert backtest([purchase("c1", at(0), 6000)], until_day=90 - 1 / 86400) == []
    assert fired(backtest([purchase("c1", at(0), 6000)], until_day=90)) == [("lapse_90d", at(90))]


def test_below_the_spend_threshold_nothing_fires_but_the_stage_still_lapses() -> None:
    events = [purchase("c1", at(0), 4999)]
    assert backtest(events, until_day=400) == []
    state = fold_and_fire(events, until_day=400)
    assert [h[1] for h in state.stage_history] == ["new", "lapsed", "churned"]
    assert [h[0] for h in state.stage_history[1:]] == [
        DAY0 + 180 * MS_PER_DAY,
        DAY0 + 365 * MS_PER_DAY,
    ]
    assert state.stage == "churned"


def test_spend_threshold_boundary_is_inclusive() -> None:
    assert fired(backtest([purchase("c1", at(0), 5000)], until_day=95)) == [("lapse_90d", at(90))]


def test_reactivation_ends_the_episode_and_a_new_lapse_can_follow() -> None:
    events = [purchase("c1", at(0), 6000), purchase("c1", at(200), 1000)]
    triggers = backtest(events, until_day=300)
    assert fired(triggers) == [
        ("lapse_90d", at(90)),
        ("lapse_180d", at(180)),
        ("lapse_90d", at(290)),
    ]
    assert len({t.trigger_id for t in triggers}) == 3  # a new episode, a new id
    state = fold_and_fire(events, until_day=300)
    assert state.reactivations == 1
    assert state.summary["last_reactivated_at"] == at(200)
    assert [h[1] for h in state.stage_history] == ["new", "lapsed", "reactivated"]


def test_out_of_order_application_gives_the_same_triggers_as_sorted() -> None:
    events = [
        purchase("c1", at(0), 3000),
        purchase("c1", at(120), 3000),
        purchase("c1", at(50), 3000),
        page_view("c1", at(60)),
    ]
    sorted_ids = {t.trigger_id for t in backtest(events, until_day=500)}
    # Apply in arrival order (late purchase last), then let the timers fire.
    state = CustomerState(customer_id="c1")
    for data in events:
        process_event(state, record(data), CONFIG)
    late = fire_due(state, before_ms=DAY0 + 501 * MS_PER_DAY, book=CONFIG.rules)
    assert {t.trigger_id for t in late} == sorted_ids
    assert fired(late) == [("lapse_90d", at(210)), ("lapse_180d", at(300))]


def test_each_rule_fires_at_most_once_per_episode_even_when_replayed() -> None:
    state = CustomerState(customer_id="c1")
    event = record(purchase("c1", at(0), 6000))
    process_event(state, event, CONFIG)
    first = fire_due(state, before_ms=DAY0 + 100 * MS_PER_DAY, book=CONFIG.rules)
    process_event(state, event, CONFIG)  # the same event again (a replay): a duplicate
    again = fire_due(state, before_ms=DAY0 + 100 * MS_PER_DAY, book=CONFIG.rules)
    assert fired(first) == [("lapse_90d", at(90))] and again == []


def test_a_disabled_rule_does_not_fire() -> None:
    rules = Rulebook.only("lapse_180d")
    triggers = backtest(
        [purchase("c1", at(0), 6000)], until_day=200, config=replace(CONFIG, rules=rules)
    )
    assert fired(triggers) == [("lapse_180d", at(180))]


def test_customers_without_purchases_get_no_timers() -> None:
    state = fold_and_fire([page_view("c1", at(0))], until_day=500)
    assert state.summary["pending_timers"] == [] and state.stage == "prospect"


def test_backtest_output_is_byte_identical_across_runs() -> None:
    events = [purchase(f"c{i}", at(i * 3), 1000 * (i % 9)) for i in range(60)]
    events += [purchase(f"c{i}", at(i * 3 + 100), 100) for i in range(0, 60, 4)]
    first = b"\n".join(t.to_bytes() for t in backtest(events, until_day=700))
    second = b"\n".join(t.to_bytes() for t in backtest(list(reversed(events)), until_day=700))
    assert first and first == second


@pytest.mark.parametrize("until_day", [0, 89, 90, 91])
def test_backtest_skips_events_after_until(until_day: int) -> None:
    report = BacktestReport()
    lines = [orjson.dumps(purchase("c1", at(0), 6000)), orjson.dumps(purchase("c1", at(95), 1))]
    loaded = load_events(lines, now_ms=DAY0 + 1000 * MS_PER_DAY, policy=POLICY, report=report)
    until = DAY0 + until_day * MS_PER_DAY
    triggers = list(run_backtest(loaded, CONFIG, until_ms=until, report=report))
    assert report.after_until == 1
    assert fired(triggers) == ([("lapse_90d", at(90))] if until_day >= 90 else [])


def fold_and_fire(events: list[dict[str, Any]], until_day: float) -> Derived:
    state = CustomerState(customer_id="c1")
    for data in sorted(events, key=lambda e: e["occurred_at"]):
        process_event(state, record(data), CONFIG)
    until = DAY0 + int(until_day * MS_PER_DAY)
    fire_due(state, before_ms=until + 1, book=CONFIG.rules)
    return Derived(state, summarize(state, until, CONFIG))
