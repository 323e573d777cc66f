"""A customer's state, stage and stage history are a function of the events received,
not of the order they arrived in: across topics, within a topic, in a backfill.

Every check here compares an arrival order against the time-ordered run of the same
events (the reference, which does not depend on arrival order): the summary a
marketer reads, and the facts byte for byte once both are brought to the same
horizon (:func:`~agents.domain.customer_state.retained` as of the end). Only the
triggers already sent may differ, and on the Kafka path (every topic in time order,
firing driven by the watermark) not even those: there the whole encoded state
and the triggers equal the backtest's byte for byte.

Limits by design (``StateLimits``), which the generated histories stay inside (a
span under 400 days, so no event arrives more than ``dedup_horizon_days`` =
``ticket_history_days`` behind the clock; few events per customer):

* an event id is remembered for ``dedup_horizon_days`` and at most ``max_event_ids``
  ids, an order for ``max_orders`` orders: a copy arriving after its original was
  forgotten is applied again (a profile write or a visit time can then differ);
* a ticket closed and silent for ``ticket_history_days`` is forgotten: a later change
  of the same ticket id starts afresh, and paths that prune at different horizons
  may or may not still hold its old changes then;
* an order's id and categories are dropped once it is beyond the newest
  ``max_recent_purchases`` and older than ``order_detail_days``: a newer copy that
  is later replaced by an older one can make an order lose them earlier than in
  time order (the summary is unaffected; see the re-sent order test).
"""

from __future__ import annotations

import random
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agents.domain.backtest import BacktestReport, decode_lines, load_events, run_backtest
from agents.domain.customer_state import CustomerState, retained
from agents.domain.customer_view import summarize
from agents.domain.driver import Driver
from agents.domain.engine import EngineConfig
from agents.domain.rulebook import Rulebook
from agents.domain.state_codec import decode_state, encode_state, facts_bytes, to_plain
from schemas.events import CustomerEvent
from schemas.timestamps import MS_PER_DAY, MS_PER_HOUR, iso
from schemas.triggers import Trigger
from schemas.validation import parse_timestamp_ms
from streams.cli import main
from tests.factories import POLICY, page_view, profile, purchase, refund, ticket
from tests.generators import generate_history
from tests.rule_harness import DAY0, config

ENGINE = config(Rulebook())
NEVER = -(2**62)
#: The summary fields that are facts (not bookkeeping such as version or timers).
COMPARED = (
    "stage",
    "stage_changed_at",
    "stage_history",
    "purchase_count",
    "lifetime_spend",
    "first_purchase_at",
    "last_purchase_at",
    "reactivations",
    "last_reactivated_at",
    "refunded",
    "top_categories",
    "open_tickets",
    "trouble_tickets_30d",
    "first_seen_at",
    "last_event_at",
    "last_visit_at",
    "page_views_30d",
    "high_intent_views_30d",
    "purchases_365d",
    "spend_365d",
    "consent",
    "timezone",
    "locale",
)

# --- generated histories -----------------------------------------------------------

_AMOUNTS = (800, 1500, 2400, 3900, 6200, 12000)
_CATEGORIES = (("tea",), ("coffee",), ("tea", "cups"), ("books", "wine"), ("toys",))
_PAGES = ("home", "product", "cart", "checkout", "pricing", "support")
_STATUSES = ("opened", "updated", "resolved", "closed")
_TICKET_CATEGORIES = ("trouble", "complaint", "question", "cancellation")


def _actions(span_hours: int, copies: bool) -> st.SearchStrategy[tuple[Any, ...]]:
    hour = st.integers(0, span_hours)
    shift = st.integers(-30 * 24, 30 * 24)
    kinds = st.one_of(
        st.tuples(
            st.just("purchase"), hour, st.sampled_from(_AMOUNTS), st.sampled_from(_CATEGORIES)
        ),
        st.tuples(st.just("view"), hour, st.sampled_from(_PAGES)),
        st.tuples(
            st.just("ticket"),
            hour,
            st.integers(0, 2),
            st.sampled_from(_STATUSES),
            st.sampled_from(_TICKET_CATEGORIES),
        ),
        st.tuples(st.just("profile"), hour, st.booleans(), st.sampled_from(("Asia/Tokyo", "UTC"))),
        st.tuples(st.just("refund"), st.integers(0, 99), shift, st.sampled_from((0.5, 1.0))),
    )
    if not copies:
        return kinds
    return st.one_of(
        kinds,
        st.tuples(st.just("duplicate"), st.integers(0, 99)),
        st.tuples(st.just("conflict"), st.integers(0, 99), shift, st.booleans()),
        st.tuples(st.just("resend"), st.integers(0, 99), shift),
    )


