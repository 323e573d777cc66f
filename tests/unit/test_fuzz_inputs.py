"""Hostile input never raises: the validator rejects it with a code, or the engine takes it.

Every input event type gets random bytes, truncated JSON, wrong types, deep
nesting, huge strings, extreme numbers and timestamps, invalid UTF-8 and null
keys (``tests/bad_inputs.py`` plus hypothesis' own values). A rejection must
carry one of the documented codes and a reason; an accepted record must go
through the whole engine step the worker runs (fold, read-model row, firing
far into the future) without an exception.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agents.domain.backtest import BacktestReport, decode_lines, run_backtest
from agents.domain.driver import Driver
from agents.domain.firing import customer_row
from schemas.contract import EVENT_TYPES, RFC3339_PATTERN
from schemas.events import CustomerEvent
from schemas.timestamps import MS_PER_DAY
from schemas.validation import REJECTION_CODES, Rejection, decode_event
from streams.config import load_settings
from tests.bad_inputs import bad_message, good_event, hostile_message

SHIPPED_CONFIG = Path(__file__).resolve().parents[2] / "config" / "kizuna.toml"
SETTINGS = load_settings(SHIPPED_CONFIG, env={})  # all rules on, USD and EUR rates
POLICY = SETTINGS.validation_policy()
ENGINE = SETTINGS.engine_config()
WALL_NOW_MS = 1_800_000_000_000  # 2027-01-15
TYPE_NAMES = [t.name for t in EVENT_TYPES]
FUZZ = settings(
    deadline=None, max_examples=150, suppress_health_check=[HealthCheck.too_slow], database=None
)

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**64 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from([0.0, -0.0, 1e308, -1e308, 5e-324, 1e15, 1e15 + 1]),
    st.text(max_size=40),
    st.from_regex(RFC3339_PATTERN, fullmatch=True),
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=20,
)
keys = st.one_of(st.none(), st.binary(max_size=20), st.just(b"c1"), st.just(b"\xff\xfe"))


def check(etype: str, key: bytes | None, value: bytes | None) -> None:
    """Validate in both clock modes; run whatever is accepted through the engine."""
    for now_ms in (None, WALL_NOW_MS):
        result = decode_event(etype, key, value, now_ms=now_ms, policy=POLICY)
        if isinstance(result, Rejection):
            assert result.code in REJECTION_CODES, result
            assert result.reason, result
        else:
            assert isinstance(result, CustomerEvent)
            run_engine(result)
    if value is not None:  # the backtest's own routing of a line
        report = BacktestReport()
        events = decode_lines([value], policy=POLICY, report=report)
        list(run_backtest(events, ENGINE, until_ms=None, report=report, states={}))


def run_engine(event: CustomerEvent) -> None:
    """What the worker does with an accepted event: fold, mirror, fire (here or later)."""
    driver = Driver(ENGINE)
    driver.apply(event, horizon_ms=None)
    state = driver.states[event.customer_id]
    customer_row(state, event.occurred_ms, ENGINE)
    customer_row(state, WALL_NOW_MS, ENGINE)
    for later in (1, 400 * MS_PER_DAY, 4000 * MS_PER_DAY):
        driver.fire(event.occurred_ms + later, stepwise=True)
    customer_row(state, event.occurred_ms + 4000 * MS_PER_DAY, ENGINE)


@FUZZ
@given(etype=st.sampled_from(TYPE_NAMES), key=keys, value=st.none() | st.binary(max_size=300))
def test_random_bytes_and_keys_are_rejected_not_raised(
    etype: str, key: bytes | None, value: bytes | None
) -> None:
    check(etype, key, value)


@FUZZ
@given(etype=st.sampled_from(TYPE_NAMES), rnd=st.randoms(use_true_random=False))
def test_generated_hostile_messages_never_raise(etype: str, rnd: random.Random) -> None:
    key, value = hostile_message(rnd, etype, "c1")
    check(etype, key, value)


@FUZZ
@given(etype=st.sampled_from(TYPE_NAMES), rnd=st.randoms(use_true_random=False))
def test_generated_bad_messages_are_rejected_in_both_clock_modes(
    etype: str, rnd: random.Random
) -> None:
    key, value = bad_message(rnd, etype, "c1")
    for now_ms in (None, WALL_NOW_MS):
        result = decode_event(etype, key, value, now_ms=now_ms, policy=POLICY)
        assert isinstance(result, Rejection), (key, value and value[:200], result)
        assert result.code in REJECTION_CODES


@FUZZ
@given(
    etype=st.sampled_from(TYPE_NAMES),
    rnd=st.randoms(use_true_random=False),
    overrides=st.dictionaries(
        st.sampled_from(
            [
                "event_id",
                "occurred_at",
                "amount",
                "currency",
                "items",
                "page_type",
                "status",
                "category",
                "satisfaction",
                "consent",
                "timezone",
                "order_id",
                "type",
                "extra",
            ]
        ),
        json_values,
        max_size=3,
    ),
    cut=st.none() | st.integers(min_value=0, max_value=400),
)
def test_events_with_arbitrary_field_values_never_raise(
    etype: str, rnd: random.Random, overrides: dict[str, Any], cut: int | None
) -> None:
    doc = {**good_event(rnd, etype, "c1"), **overrides}
    value = orjson.dumps(doc, option=orjson.OPT_NON_STR_KEYS)
    check(etype, b"c1", value if cut is None else value[:cut])
