"""Reading a customer's facts as of a time gives what a state holding only the events
up to that time says, whichever events the state already holds; refunds count from
their own time."""

from __future__ import annotations

import pytest

from agents.domain.customer_state import CustomerState, StateLimits, apply_event
from agents.domain.history import (
    category_counts_as_of,
    last_purchase_as_of,
    purchases,
    purchases_as_of,
    spend_as_of,
    top_categories_as_of,
)
from schemas.validation import parse_timestamp_ms
from tests.factories import purchase, record, refund

PURCHASES = [
    purchase(at="2026-01-05T09:00:00Z", amount=1200, categories=("tea",)),
    purchase(at="2026-02-10T09:00:00Z", amount=800, categories=("tea", "cups")),
    purchase(at="2026-03-15T09:00:00Z", amount=4000, categories=("cups", "books")),
    purchase(at="2026-03-20T09:00:00Z", amount=650, categories=("books",)),
]
# The whole third order back on 2026-03-25, part of the first on 2026-02-01.
REFUNDS = [
    refund(at="2026-03-25T00:00:00Z", order_id=str(PURCHASES[2]["order_id"]), amount=4000),
    refund(at="2026-02-01T00:00:00Z", order_id=str(PURCHASES[0]["order_id"]), amount=200),
]
TIMES = [
    "2026-01-01T00:00:00Z",  # before every purchase
    "2026-01-05T09:00:00Z",  # exactly at the first
    "2026-02-01T00:00:00Z",  # the partial refund
    "2026-02-28T00:00:00Z",
    "2026-03-20T08:59:59.999Z",  # just before the last
    "2026-03-20T09:00:00Z",  # exactly at the last
    "2026-03-25T00:00:00Z",  # the whole refund of the third order
    "2026-12-31T00:00:00Z",  # after everything (a lapse firing)
]


def fold(events: list[dict[str, object]]) -> CustomerState:
    state = CustomerState(customer_id="c1")
    for data in events:
        apply_event(state, record(data), limits=StateLimits(), rates={"JPY": 1.0})
    return state


def upto(events: list[dict[str, object]], at: int) -> list[dict[str, object]]:
    return [e for e in events if parse_timestamp_ms(str(e["occurred_at"])) <= at]


@pytest.mark.parametrize("as_of", TIMES)
def test_as_of_reads_match_a_state_holding_only_earlier_purchases(as_of: str) -> None:
    at = parse_timestamp_ms(as_of)
    full = fold(PURCHASES)
    earlier = fold(upto(PURCHASES, at))
    view, early = purchases(full), purchases(earlier)
    end = parse_timestamp_ms("2030-01-01T00:00:00Z")
    assert spend_as_of(view, full, at) == spend_as_of(early, earlier, end)
    assert purchases_as_of(view, full, at) == len(earlier.orders)
    assert last_purchase_as_of(view, at) == last_purchase_as_of(early, end)
    assert category_counts_as_of(full, view, at) == {
        c: n for c, (n, _) in earlier.categories.items()
    }
    assert top_categories_as_of(full, view, at, n=2) == top_categories_as_of(
        earlier, early, end, n=2
    )


@pytest.mark.parametrize("as_of", TIMES)
def test_refunds_count_from_their_time_whatever_was_applied_since(as_of: str) -> None:
    at = parse_timestamp_ms(as_of)
    full = fold(PURCHASES + REFUNDS)
    view = purchases(full)
    placed = upto(PURCHASES, at)
    # Hand-computed: spend is what was placed by then less what was refunded by then.
    spend = sum(float(p["amount"]) for p in placed)  # type: ignore[arg-type]
    spend -= sum(float(r["amount"]) for r in upto(REFUNDS, at))  # type: ignore[arg-type]
    assert spend_as_of(view, full, at) == spend
    wholly_refunded = 1 if at >= parse_timestamp_ms("2026-03-25T00:00:00Z") else 0
    assert purchases_as_of(view, full, at) == len(placed) - wholly_refunded


def test_the_last_purchase_is_the_last_that_still_counts() -> None:
    full = fold(
        [
            *PURCHASES[:3],
            refund(at="2026-03-16T00:00:00Z", order_id=str(PURCHASES[2]["order_id"]), amount=4000),
        ]
    )
    view = purchases(full)
    assert last_purchase_as_of(view, parse_timestamp_ms("2026-03-15T12:00:00Z")) == (
        parse_timestamp_ms("2026-03-15T09:00:00Z")
    )
    assert last_purchase_as_of(view, parse_timestamp_ms("2026-03-16T00:00:00Z")) == (
        parse_timestamp_ms("2026-02-10T09:00:00Z")
    )


def test_top_categories_rank_by_orders_then_name() -> None:
    state = fold(PURCHASES)
    view = purchases(state)
    at = parse_timestamp_ms("2026-12-31T00:00:00Z")
    # books 2, cups 2, tea 2: a tie, broken by name.
    assert top_categories_as_of(state, view, at) == ["books", "cups", "tea"]
    assert top_categories_as_of(state, view, at, n=1) == ["books"]
    before_last = parse_timestamp_ms("2026-03-16T00:00:00Z")
    assert top_categories_as_of(state, view, before_last) == ["cups", "tea", "books"]