def _time(hours: int) -> str:
    return iso(DAY0 + hours * MS_PER_HOUR)


def _customer_events(cid: str, actions: list[tuple[Any, ...]]) -> list[dict[str, Any]]:
    """Turn drawn actions into valid event dicts (duplicates and conflicts refer to an
    earlier event by index, modulo how many there are)."""
    events: list[dict[str, Any]] = []
    purchases: list[dict[str, Any]] = []
    for n, action in enumerate(actions):
        eid = f"{cid}-e{n}"
        kind = action[0]
        if kind == "purchase":
            _, hours, amount, categories = action
            event = purchase(
                cid,
                _time(hours),
                amount,
                event_id=eid,
                order_id=f"{cid}-o{n}",
                categories=categories,
            )
            purchases.append(event)
        elif kind == "view":
            event = page_view(cid, _time(action[1]), action[2], event_id=eid)
        elif kind == "ticket":
            _, hours, tid, status, category = action
            event = ticket(cid, _time(hours), f"{cid}-t{tid}", status, category, event_id=eid)
        elif kind == "profile":
            _, hours, email, zone = action
            event = profile(
                cid, _time(hours), event_id=eid, consent={"email": email}, timezone=zone
            )
        elif kind == "refund":
            if not purchases:
                continue
            _, which, shift, share = action
            order = purchases[which % len(purchases)]
            at_ms = _ms(order["occurred_at"]) + shift * MS_PER_HOUR
            event = refund(
                cid,
                iso(max(at_ms, DAY0)),
                order["order_id"],
                order["amount"] * share,
                event_id=eid,
            )
        elif not events:
            continue
        elif kind == "duplicate":
            event = dict(events[action[1] % len(events)])
        elif kind == "conflict":
            _, which, shift, other = action
            original = events[which % len(events)]
            event = _conflicting(original, shift, other)
        else:
            if not purchases:
                continue
            _, which, shift = action
            original = purchases[which % len(purchases)]
            at_ms = _ms(original["occurred_at"]) + shift * MS_PER_HOUR
            event = dict(original, event_id=eid, occurred_at=iso(max(at_ms, DAY0)))
        events.append(event)
    return events


def _conflicting(original: dict[str, Any], shift: int, other: bool) -> dict[str, Any]:
    """The same event id with other content: another time, and maybe another value."""
    at_ms = max(_ms(original["occurred_at"]) + shift * MS_PER_HOUR, DAY0)
    event = dict(original, occurred_at=iso(at_ms))
    if other:
        if event["type"] == "purchase":
            event["amount"] = event["amount"] + 100
        elif event["type"] == "page_view":
            event["page_type"] = "cart" if event["page_type"] != "cart" else "home"
        elif event["type"] == "support_ticket":
            event["status"] = "resolved" if event["status"] != "resolved" else "opened"
        elif event["type"] == "refund":
            event["amount"] = event["amount"] / 2
        else:
            event["timezone"] = "Europe/Paris"
    return event


def _ms(text: str) -> int:
    return parse_timestamp_ms(text)


@st.composite
def histories(
    draw: st.DrawFn, *, span_days: int = 360, max_actions: int = 60, copies: bool = True
) -> list[dict[str, Any]]:
    """A history of 1-3 customers, in generation order; ``copies``: with exact and
    conflicting duplicates and orders re-sent under a new event id."""
    customers = draw(st.integers(1, 3))
    events: list[dict[str, Any]] = []
    for c in range(customers):
        strategy = _actions(span_days * 24, copies)
        actions = draw(st.lists(strategy, min_size=1, max_size=max_actions))
        events += _customer_events(f"c{c}", actions)
    return events


# --- runs ---------------------------------------------------------------------------


@dataclass
class Run:
    states: dict[str, CustomerState]
    triggers: list[Trigger]
    end: int


def decode(events: list[dict[str, Any]]) -> list[CustomerEvent]:
    """Decode in the given order (the validator accepts every generated event)."""
    report = BacktestReport()
    lines = [orjson.dumps(e) for e in events]
    decoded = decode_lines(lines, now_ms=DAY0 + 4000 * MS_PER_DAY, policy=POLICY, report=report)
    assert not report.rejected, report.rejected
    return decoded


