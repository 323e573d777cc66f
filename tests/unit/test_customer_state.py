"""How events change a customer's facts: aggregates, duplicates, order, bounds, codec."""

from __future__ import annotations

import random
from typing import Any

import msgspec

from agents.domain.customer_state import (
    CustomerState,
    Outcome,
    StateLimits,
    apply_event,
    consent,
    profile_attributes,
    retained,
)
from agents.domain.customer_view import summarize
from agents.domain.engine import EngineConfig, process_event
from agents.domain.lifecycle import fire_due
from agents.domain.rulebook import Rulebook
from agents.domain.state_codec import Head, decode_state, encode_state, facts_bytes, head
from schemas.timestamps import MS_PER_DAY, iso
from schemas.validation import parse_timestamp_ms
from tests.factories import page_view, profile, purchase, record, refund, ticket

LIMITS = StateLimits()
RATES = {"JPY": 1.0, "USD": 150.0}
ENGINE = EngineConfig(LIMITS, RATES, Rulebook())


def fold(events: list[dict[str, Any]], limits: StateLimits = LIMITS) -> CustomerState:
    state = CustomerState(customer_id="c1")
    for data in events:
        apply_event(state, record(data), limits=limits, rates=RATES)
    return state


def ms(text: str) -> int:
    return parse_timestamp_ms(text)


def summary(state: CustomerState, at: str) -> dict[str, Any]:
    return summarize(state, ms(at), ENGINE)


def test_purchases_accumulate_spend_counts_dates_and_categories() -> None:
    state = fold(
        [
            purchase(at="2026-01-10T10:00:00+09:00", amount=3000, categories=("food",)),
            purchase(
                at="2026-02-10T10:00:00+09:00",
                amount=20,
                currency="USD",
                categories=("food", "toys"),
            ),
        ]
    )
    s = summary(state, "2026-02-11T00:00:00Z")
    assert s["purchase_count"] == 2
    assert s["lifetime_spend"] == 6000.0  # 3000 JPY + 20 USD at 150
    assert s["first_purchase_at"] == iso(ms("2026-01-10T10:00:00+09:00"))
    assert s["last_purchase_at"] == iso(ms("2026-02-10T10:00:00+09:00"))
    assert {c: n for c, (n, _) in state.categories.items()} == {"food": 2, "toys": 1}
    assert s["average_order_value"] == 3000.0
    assert s["purchases_365d"] == 2 and s["spend_365d"] == 6000.0
    assert s["top_categories"] == ["food", "toys"]
    assert s["days_since_last_purchase"] == 0


def test_a_late_purchase_counts_and_does_not_move_the_last_purchase_backwards() -> None:
    state = fold(
        [
            purchase(at="2026-05-01T00:00:00Z", amount=100),
            purchase(at="2026-03-01T00:00:00Z", amount=50),  # arrives late
        ]
    )
    s = summary(state, "2026-05-02T00:00:00Z")
    assert s["last_purchase_at"] == "2026-05-01T00:00:00.000Z"
    assert s["first_purchase_at"] == "2026-03-01T00:00:00.000Z"
    assert s["purchase_count"] == 2 and s["lifetime_spend"] == 150.0


def test_a_repeated_event_id_changes_nothing() -> None:
    state = fold([purchase(amount=100)])
    before = encode_state(state)
    outcome, _, _ = apply_event(state, record(purchase(amount=100)), limits=LIMITS, rates=RATES)
    assert outcome is Outcome.DUPLICATE_EVENT
    assert encode_state(state) == before


def test_an_order_resent_under_a_new_event_id_counts_once_even_after_40_newer_orders() -> None:
    events = [purchase(at=iso(ms("2026-01-01T00:00:00Z")), amount=700, order_id="o-first")]
    events += [purchase(at=iso(ms("2026-01-02T00:00:00Z") + i * 3_600_000)) for i in range(40)]
    state = fold(events)
    resent = record(purchase(at=events[0]["occurred_at"], order_id="o-first", event_id="again"))
    outcome, _, _ = apply_event(state, resent, limits=LIMITS, rates=RATES)
    assert outcome is Outcome.DUPLICATE_ORDER
    s = summary(state, "2026-02-01T00:00:00Z")
    assert s["purchase_count"] == 41 and s["lifetime_spend"] == 700 + 40 * 1000


def test_a_conflicting_duplicate_keeps_the_earliest_copy_whatever_arrives_first() -> None:
    early = purchase(at="2026-03-01T00:00:00Z", amount=100, event_id="e1", order_id="o1")
    late = purchase(at="2026-03-02T00:00:00Z", amount=900, event_id="e1", order_id="o1")
    first_early, first_late = fold([early, late]), fold([late, early])
    assert facts_bytes(first_early) == facts_bytes(first_late)
    assert summary(first_late, "2026-04-01T00:00:00Z")["lifetime_spend"] == 100.0
    # The same for an order re-sent under another event id with other content.
    again = purchase(at="2026-03-03T00:00:00Z", amount=5, event_id="e2", order_id="o1")
    assert facts_bytes(fold([early, again])) == facts_bytes(fold([again, early]))
    assert summary(fold([again, early]), "2026-04-01T00:00:00Z")["lifetime_spend"] == 100.0


