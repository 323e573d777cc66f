"""Turn the raw bytes of an input message into a record, or say exactly why not.

Pure: no I/O and no clock reads; the caller passes ``now_ms``. Every rejection
carries a stable machine-readable ``code`` (used for counters and dead-letter
headers) and a human ``reason`` naming the offending field and value.

Bounds that hold whatever the clock: ``occurred_at`` in
[``EARLIEST_OCCURRED_AT``, ``LATEST_OCCURRED_AT``) (``timestamp_out_of_range``)
and every amount at most ``MAX_AMOUNT``, in its own currency and in the base
currency (``amount_out_of_range``), so the engine's time and money arithmetic
stays finite and inside the dates it can write. ``future_timestamp`` is a
wall-clock concept: it is checked only when the caller passes ``now_ms`` (a
wall-clock worker); event-clock workers and the backtest pass ``None`` and
instead leave out events after their ``--until``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from datetime import datetime
from typing import Any

import orjson

from schemas.contract import (
    EARLIEST_OCCURRED_AT,
    EVENT_TYPES_BY_NAME,
    LATEST_OCCURRED_AT,
    MAX_AMOUNT,
    MAX_NESTING_DEPTH,
    RFC3339_PATTERN,
    EventType,
    Field,
)
from schemas.events import RECORD_BY_TYPE, CustomerEvent, LineItem
from schemas.timestamps import to_ms

#: Rejection codes, one per class of bad input.
MALFORMED_JSON = "malformed_json"
NOT_AN_OBJECT = "not_an_object"
MISSING_CUSTOMER_ID = "missing_customer_id"
KEY_MISMATCH = "key_mismatch"
WRONG_EVENT_TYPE = "wrong_event_type"
SCHEMA_VIOLATION = "schema_violation"
NEGATIVE_AMOUNT = "negative_amount"
BAD_TIMESTAMP = "bad_timestamp"
FUTURE_TIMESTAMP = "future_timestamp"
TIMESTAMP_OUT_OF_RANGE = "timestamp_out_of_range"
UNSUPPORTED_CURRENCY = "unsupported_currency"
AMOUNT_OUT_OF_RANGE = "amount_out_of_range"
BAD_CLOCK_TICK = "bad_clock_tick"
BAD_CO_PURCHASE = "bad_co_purchase"  # an unreadable record on the internal co-purchases topic
# Not a validation result: the worker dead-letters an input record whose processing
# raised, with the exception as the reason, rather than crash (and lose it).
PROCESSING_ERROR = "processing_error"

REJECTION_CODES = (
    MALFORMED_JSON,
    NOT_AN_OBJECT,
    MISSING_CUSTOMER_ID,
    KEY_MISMATCH,
    WRONG_EVENT_TYPE,
    SCHEMA_VIOLATION,
    NEGATIVE_AMOUNT,
    BAD_TIMESTAMP,
    FUTURE_TIMESTAMP,
    TIMESTAMP_OUT_OF_RANGE,
    UNSUPPORTED_CURRENCY,
    AMOUNT_OUT_OF_RANGE,
    BAD_CLOCK_TICK,
    BAD_CO_PURCHASE,
    PROCESSING_ERROR,
)

_SHOWN_VALUE_CHARS = 60
_AMOUNT_FIELDS = frozenset({"amount"})


@dataclass(frozen=True)
class Rejection:
    """Why a message is not a valid event: ``code`` is one of REJECTION_CODES."""

    code: str
    reason: str


@dataclass(frozen=True)
class ValidationPolicy:
    """Limits that depend on configuration.

    ``max_future_ms``: how far past ``now_ms`` an ``occurred_at`` may lie.
    ``currencies``: the ISO 4217 codes a purchase may use (those with a rate).
    ``rates``: base-currency units per unit of a currency, to bound amounts in the
    base currency (a currency left out counts 1:1).
    """

    max_future_ms: int
    currencies: frozenset[str]
    rates: Mapping[str, float] = dataclass_field(default_factory=dict)


class _Invalid(Exception):
    def __init__(self, code: str, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


def decode_event(
    event_type: EventType | str,
    key: bytes | None,
    value: bytes | None,
    *,
    now_ms: int | None,
    policy: ValidationPolicy,
) -> CustomerEvent | Rejection:
    """Decode and validate one message of ``event_type``'s topic.

    ``now_ms``: the wall clock, to reject ``occurred_at`` more than
    ``policy.max_future_ms`` after it; ``None`` (event time: replays, simulation,
    backtest) skips that check.

    Returns the record, or a :class:`Rejection`. Never raises on bad input.
    """
    etype = EVENT_TYPES_BY_NAME[event_type] if isinstance(event_type, str) else event_type
    try:
        return _decode(etype, key, value, now_ms, policy)
    except _Invalid as exc:
        return Rejection(exc.code, exc.reason)


def parse_timestamp_ms(text: str) -> int:
    """Epoch milliseconds (UTC) of an RFC 3339 timestamp with offset.

    Raises ``ValueError`` when ``text`` is not one.
    """
    try:
        return _parse_timestamp(text, "timestamp")[1]
    except _Invalid as exc:
        raise ValueError(exc.reason) from None


def _decode(
    etype: EventType,
    key: bytes | None,
    value: bytes | None,
    now_ms: int | None,
    policy: ValidationPolicy,
) -> CustomerEvent:
    if value is None:
        raise _Invalid(MALFORMED_JSON, "message has no value (tombstone); expected a JSON object")
    try:
        data = orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        raise _Invalid(MALFORMED_JSON, f"not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise _Invalid(NOT_AN_OBJECT, f"expected a JSON object, got {_json_type(data)}")
    if _nests_deeper(data, MAX_NESTING_DEPTH):
        raise _Invalid(
            SCHEMA_VIOLATION, f"the object nests lists and objects deeper than {MAX_NESTING_DEPTH}"
        )

    declared = data.get("type")
    if declared is not None and declared != etype.name:
        raise _Invalid(
            WRONG_EVENT_TYPE,
            f"type {_show(declared)} does not belong on the {etype.topic} topic "
            f"(expected {etype.name!r})",
        )

    customer_id = data.get("customer_id")
    if customer_id is None or customer_id == "":
        raise _Invalid(MISSING_CUSTOMER_ID, "customer_id is missing or empty")
    if not isinstance(customer_id, str):
        raise _Invalid(
            MISSING_CUSTOMER_ID,
            f"customer_id must be a non-empty string, got {_json_type(customer_id)}",
        )
    _check_key(key, customer_id)

    values = _check_fields(etype.name, etype.all_fields, data, policy, now_ms)
    if "amount" in values:
        _check_base_amount(etype, values, policy)
    extra = {k: v for k, v in data.items() if k not in values and k != "type"}
    record_cls = RECORD_BY_TYPE[etype.name]
    values["occurred_ms"] = to_ms(values["occurred_at"])
    record: CustomerEvent = record_cls(**values, extra=extra)
    return record


def _check_key(key: bytes | None, customer_id: str) -> None:
    if key is None:
        raise _Invalid(KEY_MISMATCH, "message key is missing; it must be the customer_id")
    try:
        key_text = key.decode("utf-8")
    except UnicodeDecodeError:
        raise _Invalid(KEY_MISMATCH, "message key is not valid UTF-8") from None
    if key_text != customer_id:
        raise _Invalid(
            KEY_MISMATCH,
            f"message key {_show(key_text)} does not match customer_id {_show(customer_id)}",
        )


def _check_fields(
    path: str,
    fields: tuple[Field, ...],
    data: Mapping[str, Any],
    policy: ValidationPolicy,
    now_ms: int | None,
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for field in fields:
        where = f"{path}.{field.name}"
        if field.name not in data or data[field.name] is None:
            if field.required:
                raise _Invalid(SCHEMA_VIOLATION, f"{where} is required")
            continue
        out[field.name] = _check_value(where, field, data[field.name], policy, now_ms)
    return out


def _check_value(
    where: str, field: Field, raw: Any, policy: ValidationPolicy, now_ms: int | None
) -> Any:
    kind = field.type
    if kind == "timestamp":
        if not isinstance(raw, str):
            raise _Invalid(BAD_TIMESTAMP, f"{where} must be an RFC 3339 string, got {_show(raw)}")
        parsed, ms = _parse_timestamp(raw, where)
        if not _EARLIEST_MS <= ms < _LATEST_MS:
            raise _Invalid(
                TIMESTAMP_OUT_OF_RANGE,
                f"{where} {_show(raw)} lies outside [{EARLIEST_OCCURRED_AT}, {LATEST_OCCURRED_AT})",
            )
        if now_ms is not None and ms > now_ms + policy.max_future_ms:
            hours = (ms - now_ms) / 3_600_000
            raise _Invalid(
                FUTURE_TIMESTAMP,
                f"{where} {raw} lies {hours:.1f} h in the future "
                f"(limit {policy.max_future_ms / 3_600_000:g} h)",
            )
        return parsed
    if kind == "string":
        return _check_string(where, field, raw, policy)
    if kind in ("number", "integer"):
        return _check_number(where, field, raw)
    if kind == "boolean":
        if not isinstance(raw, bool):
            raise _Invalid(SCHEMA_VIOLATION, f"{where} must be true or false, got {_show(raw)}")
        return raw
    if kind == "array":
        if not isinstance(raw, list):
            raise _Invalid(SCHEMA_VIOLATION, f"{where} must be a list, got {_json_type(raw)}")
        assert field.items is not None
        items = []
        for i, item in enumerate(raw):
            if not isinstance(item, dict):
                raise _Invalid(
                    SCHEMA_VIOLATION, f"{where}[{i}] must be an object, got {_json_type(item)}"
                )
            items.append(
                LineItem(**_check_fields(f"{where}[{i}]", field.items, item, policy, now_ms))
            )
        return tuple(items)
    if kind == "object":
        if not isinstance(raw, dict):
            raise _Invalid(SCHEMA_VIOLATION, f"{where} must be an object, got {_json_type(raw)}")
        assert field.properties is not None
        known = _check_fields(where, field.properties, raw, policy, now_ms)
        unknown = {k: v for k, v in raw.items() if k not in known and v is not None}
        return {**unknown, **known}
    raise AssertionError(f"unhandled field type {kind}")  # pragma: no cover


def _check_string(where: str, field: Field, raw: Any, policy: ValidationPolicy) -> str:
    if not isinstance(raw, str):
        raise _Invalid(SCHEMA_VIOLATION, f"{where} must be a string, got {_json_type(raw)}")
    if field.non_empty and not raw.strip():
        raise _Invalid(SCHEMA_VIOLATION, f"{where} must not be empty")
    if field.enum is not None and raw not in field.enum:
        raise _Invalid(
            SCHEMA_VIOLATION, f"{where} must be one of {', '.join(field.enum)}; got {_show(raw)}"
        )
    if field.pattern is not None and not re.fullmatch(field.pattern, raw):
        raise _Invalid(SCHEMA_VIOLATION, f"{where} {_show(raw)} is not of the form {field.pattern}")
    if field.name == "currency" and raw not in policy.currencies:
        raise _Invalid(
            UNSUPPORTED_CURRENCY,
            f"{where} {raw} has no exchange rate configured "
            f"(known: {', '.join(sorted(policy.currencies))})",
        )
    return raw


def _check_number(where: str, field: Field, raw: Any) -> int | float:
    integer = field.type == "integer"
    ok = isinstance(raw, int) if integer else isinstance(raw, int | float)
    if not ok or isinstance(raw, bool) or (isinstance(raw, float) and not math.isfinite(raw)):
        wanted = "an integer" if integer else "a number"
        raise _Invalid(SCHEMA_VIOLATION, f"{where} must be {wanted}, got {_show(raw)}")
    if field.minimum is not None and raw < field.minimum:
        code = NEGATIVE_AMOUNT if field.minimum == 0 and raw < 0 else SCHEMA_VIOLATION
        raise _Invalid(code, f"{where} must be >= {field.minimum:g}, got {raw}")
    if field.maximum is not None and raw > field.maximum:
        code = AMOUNT_OUT_OF_RANGE if field.name in _AMOUNT_FIELDS else SCHEMA_VIOLATION
        raise _Invalid(code, f"{where} must be <= {field.maximum:g}, got {_show(raw)}")
    return raw if integer else float(raw) + 0.0  # + 0.0: -0.0 becomes 0.0


def _check_base_amount(
    etype: EventType, values: Mapping[str, Any], policy: ValidationPolicy
) -> None:
    """The amount converted to the base currency is finite and at most ``MAX_AMOUNT``."""
    currency = values.get("currency")
    if currency is None:  # the record's default, which must have a rate too
        currency = next(f.default for f in etype.fields if f.name == "currency")
        if currency not in policy.currencies:
            raise _Invalid(
                UNSUPPORTED_CURRENCY,
                f"{etype.name}.currency is missing and its default {currency} has no "
                "exchange rate configured",
            )
    base = values["amount"] * policy.rates.get(currency, 1.0)
    if not (math.isfinite(base) and base <= MAX_AMOUNT):
        raise _Invalid(
            AMOUNT_OUT_OF_RANGE,
            f"{etype.name}.amount {values['amount']:g} {currency} is {base:g} in the base "
            f"currency; the limit is {MAX_AMOUNT:g}",
        )


_EARLIEST_MS = to_ms(datetime.fromisoformat(EARLIEST_OCCURRED_AT))
_LATEST_MS = to_ms(datetime.fromisoformat(LATEST_OCCURRED_AT))


def _parse_timestamp(raw: str, where: str) -> tuple[datetime, int]:
    if not re.fullmatch(RFC3339_PATTERN, raw):
        raise _Invalid(
            BAD_TIMESTAMP,
            f"{where} {_show(raw)} is not an RFC 3339 timestamp with offset "
            "(e.g. 2026-03-01T10:15:00+09:00)",
        )
    try:
        parsed = datetime.fromisoformat(raw.replace("z", "Z"))
    except ValueError as exc:
        raise _Invalid(BAD_TIMESTAMP, f"{where} {_show(raw)} is not a valid date: {exc}") from None
    return parsed, to_ms(parsed)


def _nests_deeper(data: dict[str, Any], limit: int) -> bool:
    """Whether ``data`` (level 1) holds a list or object deeper than level ``limit``."""
    stack: list[tuple[Any, int]] = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        for child in value.values() if isinstance(value, dict) else value:
            if isinstance(child, dict | list):
                if depth >= limit:
                    return True
                stack.append((child, depth + 1))
    return False


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    return "an object"


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= _SHOWN_VALUE_CHARS else text[: _SHOWN_VALUE_CHARS - 3] + "..."