def in_time_order(events: list[dict[str, Any]], until: int, engine: EngineConfig = ENGINE) -> Run:
    report = BacktestReport()
    lines = [orjson.dumps(e) for e in events]
    loaded = load_events(lines, now_ms=DAY0 + 4000 * MS_PER_DAY, policy=POLICY, report=report)
    states: dict[str, CustomerState] = {}
    triggers = list(run_backtest(loaded, engine, until_ms=until, report=report, states=states))
    assert report.end_ms == until
    return Run(states, triggers, until)


def as_received(events: list[dict[str, Any]], until: int, engine: EngineConfig = ENGINE) -> Run:
    report = BacktestReport()
    states: dict[str, CustomerState] = {}
    triggers = list(
        run_backtest(
            decode(events), engine, until_ms=until, report=report, states=states, as_received=True
        )
    )
    assert report.end_ms == until
    return Run(states, triggers, until)


def end_of(events: list[dict[str, Any]]) -> int:
    return max((_ms(e["occurred_at"]) for e in events), default=DAY0) + 30 * MS_PER_DAY


def facts_at(
    state: CustomerState, end: int, engine: EngineConfig = ENGINE, *, details: bool = True
) -> bytes:
    """The facts at the horizon ``end``; ``details=False``: without the id and categories
    of orders older than ``order_detail_days`` (see the re-sent order test)."""
    kept = retained(state, engine.limits, end)
    if not details:
        cutoff = end - engine.limits.order_detail_days * MS_PER_DAY
        kept.orders = [
            msgspec.structs.replace(o, order_id=None, categories=None) if o.ms < cutoff else o
            for o in kept.orders
        ]
    return facts_bytes(kept)


def view(state: CustomerState, end: int, engine: EngineConfig = ENGINE) -> dict[str, Any]:
    summary = summarize(state, end, engine)
    return {key: summary[key] for key in COMPARED}


def assert_same_customers(
    got: Run, expected: Run, engine: EngineConfig = ENGINE, *, details: bool = True
) -> None:
    assert sorted(got.states) == sorted(expected.states)
    for cid, state in expected.states.items():
        other = got.states[cid]
        assert view(other, got.end, engine) == view(state, expected.end, engine), cid
        mine = facts_at(other, got.end, engine, details=details)
        assert mine == facts_at(state, expected.end, engine, details=details), cid


# --- 1. arbitrary arrival orders ---------------------------------------------------------


def within_topic_shuffle(events: list[dict[str, Any]], rng: random.Random) -> list[dict[str, Any]]:
    """Time order's pattern of topics, each topic's events shuffled among its slots."""
    ordered = sorted(events, key=lambda e: _ms(e["occurred_at"]))
    by_topic: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for event in ordered:
        by_topic[event["type"]].append(event)
    for topic_events in by_topic.values():
        rng.shuffle(topic_events)
    cursors = dict.fromkeys(by_topic, 0)
    out = []
    for event in ordered:
        topic = event["type"]
        out.append(by_topic[topic][cursors[topic]])
        cursors[topic] += 1
    return out


def arrival(events: list[dict[str, Any]], how: str, seed: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    if how == "shuffle":
        shuffled = list(events)
        rng.shuffle(shuffled)
        return shuffled
    if how == "within_topic":
        return within_topic_shuffle(events, rng)
    if how == "reversed":
        return sorted(events, key=lambda e: _ms(e["occurred_at"]), reverse=True)
    return list(events)  # generation order


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    events=histories(),
    how=st.sampled_from(("shuffle", "within_topic", "reversed", "generated")),
    seed=st.integers(0, 2**16),
)
def test_any_arrival_order_gives_the_time_ordered_facts_and_stages(
    events: list[dict[str, Any]], how: str, seed: int
) -> None:
    until = end_of(events)
    expected = in_time_order(events, until)
    got = as_received(arrival(events, how, seed), until)
    assert_same_customers(got, expected)


# --- 2. the Kafka path: topics interleaved, each in time order -------------------------


