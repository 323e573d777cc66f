"""How events change a customer's state: aggregates, order, idempotence, bounds."""

from __future__ import annotations

import random
from typing import Any

import orjson

from agents.domain.customer_state import CustomerState, Outcome, StateLimits, apply_event
from agents.domain.customer_view import summarize
from schemas.timestamps import MS_PER_DAY
from schemas.validation import parse_timestamp_ms
from tests.factories import page_view, profile, purchase, record, ticket

LIMITS = StateLimits()
RATES = {"JPY": 1.0, "USD": 150.0}


def fold(events: list[dict[str, Any]], limits: StateLimits = LIMITS) -> CustomerState:
    state = CustomerState("c1")
    for data in events:
        apply_event(state, record(data), limits=limits, rates=RATES)
    return state


def canonical(state: CustomerState) -> bytes:
    return orjson.dumps(state.to_dict(), option=orjson.OPT_SORT_KEYS)


def ms(text: str) -> int:
    return parse_timestamp_ms(text)


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
    assert state.purchase_count == 2
    assert state.lifetime_spend == 6000.0  # 3000 JPY + 20 USD at 150
    assert state.first_purchase_ms == ms("2026-01-10T10:00:00+09:00")
    assert state.last_purchase_ms == ms("2026-02-10T10:00:00+09:00")
    assert state.categories == {"food": 2, "toys": 1}
    summary = summarize(state, ms("2026-02-11T00:00:00Z"), LIMITS)
    assert summary["average_order_value"] == 3000.0
    assert summary["purchases_365d"] == 2 and summary["spend_365d"] == 6000.0
    assert summary["top_categories"] == ["food", "toys"]
    assert summary["days_since_last_purchase"] == 0


def test_late_purchase_does_not_move_last_purchase_backwards_but_counts() -> None:
    state = fold(
        [
            purchase(at="2026-05-01T00:00:00Z", amount=100),
            purchase(at="2026-03-01T00:00:00Z", amount=50),  # arrives late
        ]
    )
    assert state.last_purchase_ms == ms("2026-05-01T00:00:00Z")
    assert state.first_purchase_ms == ms("2026-03-01T00:00:00Z")
    assert state.purchase_count == 2 and state.lifetime_spend == 150.0


def test_repeated_event_id_changes_nothing() -> None:
    state = fold([purchase(amount=100)])
    before = canonical(state)
    outcome = apply_event(state, record(purchase(amount=100)), limits=LIMITS, rates=RATES)
    assert outcome is Outcome.DUPLICATE_EVENT
    assert canonical(state) == before


def test_second_event_for_a_counted_order_is_not_counted_twice() -> None:
    state = fold([purchase(amount=100, order_id="o-1")])
    again = record(purchase(amount=100, order_id="o-1", event_id="resent"))
    assert apply_event(state, again, limits=LIMITS, rates=RATES) is Outcome.DUPLICATE_ORDER
    assert state.purchase_count == 1 and state.lifetime_spend == 100.0


def test_event_order_does_not_change_the_resulting_state() -> None:
    events = [
        purchase(
            at=f"2026-0{m}-0{d}T0{h}:00:00Z", amount=100 * m + d, categories=("a", "b")[: d % 2 + 1]
        )
        for m in range(1, 7)
        for d in (1, 2)
        for h in (1,)
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
    ]
    expected = canonical(fold(events))
    rng = random.Random(7)
    for _ in range(5):
        shuffled = events[:]
        rng.shuffle(shuffled)
        assert canonical(fold(shuffled)) == expected


def test_trailing_windows_only_count_recent_days() -> None:
    state = fold(
        [
            purchase(at="2025-01-01T00:00:00Z", amount=1000),
            purchase(at="2026-03-01T00:00:00Z", amount=200),
        ]
    )
    summary = summarize(state, ms("2026-03-02T00:00:00Z"), LIMITS)
    assert summary["purchase_count"] == 2 and summary["lifetime_spend"] == 1200.0
    assert summary["purchases_365d"] == 1 and summary["spend_365d"] == 200.0
    assert [d[0] for d in state.purchase_days] == [ms("2026-03-01T00:00:00Z") // MS_PER_DAY]


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
    summary = summarize(state, ms("2026-03-03T12:00:00Z"), LIMITS)
    assert summary["page_views_30d"] == 3 and summary["high_intent_views_30d"] == 2


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
    assert state.tickets["a"][0] == "resolved"
    summary = summarize(state, ms("2026-03-05T00:00:00Z"), LIMITS)
    assert summary["open_tickets"] == 2
    assert summary["trouble_tickets_30d"] == 2
    assert summarize(state, ms("2026-04-01T12:00:00Z"), LIMITS)["trouble_tickets_30d"] == 0


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
    assert state.consent == {"email": False, "line": True, "dm": True}
    assert state.timezone == "Asia/Tokyo" and state.locale == "ja-JP"


def test_state_stays_bounded_however_long_the_history() -> None:
    limits = StateLimits(
        max_event_ids=16,
        max_recent_purchases=8,
        max_categories=4,
        max_tickets=8,
        max_high_intent_views=8,
    )
    state = CustomerState("c1")
    start = ms("2020-01-01T00:00:00Z")
    for i in range(3000):
        at_ms = start + i * 6 * 3_600_000
        at = _iso(at_ms)
        for data in (
            purchase(at=at, amount=10, categories=(f"cat{i % 50}",)),
            page_view(at=at, page_type="cart"),
            ticket(at=at, ticket_id=f"t{i}"),
        ):
            apply_event(state, record(data), limits=limits, rates=RATES)
    assert state.purchase_count == 3000
    assert len(state.seen_event_ids) <= 16
    assert len(state.recent_purchases) <= 8
    assert len(state.categories) <= 4
    assert len(state.tickets) <= 8
    assert len(state.high_intent_views_ms) <= 8
    assert len(state.purchase_days) <= limits.spend_window_days
    assert len(state.view_days) <= limits.page_view_window_days
    assert len(canonical(state)) < 20_000


def test_round_trip_through_dict_is_lossless() -> None:
    state = fold([purchase(), page_view(), ticket(), profile(consent={"sms": True})])
    assert CustomerState.from_dict(orjson.loads(canonical(state))) == state


def test_stored_form_has_fields_in_declaration_order_however_it_was_loaded() -> None:
    state = fold([purchase(), page_view(), ticket()])
    written = orjson.dumps(state.to_dict())
    expected_keys = [*CustomerState.__dataclass_fields__, "format"]
    assert list(orjson.loads(written)) == expected_keys
    # Loaded from what to_dict wrote (the fast path): written back byte for byte the same.
    assert orjson.dumps(CustomerState.from_dict(orjson.loads(written)).to_dict()) == written
    # Loaded from keys in another order: written back in declaration order.
    resorted = CustomerState.from_dict(orjson.loads(canonical(state)))
    assert list(resorted.to_dict()) == expected_keys and resorted == state


def test_a_stored_state_with_missing_or_unknown_keys_still_loads() -> None:
    state = fold([purchase(), ticket()])
    stored = orjson.loads(canonical(state))
    del stored["last_fired"]  # written before the field existed
    stored["retired_field"] = 1  # written by a newer version
    loaded = CustomerState.from_dict(stored)
    assert loaded.last_fired == {} and not hasattr(loaded, "retired_field")
    assert loaded.purchase_count == state.purchase_count and loaded.tickets == state.tickets
    assert orjson.loads(canonical(loaded)) == orjson.loads(canonical(state))


def _iso(at_ms: int) -> str:
    from schemas.timestamps import iso

    return iso(at_ms)
