"""Builders of valid input events as JSON-able dicts, for tests and samples."""

from __future__ import annotations

from typing import Any

import orjson

from schemas.events import CustomerEvent
from schemas.validation import Rejection, ValidationPolicy, decode_event

POLICY = ValidationPolicy(max_future_ms=24 * 3_600_000, currencies=frozenset({"JPY", "USD"}))
NOW_MS = 1_800_000_000_000  # 2027-01-15T08:00:00Z: after every test timestamp


def purchase(
    customer: str = "c1",
    at: str = "2026-03-01T10:00:00+09:00",
    amount: float = 1000,
    *,
    event_id: str | None = None,
    order_id: str | None = None,
    categories: tuple[str, ...] = ("food",),
    **extra: Any,
) -> dict[str, Any]:
    return {
        "type": "purchase",
        "event_id": event_id or f"p-{customer}-{at}",
        "customer_id": customer,
        "occurred_at": at,
        "order_id": order_id or f"o-{customer}-{at}",
        "amount": amount,
        "items": [
            {"sku": f"sku-{c}", "category": c, "quantity": 1, "price": amount} for c in categories
        ],
        **extra,
    }


def page_view(
    customer: str = "c1",
    at: str = "2026-03-01T10:00:00+09:00",
    page_type: str = "product",
    *,
    event_id: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    return {
        "type": "page_view",
        "event_id": event_id or f"v-{customer}-{at}-{page_type}",
        "customer_id": customer,
        "occurred_at": at,
        "page_type": page_type,
        **extra,
    }


def ticket(
    customer: str = "c1",
    at: str = "2026-03-01T10:00:00+09:00",
    ticket_id: str = "t1",
    status: str = "opened",
    category: str = "trouble",
    *,
    event_id: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    return {
        "type": "support_ticket",
        "event_id": event_id or f"t-{customer}-{ticket_id}-{status}-{at}",
        "customer_id": customer,
        "occurred_at": at,
        "ticket_id": ticket_id,
        "status": status,
        "category": category,
        **extra,
    }


def profile(
    customer: str = "c1",
    at: str = "2026-03-01T10:00:00+09:00",
    *,
    event_id: str | None = None,
    **fields: Any,
) -> dict[str, Any]:
    return {
        "type": "customer_profile",
        "event_id": event_id or f"pr-{customer}-{at}",
        "customer_id": customer,
        "occurred_at": at,
        **fields,
    }


def refund(
    customer: str = "c1",
    at: str = "2026-03-05T10:00:00+09:00",
    order_id: str = "o-c1-2026-03-01T10:00:00+09:00",
    amount: float = 1000,
    *,
    event_id: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    return {
        "type": "refund",
        "event_id": event_id or f"r-{customer}-{order_id}-{at}",
        "customer_id": customer,
        "occurred_at": at,
        "order_id": order_id,
        "amount": amount,
        **extra,
    }


def record(data: dict[str, Any]) -> CustomerEvent:
    """Decode a dict through the real validator; fails the test if it is rejected."""
    decoded = decode_event(
        data["type"],
        str(data["customer_id"]).encode(),
        orjson.dumps(data),
        now_ms=NOW_MS,
        policy=POLICY,
    )
    assert not isinstance(decoded, Rejection), decoded
    return decoded