def kafka_like(
    events: list[CustomerEvent], engine: EngineConfig, bursts: list[tuple[int, int]], until: int
) -> Run:
    """One partition consuming its topics (each in time order) in the given bursts of
    (topic choice, records), as the event-clock worker does: fire below the watermark
    after each burst, prune below the last firing bound."""
    topics: dict[str, list[CustomerEvent]] = defaultdict(list)
    for event in sorted(events, key=lambda e: e.occurred_ms):
        topics[type(event).__name__].append(event)
    names = sorted(topics)
    cursor = dict.fromkeys(names, 0)
    progress: dict[str, int] = {}
    driver = Driver(engine)
    triggers: list[Trigger] = []

    def watermark() -> int:
        return min(progress.values()) if len(progress) == len(names) else NEVER

    plan = iter(bursts)
    bound = NEVER  # the last firing bound: the worker prunes below it (agents/ingest.py)
    while busy := [t for t in names if cursor[t] < len(topics[t])]:
        choice, size = next(plan, (0, 1 << 30))
        topic = busy[choice % len(busy)]
        for event in topics[topic][cursor[topic] : cursor[topic] + size]:
            cursor[topic] += 1
            progress[topic] = max(progress.get(topic, event.occurred_ms), event.occurred_ms)
            step = driver.apply(event, horizon_ms=bound)
            driver.share(step.co_purchases)
        bound = max(bound, watermark())
        triggers.extend(driver.fire(bound))
    triggers.extend(driver.fire(until + 1))  # the publisher's final tick on every topic
    return Run(driver.states, triggers, until)


def bookkept(state: CustomerState, end: int, engine: EngineConfig = ENGINE) -> bytes:
    """The whole encoded state at the horizon ``end``, with the write counter zeroed."""
    kept = retained(state, engine.limits, end)
    return encode_state(msgspec.structs.replace(kept, version=0))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    events=histories(),
    bursts=st.lists(st.tuples(st.integers(0, 7), st.integers(1, 30)), max_size=40),
)
def test_any_interleaving_of_time_ordered_topics_gives_the_backtest_state_and_triggers(
    events: list[dict[str, Any]], bursts: list[tuple[int, int]]
) -> None:
    until = end_of(events)
    expected = in_time_order(events, until)
    got = kafka_like(decode(events), ENGINE, bursts, until)
    assert sorted(orjson.dumps(t) for t in got.triggers) == sorted(
        orjson.dumps(t) for t in expected.triggers
    )
    assert sorted(got.states) == sorted(expected.states)
    for cid, state in expected.states.items():
        mine, reference = bookkept(got.states[cid], until), bookkept(state, until)
        assert to_plain(decode_state(mine)) == to_plain(decode_state(reference)), cid
        assert mine == reference, cid


# --- 3. cases the product owners listed ------------------------------------------------


def day(d: float) -> str:
    return iso(DAY0 + int(d * MS_PER_DAY))


def both(
    events: list[dict[str, Any]],
    arrived: list[dict[str, Any]],
    until_day: float,
    *,
    details: bool = True,
) -> tuple[Run, Run]:
    """The time-ordered run of ``events`` and the as-received run of ``arrived`` (the
    same events in another order), with the customers' views checked equal."""
    until = DAY0 + int(until_day * MS_PER_DAY)
    expected, got = in_time_order(events, until), as_received(arrived, until)
    assert_same_customers(got, expected, details=details)
    return expected, got


def rules_of(run: Run) -> list[str]:
    return [t.rule for t in run.triggers]


def test_a_ticket_first_seen_closed_is_not_a_new_trouble_ticket_or_cancellation() -> None:
    events = [
        purchase("c1", day(0), 3000, event_id="p0"),
        ticket("c1", day(10), "t1", "resolved", "trouble", event_id="k1"),
        ticket("c1", day(11), "t2", "closed", "complaint", event_id="k2"),
        ticket("c1", day(12), "t3", "closed", "cancellation", event_id="k3"),
    ]
    for run in both(events, events[::-1], 20):
        assert not {"churn_support_trouble", "churn_cancellation_request"} & set(rules_of(run))
        summary = summarize(run.states["c1"], run.end, ENGINE)
        assert summary["stage"] == "new" and summary["open_tickets"] == 0
        assert summary["trouble_tickets_30d"] == 0
        assert [h["stage"] for h in summary["stage_history"]] == ["new"]
    # The same tickets seen opened first are churn signals (the control).
    opened = [
        ticket("c1", day(9), f"t{i}", "opened", c)
        for i, c in enumerate(("trouble", "complaint", "cancellation"), 1)
    ]
    control, _ = both(events + opened, opened + events, 20)
    assert {"churn_support_trouble", "churn_cancellation_request"} <= set(rules_of(control))
    assert summarize(control.states["c1"], control.end, ENGINE)["stage"] == "at_risk"


