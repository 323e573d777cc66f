"""Firing the due moments of stored customers: table values in, records out. Pure.

The worker fires a burst of due moments chunk by chunk, either in its event
loop or in a helper process (``streams/firing_pool.py``), so this takes and
returns only plain, picklable data: the customers' table values and, per
customer, its new table value, its encoded triggers and its encoded
read-model row. Both places run this same code, so they give the same bytes.

Only cross-sell reads the co-purchase model (``RuleParams.reads_co_purchases``),
which lives in the worker. Without a model (``co_purchases=None``), a customer
with such a moment due is left untouched and answered with
:data:`NEEDS_CO_PURCHASES`; the caller fires it where the model is.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final, NamedTuple

from agents.domain.co_purchase import CoPurchaseModel
from agents.domain.customer_view import state_json, summarize
from agents.domain.engine import EngineConfig
from agents.domain.lifecycle import fire_due
from agents.domain.moments import moments
from agents.domain.rules import Subject
from agents.domain.state_codec import decode_state, encode_state
from schemas.customer_row import encode_row

NEEDS_CO_PURCHASES: Final = "needs co-purchases"


class FiringRequest(NamedTuple):
    """What one firing of a partition's due moments asks for (times in epoch ms)."""

    before_ms: int  # fire every moment due strictly before this
    now_ms: int | None  # wall-clock time stamped as ``fired_at``; None: event time (the due time)
    as_of_ms: int  # the time the read-model row is summarised as of


class FiredCustomer(NamedTuple):
    """One customer after its due moments fired."""

    customer_id: str
    version: int
    value: bytes  # the new table value
    next_due_ms: int | None  # its earliest pending moment
    triggers: list[bytes]  # encoded triggers, in due order
    rules: list[str]  # the rule of each trigger
    row: dict[str, str]  # its encoded read-model row


FiringResult = FiredCustomer | str | None  # None: no such customer; str: NEEDS_CO_PURCHASES


def fire_stored(
    values: Sequence[bytes | None],
    request: FiringRequest,
    engine: EngineConfig,
    co_purchases: CoPurchaseModel | None,
) -> list[FiringResult]:
    """Fire the due moments of each stored customer in ``values`` (``None``: gone), in
    order. ``co_purchases`` must hold every change stamped before ``request.before_ms``;
    ``None`` defers the customers whose due moments read it (see the module docstring).
    """
    book = engine.rules
    results: list[FiringResult] = []
    for value in values:
        if value is None:
            results.append(None)
            continue
        state = decode_state(value)
        if co_purchases is None and any(
            book.rules[name].reads_co_purchases
            for _, name, _ in moments(
                Subject(state), book, state.evaluated_before, request.before_ms
            )
            if name in book.rules and book.rules[name].enabled
        ):
            results.append(NEEDS_CO_PURCHASES)
            continue
        fired = fire_due(
            state,
            before_ms=request.before_ms,
            book=book,
            co_purchases=co_purchases,
            now_ms=request.now_ms,
        )
        state.version += 1
        results.append(
            FiredCustomer(
                customer_id=state.customer_id,
                version=state.version,
                value=encode_state(state),
                next_due_ms=state.next_due,
                triggers=[trigger.to_bytes() for trigger in fired],
                rules=[trigger.rule for trigger in fired],
                row=customer_row(state, request.as_of_ms, engine),
            )
        )
    return results


def customer_row(state: object, as_of_ms: int, engine: EngineConfig) -> dict[str, str]:
    """The encoded read-model row of a state (its summary and the state itself)."""
    from agents.domain.customer_state import CustomerState

    assert isinstance(state, CustomerState)
    row = encode_row(summarize(state, as_of_ms, engine))
    row["state"] = state_json(state).decode()
    return row
