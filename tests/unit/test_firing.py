"""Firing stored customers (``agents.domain.firing``): the bytes the worker writes are
those of firing the decoded state, and a customer that needs the co-purchase model is
left to the caller when there is none."""

from __future__ import annotations

from agents.domain.co_purchase import CoPurchaseModel
from agents.domain.customer_state import CustomerState, StateLimits
from agents.domain.customer_view import state_from_json, summarize
from agents.domain.engine import EngineConfig, process_event
from agents.domain.firing import NEEDS_CO_PURCHASES, FiredCustomer, FiringRequest, fire_stored
from agents.domain.lifecycle import fire_due
from agents.domain.rulebook import Rulebook
from agents.domain.state_codec import decode_state, encode_state
from schemas.customer_row import encode_row
from schemas.timestamps import MS_PER_DAY, iso
from schemas.validation import parse_timestamp_ms
from tests.factories import purchase, record

DAY0 = parse_timestamp_ms("2025-01-01T00:00:00Z")
RATES = {"JPY": 1.0, "USD": 150.0}
LAPSES = EngineConfig(StateLimits(), RATES, Rulebook.only("lapse_90d", "lapse_180d"))
CROSS_SELL = EngineConfig(StateLimits(), RATES, Rulebook.only("cross_sell"))


def stored(config: EngineConfig, *events: dict[str, object]) -> bytes:
    """The table value of a customer after ``events``."""
    state = CustomerState(customer_id=str(events[0]["customer_id"]))
    for event in events:
        process_event(state, record(event), config)
    return encode_state(state)


def test_fired_customers_are_what_firing_their_decoded_state_gives() -> None:
    values = [
        stored(LAPSES, purchase("big", iso(DAY0), 6000, categories=("tea", "cups"))),
        None,  # in the timer index, gone from the table
        stored(LAPSES, purchase("small", iso(DAY0 + 100 * MS_PER_DAY), 100)),
    ]
    request = FiringRequest(before_ms=DAY0 + 200 * MS_PER_DAY, now_ms=None, as_of_ms=DAY0 + 7)

    results = fire_stored(values, request, LAPSES, CoPurchaseModel())

    assert results[1] is None
    for value, result in ((values[0], results[0]), (values[2], results[2])):
        assert value is not None and isinstance(result, FiredCustomer)
        state = decode_state(value)
        triggers = fire_due(state, before_ms=request.before_ms, book=LAPSES.rules)
        state.version += 1
        assert result.customer_id == state.customer_id
        assert result.version == state.version
        assert result.value == encode_state(state)
        assert result.next_due_ms == state.next_due
        assert result.triggers == [t.to_bytes() for t in triggers]
        assert result.rules == [t.rule for t in triggers]
        # The row the read model holds: the summary as of the request, and the state.
        summary = summarize(state, request.as_of_ms, LAPSES)
        assert {k: v for k, v in result.row.items() if k != "state"} == encode_row(summary)
        assert state_from_json(result.row["state"]) == state
    big, small = results[0], results[2]
    assert isinstance(big, FiredCustomer) and isinstance(small, FiredCustomer)
    assert big.rules == ["lapse_90d", "lapse_180d"]
    assert big.next_due_ms == DAY0 + 365 * MS_PER_DAY  # the stage turns churned then
    assert small.rules == []  # below the spend threshold


def test_a_due_cross_sell_without_the_model_is_left_to_the_caller() -> None:
    value = stored(CROSS_SELL, purchase("c", iso(DAY0), 3000, categories=("tea",)))
    not_yet = FiringRequest(before_ms=DAY0 + 3 * MS_PER_DAY, now_ms=None, as_of_ms=DAY0)
    due = FiringRequest(before_ms=DAY0 + 8 * MS_PER_DAY, now_ms=None, as_of_ms=DAY0)

    assert fire_stored([value], due, CROSS_SELL, None) == [NEEDS_CO_PURCHASES]
    [untouched] = fire_stored([value], not_yet, CROSS_SELL, None)
    [fired] = fire_stored([value], due, CROSS_SELL, CoPurchaseModel())

    assert isinstance(untouched, FiredCustomer) and untouched.next_due_ms == DAY0 + 7 * MS_PER_DAY
    assert isinstance(fired, FiredCustomer)
    assert fired.rules == []  # no co-purchases to recommend
    assert fired.next_due_ms == DAY0 + 180 * MS_PER_DAY  # the stage turns lapsed then
