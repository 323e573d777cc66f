"""Contract bounds on times and amounts, the clock-mode rule for future timestamps,
and the dead-letter reason of a record whose processing raised. Hand-written values."""

from __future__ import annotations

import math
from typing import Any

import orjson
import pytest

from agents.domain import customer_state
from agents.domain.backtest import BacktestReport, load_events, run_backtest
from agents.ingest import MAX_REASON_CHARS, processing_error
from schemas import contract
from schemas import validation as v
from schemas.events import Purchase, Refund
from tests.factories import NOW_MS, page_view, purchase, refund

RATES = v.ValidationPolicy(
    max_future_ms=24 * 3_600_000,
    currencies=frozenset({"JPY", "USD"}),
    rates={"JPY": 1.0, "USD": 150.0},
)


def decode(data: Any, *, etype: str = "purchase", now_ms: int | None = NOW_MS) -> Any:
    raw = data if isinstance(data, bytes) else orjson.dumps(data)
    return v.decode_event(etype, b"c1", raw, now_ms=now_ms, policy=RATES)


@pytest.mark.parametrize(
    "at",
    [
        "0001-01-01T00:00:00Z",
        "0001-01-01T00:00:00+23:59",  # used to overflow when the record was encoded
        "1999-12-31T23:59:59.999Z",
        "2000-01-01T08:59:59+09:00",  # 1999-12-31T23:59:59Z
        "9000-01-01T00:00:00Z",
        "9999-12-31T23:59:59Z",
        "9999-12-31T23:59:59-23:59",  # past year 9999 in UTC
    ],
)
def test_occurred_at_outside_the_contract_range_is_rejected_in_every_mode(at: str) -> None:
    for now_ms in (None, NOW_MS):
        result = decode(purchase(at=at), now_ms=now_ms)
        assert isinstance(result, v.Rejection), result
        assert result.code == v.TIMESTAMP_OUT_OF_RANGE
        assert at in result.reason and contract.EARLIEST_OCCURRED_AT in result.reason


@pytest.mark.parametrize(
    "at", ["2000-01-01T00:00:00Z", "2000-01-01T09:00:00+09:00", "8999-12-31T23:59:59.999Z"]
)
def test_the_range_bounds_are_inclusive_below_and_exclusive_above(at: str) -> None:
    assert isinstance(decode(purchase(at=at), now_ms=None), Purchase)


def test_future_timestamp_is_checked_only_against_a_wall_clock() -> None:
    future = purchase(at="2999-01-01T00:00:00Z")
    wall = decode(future, now_ms=NOW_MS)
    assert isinstance(wall, v.Rejection) and wall.code == v.FUTURE_TIMESTAMP
    event_time = decode(future, now_ms=None)
    assert isinstance(event_time, Purchase) and event_time.occurred_at.year == 2999


def test_the_backtest_counts_events_after_until_never_as_future_timestamps() -> None:
    lines = [
        orjson.dumps(purchase("c1", at="2026-01-01T00:00:00Z")),
        orjson.dumps(purchase("c1", at="2026-01-03T00:00:00Z")),  # one day after --until
        orjson.dumps(purchase("c1", at="2031-01-01T00:00:00Z")),  # years after it
        orjson.dumps(purchase("c1", at="1999-01-01T00:00:00Z")),  # out of range
    ]
    report = BacktestReport()
    events = load_events(lines, policy=RATES, report=report)
    until = v.parse_timestamp_ms("2026-01-02T00:00:00Z")
    list(run_backtest(events, _engine(), until_ms=until, report=report, states={}))
    assert report.rejected == {v.TIMESTAMP_OUT_OF_RANGE: 1}
    assert report.after_until == 2
    assert report.outcomes["applied"] == 1


