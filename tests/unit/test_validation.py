"""Decoding and validation of input messages: every class of bad input has a precise reason."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from schemas import validation as v
from schemas.events import LineItem, PageView, Purchase
from schemas.timestamps import to_ms
from tests.factories import NOW_MS, POLICY, page_view, profile, purchase, ticket


def decode(etype: str, data: Any, key: bytes | None = b"c1") -> Any:
    raw = data if isinstance(data, bytes) else orjson.dumps(data)
    return v.decode_event(etype, key, raw, now_ms=NOW_MS, policy=POLICY)


def test_valid_purchase_becomes_a_record_with_parsed_fields() -> None:
    rec = decode("purchase", purchase(amount=5400, categories=("food", "toys")))
    assert isinstance(rec, Purchase)
    assert rec.amount == 5400.0
    assert rec.currency == "JPY"
    assert rec.items[1] == LineItem(sku="sku-toys", category="toys", quantity=1, price=5400.0)
    assert to_ms(rec.occurred_at) == to_ms(rec.occurred_at.astimezone())  # aware
    assert rec.occurred_at.utcoffset().total_seconds() == 9 * 3600


def test_unknown_fields_are_kept_in_extra() -> None:
    rec = decode("page_view", page_view(referrer="newsletter", ab={"v": 2}))
    assert isinstance(rec, PageView)
    assert rec.extra == {"referrer": "newsletter", "ab": {"v": 2}}


@pytest.mark.parametrize(
    ("etype", "raw", "code", "fragment"),
    [
        ("purchase", b"{not json", v.MALFORMED_JSON, "not valid JSON"),
        ("purchase", b"[1, 2]", v.NOT_AN_OBJECT, "got a list"),
        ("purchase", purchase(customer_id=""), v.MISSING_CUSTOMER_ID, "customer_id"),
        ("purchase", {**purchase(), "customer_id": None}, v.MISSING_CUSTOMER_ID, "missing"),
        ("purchase", purchase(amount=-1), v.NEGATIVE_AMOUNT, "purchase.amount must be >= 0"),
        ("purchase", purchase(at="2026-03-01T10:00:00"), v.BAD_TIMESTAMP, "with offset"),
        ("purchase", purchase(at="2026-02-30T10:00:00Z"), v.BAD_TIMESTAMP, "not a valid date"),
        ("purchase", purchase(at="2031-01-01T00:00:00Z"), v.FUTURE_TIMESTAMP, "in the future"),
        ("purchase", purchase(currency="GBP"), v.UNSUPPORTED_CURRENCY, "GBP"),
        ("purchase", purchase(currency="yen"), v.SCHEMA_VIOLATION, "purchase.currency"),
        ("purchase", {**purchase(), "amount": "12"}, v.SCHEMA_VIOLATION, "must be a number"),
        ("purchase", {**purchase(), "amount": True}, v.SCHEMA_VIOLATION, "must be a number"),
        ("purchase", {**purchase(), "order_id": " "}, v.SCHEMA_VIOLATION, "must not be empty"),
        (
            "purchase",
            {**purchase(), "items": [{"sku": "a", "category": "b", "quantity": 0, "price": 1}]},
            v.SCHEMA_VIOLATION,
            "purchase.items[0].quantity must be >= 1",
        ),
        ("page_view", page_view(page_type="blog"), v.SCHEMA_VIOLATION, "page_type must be one of"),
        ("support_ticket", ticket(status="lost"), v.SCHEMA_VIOLATION, "status must be one of"),
        ("support_ticket", ticket(satisfaction=6), v.SCHEMA_VIOLATION, "<= 5"),
        (
            "customer_profile",
            profile(consent={"email": "yes"}),
            v.SCHEMA_VIOLATION,
            "consent.email must be true or false",
        ),
        ("page_view", purchase(), v.WRONG_EVENT_TYPE, "does not belong on the page-views topic"),
        (
            "purchase",
            {k: x for k, x in purchase().items() if k != "event_id"},
            v.SCHEMA_VIOLATION,
            "purchase.event_id is required",
        ),
    ],
)
def test_each_class_of_bad_input_is_rejected_with_its_reason(
    etype: str, raw: Any, code: str, fragment: str
) -> None:
    result = decode(etype, raw)
    assert isinstance(result, v.Rejection), result
    assert result.code == code
    assert fragment in result.reason


def test_key_must_equal_customer_id() -> None:
    missing = decode("purchase", purchase(), key=None)
    other = decode("purchase", purchase(), key=b"c2")
    assert isinstance(missing, v.Rejection) and missing.code == v.KEY_MISMATCH
    assert isinstance(other, v.Rejection) and "'c2' does not match customer_id 'c1'" in other.reason


def test_future_limit_is_inclusive_and_configurable() -> None:
    limit = v.ValidationPolicy(max_future_ms=0, currencies=frozenset({"JPY"}))
    at_now = "2027-01-15T08:00:00Z"
    assert to_ms(decode("purchase", purchase(at=at_now)).occurred_at) == NOW_MS
    late = v.decode_event(
        "purchase",
        b"c1",
        orjson.dumps(purchase(at="2027-01-15T08:00:01Z")),
        now_ms=NOW_MS,
        policy=limit,
    )
    assert isinstance(late, v.Rejection) and late.code == v.FUTURE_TIMESTAMP


def test_tombstone_is_rejected_not_crashed() -> None:
    result = v.decode_event("purchase", b"c1", None, now_ms=NOW_MS, policy=POLICY)
    assert isinstance(result, v.Rejection) and result.code == v.MALFORMED_JSON


def test_parse_timestamp_ms_accepts_z_and_offsets_and_rejects_naive() -> None:
    assert v.parse_timestamp_ms("2026-03-01T01:00:00Z") == v.parse_timestamp_ms(
        "2026-03-01T10:00:00+09:00"
    )
    with pytest.raises(ValueError, match="with offset"):
        v.parse_timestamp_ms("2026-03-01 10:00:00")