def test_an_order_resent_under_a_new_event_id_after_40_newer_orders_counts_once() -> None:
    first = purchase("c1", day(0), 700, event_id="first", order_id="o-first")
    newer = [
        purchase("c1", day(1 + i), 1000, event_id=f"n{i}", order_id=f"o{i}") for i in range(40)
    ]
    resent = dict(first, event_id="again", occurred_at=day(45))  # re-sent later, under a new id
    events = [first, *newer, resent]
    for arrived in (events, [resent, *newer[::-1], first], [*newer, resent, first]):
        # Known limit, not checked: the id and categories of an order beyond the newest
        # max_recent_purchases are dropped once it is older than order_detail_days; when
        # the re-sent copy (day 45) arrives before the original (day 0), order o8 is
        # briefly 33rd-newest and loses them for good, where time order keeps them.
        expected, got = both(events, arrived, 60, details=False)
        for run in (expected, got):
            summary = summarize(run.states["c1"], run.end, ENGINE)
            assert summary["purchase_count"] == 41
            assert summary["lifetime_spend"] == 700 + 40 * 1000
            assert summary["first_purchase_at"] == day(0)


def test_a_late_purchase_older_than_everything_remembered_does_not_reopen_the_past() -> None:
    limits = ENGINE.limits
    count = limits.max_orders + 4
    events = [purchase("c1", day(7 * i), 2000, event_id=f"p{i}") for i in range(1, count + 1)]
    oldest = purchase("c1", day(0), 2000, event_id="p0")
    until_day = 7 * count + 1
    expected, got = both([oldest, *events], [*events, oldest], until_day)
    # Loyal once, from the third order on (time order) or the third one received.
    assert rules_of(expected).count("loyal_promotion") == 1
    assert rules_of(got).count("loyal_promotion") == 1
    state = got.states["c1"]
    assert state.evicted_orders == count + 1 - limits.max_orders
    summary = summarize(state, got.end, ENGINE)
    assert summary["stage"] == "loyal" and summary["purchase_count"] == count + 1
    # The late one fired nothing at all: every trigger it could cause is in the past.
    late = as_received(events, got.end)
    assert [orjson.dumps(t) for t in late.triggers] == [orjson.dumps(t) for t in got.triggers]


def test_a_late_purchase_filling_a_gap_leaves_the_time_ordered_reactivations() -> None:
    events = [
        purchase("c1", day(0), 3000, event_id="a"),
        purchase("c1", day(300), 3000, event_id="c"),
        purchase("c1", day(150), 3000, event_id="b"),  # arrives last: fills the gap
    ]
    expected, got = both(events, events, 320)
    for run in (expected, got):
        summary = summarize(run.states["c1"], run.end, ENGINE)
        assert summary["reactivations"] == 0 and summary["last_reactivated_at"] is None
        assert "reactivated" not in [h["stage"] for h in summary["stage_history"]]
    # Without it the purchase at day 300 is a reactivation (the control).
    gap, _ = both(events[:2], events[:2], 320)
    assert summarize(gap.states["c1"], gap.end, ENGINE)["reactivations"] == 1


def test_a_conflicting_duplicate_keeps_the_earliest_copy_whatever_arrives_first() -> None:
    early = purchase("c1", day(10), 6000, event_id="e1", order_id="o1")
    late = purchase("c1", day(12), 900, event_id="e1", order_id="o1")
    view_early = page_view("c1", day(20), "cart", event_id="v1")
    view_late = page_view("c1", day(21), "home", event_id="v1")
    events = [early, late, view_early, view_late]
    for arrived in (events[::-1], [late, view_late, early, view_early]):
        _, got = both(events, arrived, 40)
        summary = summarize(got.states["c1"], got.end, ENGINE)
        assert summary["lifetime_spend"] == 6000 and summary["purchase_count"] == 1
        assert summary["last_purchase_at"] == day(10) and summary["last_visit_at"] == day(20)
        assert summary["high_intent_views_30d"] == 1 and summary["page_views_30d"] == 1
        assert summary["last_event_at"] == day(20)