@pytest.mark.parametrize(
    ("amount", "currency", "fragment"),
    [
        (1e307, "USD", "purchase.amount must be <= 1e+15, got 1e+307"),
        (1e13, "USD", "1e+13 USD is 1.5e+15 in the base currency"),
        (1e16, "JPY", "purchase.amount must be <= 1e+15"),
        (1e16, "USD", "purchase.amount must be <= 1e+15"),
    ],
)
def test_amounts_beyond_the_maximum_in_base_currency_are_rejected(
    amount: float, currency: str, fragment: str
) -> None:
    result = decode(purchase(amount=amount, currency=currency))
    assert isinstance(result, v.Rejection), result
    assert result.code == v.AMOUNT_OUT_OF_RANGE
    assert fragment in result.reason


def test_a_conversion_that_overflows_is_rejected_not_clamped() -> None:
    huge_rate = v.ValidationPolicy(0, frozenset({"XAU"}), rates={"XAU": 1e300})
    raw = orjson.dumps(purchase(amount=1e15, currency="XAU"))
    result = v.decode_event("purchase", b"c1", raw, now_ms=None, policy=huge_rate)
    assert isinstance(result, v.Rejection) and result.code == v.AMOUNT_OUT_OF_RANGE
    assert "1e+15 XAU is inf in the base currency" in result.reason


def test_amounts_at_the_maximum_are_kept_and_stay_finite_in_the_state() -> None:
    jpy = decode(purchase(amount=1e15))
    usd = decode(purchase(amount=6e12, currency="USD"))  # 9e14 JPY
    assert isinstance(jpy, Purchase) and isinstance(usd, Purchase)
    assert customer_state.base_amount(usd.amount, usd.currency, RATES.rates) == 9e14
    back = decode(refund(amount=2e13, currency="USD"), etype="refund")
    assert isinstance(back, v.Rejection) and back.code == v.AMOUNT_OUT_OF_RANGE


def test_minus_zero_becomes_zero() -> None:
    result = decode(
        b'{"event_id":"e","customer_id":"c1","occurred_at":"2026-01-01T00:00:00Z",'
        b'"order_id":"o","amount":-0.0}'
    )
    assert isinstance(result, Purchase)
    assert result.amount == 0.0 and math.copysign(1.0, result.amount) == 1.0


def test_a_missing_currency_needs_a_rate_for_the_default() -> None:
    usd_only = v.ValidationPolicy(0, frozenset({"USD"}), rates={"USD": 1.0})
    raw = orjson.dumps(refund())  # no currency: JPY by default
    result = v.decode_event("refund", b"c1", raw, now_ms=None, policy=usd_only)
    assert isinstance(result, v.Rejection) and result.code == v.UNSUPPORTED_CURRENCY
    ok = v.decode_event("refund", b"c1", raw, now_ms=None, policy=RATES)
    assert isinstance(ok, Refund)


def test_nesting_is_bounded_below_the_encoders_stack_limits() -> None:
    depth = contract.MAX_NESTING_DEPTH
    within = page_view(extra=_nested(depth - 1))  # the event object is level 1
    beyond = page_view(extra=_nested(depth))
    assert not isinstance(decode(within, etype="page_view"), v.Rejection)
    result = decode(beyond, etype="page_view")
    assert isinstance(result, v.Rejection) and result.code == v.SCHEMA_VIOLATION
    assert "deeper than 32" in result.reason


def test_the_contract_maximum_is_the_engines_clamp() -> None:
    assert contract.MAX_AMOUNT == customer_state.MAX_AMOUNT


def test_a_processing_error_is_dead_lettered_with_type_and_message() -> None:
    rejection = processing_error(OverflowError("date value out of range"))
    assert rejection == v.Rejection(v.PROCESSING_ERROR, "OverflowError: date value out of range")
    assert v.PROCESSING_ERROR in v.REJECTION_CODES
    long = processing_error(ValueError("x" * 10_000))
    assert len(long.reason) == MAX_REASON_CHARS and long.reason.endswith("...")


def _nested(levels: int) -> list[Any]:
    value: list[Any] = []
    for _ in range(levels - 1):
        value = [value]
    return value


def _engine() -> Any:
    from streams.config import Settings

    return Settings().engine_config()