def test_a_conflicting_page_view_is_replaced_not_added() -> None:
    cart = page_view(at="2026-03-01T00:00:00Z", page_type="cart", event_id="v1")
    home = page_view(at="2026-03-05T00:00:00Z", page_type="home", event_id="v1")
    for order in ([cart, home], [home, cart]):
        state = fold(order)
        assert state.view_days == [[ms("2026-03-01T00:00:00Z") // MS_PER_DAY, 1, 1]]
        assert state.high_intent_ms == [ms("2026-03-01T00:00:00Z")]


def test_facts_do_not_depend_on_the_order_events_arrive_in() -> None:
    events = [
        purchase(at=f"2026-0{m}-0{d}T01:00:00Z", amount=100 * m + d, categories=("a", "b")[:d])
        for m in range(1, 7)
        for d in (1, 2)
    ]
    events += [
        page_view(at=f"2026-06-{d:02d}T12:00:00Z", page_type=pt)
        for d in range(1, 20)
        for pt in ("cart", "home")
    ]
    events += [
        ticket(at="2026-06-02T00:00:00Z", ticket_id="t1"),
        ticket(at="2026-06-05T00:00:00Z", ticket_id="t1", status="resolved"),
        profile(at="2026-06-01T00:00:00Z", consent={"email": True}, timezone="Asia/Tokyo"),
        profile(at="2026-06-03T00:00:00Z", consent={"email": False}),
        refund(at="2026-06-04T00:00:00Z", order_id=events[3]["order_id"], amount=50),
    ]
    expected = facts_bytes(fold(events))
    rng = random.Random(7)
    for _ in range(10):
        shuffled = events[:]
        rng.shuffle(shuffled)
        assert facts_bytes(fold(shuffled)) == expected


def test_trailing_windows_only_count_recent_days() -> None:
    state = fold(
        [
            purchase(at="2025-01-01T00:00:00Z", amount=1000),
            purchase(at="2026-03-01T00:00:00Z", amount=200),
        ]
    )
    s = summary(state, "2026-03-02T00:00:00Z")
    assert s["purchase_count"] == 2 and s["lifetime_spend"] == 1200.0
    assert s["purchases_365d"] == 1 and s["spend_365d"] == 200.0


def test_page_views_are_bucketed_by_day_with_high_intent_counted() -> None:
    state = fold(
        [
            page_view(at="2026-03-01T01:00:00Z", page_type="cart"),
            page_view(at="2026-03-01T02:00:00Z", page_type="home"),
            page_view(at="2026-03-03T02:00:00Z", page_type="pricing"),
        ]
    )
    day = ms("2026-03-01T00:00:00Z") // MS_PER_DAY
    assert state.view_days == [[day, 2, 1], [day + 2, 1, 1]]
    assert state.last_visit_ms == ms("2026-03-03T02:00:00Z")
    s = summary(state, "2026-03-03T12:00:00Z")
    assert s["page_views_30d"] == 3 and s["high_intent_views_30d"] == 2


def test_tickets_track_open_status_and_trouble_in_trailing_window() -> None:
    state = fold(
        [
            ticket(at="2026-03-01T00:00:00Z", ticket_id="a", category="trouble"),
            ticket(at="2026-03-02T00:00:00Z", ticket_id="b", category="complaint"),
            ticket(at="2026-03-03T00:00:00Z", ticket_id="c", category="question"),
            ticket(at="2026-03-04T00:00:00Z", ticket_id="a", status="resolved", category="trouble"),
            # an older update arriving late must not reopen ticket a
            ticket(at="2026-03-02T12:00:00Z", ticket_id="a", status="updated", category="trouble"),
        ]
    )
    s = summary(state, "2026-03-05T00:00:00Z")
    assert s["open_tickets"] == 2
    assert s["trouble_tickets_30d"] == 2
    assert summary(state, "2026-04-01T12:00:00Z")["trouble_tickets_30d"] == 0


def test_profile_fields_take_the_newest_value_per_attribute() -> None:
    state = fold(
        [
            profile(at="2026-03-05T00:00:00Z", consent={"email": False, "line": True}),
            profile(
                at="2026-03-01T00:00:00Z",
                consent={"email": True, "dm": True},
                timezone="Asia/Tokyo",
                locale="ja-JP",
            ),
        ]
    )
    assert consent(state) == {"dm": True, "email": False, "line": True}
    attributes = profile_attributes(state)
    assert attributes["timezone"][1] == "Asia/Tokyo" and attributes["locale"][1] == "ja-JP"


def test_state_stays_bounded_however_long_the_history() -> None:
    limits = StateLimits(
        max_event_ids=16,
        max_recent_purchases=8,
        max_orders=24,
        max_categories=4,
        max_tickets=8,
        max_high_intent_views=8,
        page_view_window_days=60,
    )
    engine = EngineConfig(limits, RATES, Rulebook())
    state = CustomerState(customer_id="c1")
    start = ms("2020-01-01T00:00:00Z")
    for i in range(3000):
        at_ms = start + i * 6 * 3_600_000
        for data in (
            purchase(at=iso(at_ms), amount=10, categories=(f"cat{i % 50}",)),
            page_view(at=iso(at_ms), page_type="cart"),
            ticket(at=iso(at_ms), ticket_id=f"t{i}"),
            refund(at=iso(at_ms), order_id=f"o-c1-{iso(at_ms)}", amount=1),
        ):
            process_event(state, record(data), engine)
        fire_due(state, before_ms=at_ms + 1, book=engine.rules)
    s = summarize(state, at_ms, engine)
    assert s["purchase_count"] == 3000 and s["lifetime_spend"] == 3000 * 9
    assert len(state.seen_ids) <= 16
    assert len(state.orders) <= 24
    # Details (id, categories) only on the newest 8 and on what a pending rule may describe.
    cutoff = state.evaluated_before - limits.order_detail_days * MS_PER_DAY
    assert all(o.order_id is None for o in state.orders[:-8] if o.ms < cutoff)
    assert len(state.categories) <= 4
    assert len(state.tickets) <= 8
    assert len(state.high_intent_ms) <= 8
    assert len(state.view_days) <= 60
    assert len(state.refunds) <= limits.max_refunds
    assert len(encode_state(state)) < 8_000


def test_500_orders_in_any_order_end_in_the_same_small_state() -> None:
    engine = ENGINE
    start = ms("2016-01-01T00:00:00Z")
    events = [
        record(purchase(at=iso(start + i * 7 * MS_PER_DAY), amount=1000 + i)) for i in range(500)
    ]
    until = start + 500 * 7 * MS_PER_DAY

    def run(order: list[Any]) -> CustomerState:
        state = CustomerState(customer_id="c1")
        for event in order:
            process_event(state, event, engine, horizon_ms=until)
        fire_due(state, before_ms=until + 1, book=engine.rules)
        return state

    in_time, reverse = run(events), run(events[::-1])
    shuffled = events[:]
    random.Random(3).shuffle(shuffled)
    assert facts_bytes(in_time) == facts_bytes(reverse) == facts_bytes(run(shuffled))
    assert len(encode_state(reverse)) < 16_000
    views = [summarize(s, until, engine) for s in (in_time, reverse)]
    assert views[0]["stage"] == views[1]["stage"] == "loyal"
    assert views[0]["stage_history"] == views[1]["stage_history"]
    assert views[0]["purchase_count"] == 500
    assert len(views[0]["pending_timers"]) <= 8 and views[0]["next_timer_at"] is not None


def test_retained_drops_what_lies_before_the_windows_and_leaves_the_state_alone() -> None:
    state = fold(
        [
            page_view(at="2025-01-01T00:00:00Z", page_type="cart"),
            page_view(at="2026-03-01T00:00:00Z"),
            ticket(at="2025-01-01T00:00:00Z", ticket_id="old"),
            ticket(at="2025-01-02T00:00:00Z", ticket_id="old", status="closed"),
            ticket(at="2025-01-01T00:00:00Z", ticket_id="still-open"),
        ]
    )
    kept = retained(state, LIMITS, ms("2026-03-02T00:00:00Z"))
    assert [d[0] for d in kept.view_days] == [ms("2026-03-01T00:00:00Z") // MS_PER_DAY]
    assert kept.high_intent_ms == [] and set(kept.tickets) == {"still-open"}
    assert len(state.view_days) == 2 and len(state.tickets) == 2


def test_the_codec_round_trips_and_reads_the_head_alone() -> None:
    state = fold([purchase(), page_view(), ticket(), profile(consent={"sms": True}), refund()])
    state.partition, state.next_due = 3, 12345
    data = encode_state(state)
    assert decode_state(data) == state
    assert head(data) == Head("c1", state.format, state.version, 3, state.evaluated_before, 12345)


def test_a_state_written_before_later_fields_existed_still_loads() -> None:
    state = fold([purchase(), ticket()])
    fields = msgspec.msgpack.decode(encode_state(state))
    older = msgspec.msgpack.encode(fields[:-3])  # without the newest three fields
    loaded = decode_state(older)
    assert loaded.orders == state.orders and loaded.seen_ids == []
