"""Reading a customer's state as of a time gives what a state holding only the
purchases up to that time says, whichever events the state already holds."""

from __future__ import annotations

import pytest

from agents.domain.customer_state import CustomerState, StateLimits, apply_event
from agents.domain.history import (
    category_counts_as_of,
    last_purchase_as_of,
    purchases_as_of,
    spend_as_of,
    top_categories_as_of,
)
from schemas.validation import parse_timestamp_ms
from tests.factories import purchase, record

PURCHASES = [
    purchase(at="2026-01-05T09:00:00Z", amount=1200, categories=("tea",)),
    purchase(at="2026-02-10T09:00:00Z", amount=800, categories=("tea", "cups")),
    purchase(at="2026-03-15T09:00:00Z", amount=4000, categories=("cups", "books")),
    purchase(at="2026-03-20T09:00:00Z", amount=650, categories=("books",)),
]


def fold(purchases: list[dict[str, object]]) -> CustomerState:
    state = CustomerState("c1")
    for data in purchases:
        apply_event(state, record(data), limits=StateLimits(), rates={"JPY": 1.0})
    return state


@pytest.mark.parametrize(
    "as_of",
    [
        "2026-01-01T00:00:00Z",  # before every purchase
        "2026-01-05T09:00:00Z",  # exactly at the first
        "2026-02-28T00:00:00Z",
        "2026-03-20T08:59:59.999Z",  # just before the last
        "2026-03-20T09:00:00Z",  # exactly at the last
        "2026-12-31T00:00:00Z",  # after every purchase (a lapse timer firing)
    ],
)
def test_as_of_reads_match_a_state_holding_only_earlier_purchases(as_of: str) -> None:
    at = parse_timestamp_ms(as_of)
    full = fold(PURCHASES)
    earlier = fold([p for p in PURCHASES if parse_timestamp_ms(str(p["occurred_at"])) <= at])
    assert spend_as_of(full, at) == earlier.lifetime_spend
    assert purchases_as_of(full, at) == earlier.purchase_count
    assert last_purchase_as_of(full, at) == earlier.last_purchase_ms
    assert category_counts_as_of(full, at) == earlier.categories
    assert top_categories_as_of(full, at, n=2) == top_categories_as_of(earlier, at, n=2)


def test_top_categories_rank_by_orders_then_name() -> None:
    state = fold(PURCHASES)
    at = parse_timestamp_ms("2026-12-31T00:00:00Z")
    # books 2, cups 2, tea 2: a tie, broken by name.
    assert top_categories_as_of(state, at) == ["books", "cups", "tea"]
    assert top_categories_as_of(state, at, n=1) == ["books"]
    before_last = parse_timestamp_ms("2026-03-16T00:00:00Z")
    assert top_categories_as_of(state, before_last) == ["cups", "tea", "books"]