def test_a_500_order_backfill_in_reverse_ends_in_the_same_small_state() -> None:
    """A worker backfilling 500 orders published newest first (firing once caught up),
    and the as-received backtest of the newest 300 of them reversed (every late order
    reopens the moments after it, so that one costs quadratic time: kept smaller)."""
    events = [purchase("c1", day(7 * i), 1000 + i, event_id=f"p{i}") for i in range(500)]
    until = DAY0 + 7 * 500 * MS_PER_DAY
    expected = in_time_order(events, until)
    driver = Driver(ENGINE)
    for event in decode(events[::-1]):
        driver.apply(event, horizon_ms=NEVER)  # still behind: prunes nothing yet
    driver.fire(until + 1)
    backfill = Run(driver.states, [], until)
    assert_same_customers(backfill, expected)
    _, got = both(events[200:], events[200:][::-1], 7 * 500)
    for run in (backfill, got):
        state = run.states["c1"]
        # (the backfilled state is pruned at its next write: below the firing bound)
        assert len(encode_state(retained(state, ENGINE.limits, run.end))) < 16_000
        assert len(state.orders) <= ENGINE.limits.max_orders
        assert len(state.seen_ids) <= ENGINE.limits.max_event_ids
        summary = summarize(state, run.end, ENGINE)
        assert summary["stage"] == "loyal"
        assert len(summary["pending_timers"]) <= 8 and summary["next_timer_at"] is not None
    assert summarize(backfill.states["c1"], until, ENGINE)["purchase_count"] == 500


def test_a_refund_below_the_lapse_threshold_unqualifies_the_win_back() -> None:
    orders = [
        purchase("c1", day(0), 3000, event_id="p1", order_id="o1"),
        purchase("c1", day(10), 3000, event_id="p2", order_id="o2"),
    ]
    back = refund("c1", day(20), "o2", 1500, event_id="r1")  # 6,000 -> 4,500 yen
    lapse_due = day(10 + 90)
    without, _ = both(orders, orders[::-1], 120)
    assert ("lapse_90d", lapse_due) in [(t.rule, t.due_at) for t in without.triggers]
    for arrived in ([back, *orders], [*orders, back]):
        expected, got = both([*orders, back], arrived, 120)
        for run in (expected, got):
            assert "lapse_90d" not in rules_of(run)
            assert summarize(run.states["c1"], run.end, ENGINE)["lifetime_spend"] == 4500


# --- 4. the command line ------------------------------------------------------------------


def _cli_states(
    path: Path, until: str, capsysbinary: pytest.CaptureFixture[bytes], *extra: str
) -> list[dict[str, Any]]:
    assert main(["backtest", str(path), "--until", until, "--states", *extra]) == 0
    out = capsysbinary.readouterr().out
    return [orjson.loads(line) for line in out.splitlines() if line.strip()]


def _cli_compare(
    lines: list[bytes], until: str, tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes]
) -> int:
    shuffled = list(lines)
    random.Random(11).shuffle(shuffled)
    ordered_file, shuffled_file = tmp_path / "ordered.jsonl", tmp_path / "shuffled.jsonl"
    ordered_file.write_bytes(b"\n".join(lines) + b"\n")
    shuffled_file.write_bytes(b"\n".join(shuffled) + b"\n")
    reference = _cli_states(ordered_file, until, capsysbinary)
    for path in (ordered_file, shuffled_file):
        for extra in ((), ("--as-received",)):
            printed = _cli_states(path, until, capsysbinary, *extra)
            assert [p["customer_id"] for p in printed] == [r["customer_id"] for r in reference]
            for got, expected in zip(printed, reference, strict=True):
                assert {k: got[k] for k in COMPARED} == {k: expected[k] for k in COMPARED}
    return len(reference)


def test_the_cli_backtest_states_do_not_depend_on_the_file_order(
    tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    samples = Path(__file__).parents[2] / "samples" / "events.jsonl"
    lines = [line for line in samples.read_bytes().splitlines() if line.strip()]
    assert _cli_compare(lines, "2026-06-01T00:00:00Z", tmp_path, capsysbinary) > 1
    history = [orjson.dumps(e) for e in generate_history(5, 25, DAY0, 300)]
    until = iso(DAY0 + 320 * MS_PER_DAY)
    assert _cli_compare(history, until, tmp_path, capsysbinary) == 25
