"""Firing the due timers of stored customers: table values in, records out. Pure.

The worker fires a burst of due timers chunk by chunk, either in its event
loop or in a helper process (``streams/firing_pool.py``), so this takes and
returns only plain, picklable data: the customers' table values (JSON bytes)
and, per customer, its new table value, its encoded triggers and, when its
lifecycle stage changed, its read-model row. Both places run this same code,
so they give the same bytes.

Only cross-sell reads the co-purchase model (``RuleParams.reads_co_purchases``),
which lives in the worker. Without a model (``co_purchases=None``), a customer
with such a timer due is left untouched and answered with
:data:`NEEDS_CO_PURCHASES`; the caller fires it where the model is.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final, NamedTuple

from agents.domain.co_purchase import CoPurchaseModel
from agents.domain.customer_state import CustomerState
from agents.domain.customer_view import summarize
from agents.domain.engine import EngineConfig
from agents.domain.lifecycle import fire_due_timers, next_due
from agents.domain.rulebook import Rulebook
from schemas.codec import dumps, loads
from schemas.customer_row import encode_row

NEEDS_CO_PURCHASES: Final = "needs co-purchases"


class FiringRequest(NamedTuple):
    """What one firing of a partition's due timers asks for (times in epoch ms)."""

    before_ms: int  # fire every timer due strictly before this
    now_ms: int | None  # wall-clock time stamped as ``fired_at``; None: event time (the due time)
    as_of_ms: int  # the time a changed read-model row is summarised as of


class FiredCustomer(NamedTuple):
    """One customer after its due timers fired."""

    customer_id: str
    version: int
    value: bytes  # the new table value
    next_due_ms: int | None  # its earliest pending timer
    triggers: list[bytes]  # encoded triggers, in due order
    rules: list[str]  # the rule of each trigger
    row: dict[str, str] | None  # its encoded read-model row if its stage changed, else None


FiringResult = FiredCustomer | str | None  # None: no such customer; str: NEEDS_CO_PURCHASES


def fire_stored(
    values: Sequence[bytes | None],
    request: FiringRequest,
    engine: EngineConfig,
    co_purchases: CoPurchaseModel | None,
) -> list[FiringResult]:
    """Fire the due timers of each stored customer in ``values`` (``None``: gone), in order.

    ``co_purchases`` must hold every increment stamped before ``request.before_ms``;
    ``None`` defers the customers whose due timers read it (see the module docstring).
    """
    book = engine.rules
    results: list[FiringResult] = []
    for value in values:
        if value is None:
            results.append(None)
            continue
        state = CustomerState.from_dict(loads(value))
        if co_purchases is None and _due_timer_reads_co_purchases(state, request.before_ms, book):
            results.append(NEEDS_CO_PURCHASES)
            continue
        stage_before = list(state.stage_history[-1]) if state.stage_history else None
        fired = fire_due_timers(
            state,
            before_ms=request.before_ms,
            book=book,
            co_purchases=co_purchases,
            now_ms=request.now_ms,
        )
        state.version += 1
        new_value = dumps(state.to_dict())
        row = None
        # Readers see stages, not timer bookkeeping: a row only for a stage change.
        if (state.stage_history[-1] if state.stage_history else None) != stage_before:
            row = encode_row(summarize(state, request.as_of_ms, engine.limits))
            row["state"] = new_value.decode()  # what encode_row makes of the state dict
        results.append(
            FiredCustomer(
                customer_id=state.customer_id,
                version=state.version,
                value=new_value,
                next_due_ms=next_due(state),
                triggers=[trigger.to_bytes() for trigger in fired],
                rules=[trigger.rule for trigger in fired],
                row=row,
            )
        )
    return results


def _due_timer_reads_co_purchases(state: CustomerState, before_ms: int, book: Rulebook) -> bool:
    for due, name, _ in state.timers:
        if due >= before_ms:
            return False
        rule = book.active(name)
        if rule is not None and rule.reads_co_purchases:
            return True
    return False
