"""Faust records of the input events (wire contract v1).

The fields mirror :mod:`schemas.contract` exactly (a test enforces it).
Records are built by :func:`schemas.validation.decode_event` from raw bytes,
never trusted straight off the wire. Fields the contract does not know are
kept in ``extra`` so a newer producer loses nothing.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import faust

from schemas import codec  # noqa: F401  (registers the orjson codec)


class LineItem(faust.Record, serializer="orjson", include_metadata=False, coerce=True):
    """One line of an order: ``price`` is the unit price in major units."""

    sku: str
    category: str
    quantity: int
    price: float


class Purchase(faust.Record, serializer="orjson", include_metadata=False, coerce=True):
    """A completed order; ``amount`` is the order total in major units of ``currency``."""

    event_id: str
    customer_id: str
    occurred_at: datetime
    order_id: str
    amount: float
    currency: str = "JPY"
    items: list[LineItem] = []
    source: str | None = None
    coupon: str | None = None
    extra: dict[str, Any] = {}


class PageView(faust.Record, serializer="orjson", include_metadata=False, coerce=True):
    """A storefront page view."""

    event_id: str
    customer_id: str
    occurred_at: datetime
    page_type: str
    path: str | None = None
    sku: str | None = None
    session_id: str | None = None
    extra: dict[str, Any] = {}


class SupportTicket(faust.Record, serializer="orjson", include_metadata=False, coerce=True):
    """A support ticket opened or changed; ``satisfaction`` is 1-5 when given."""

    event_id: str
    customer_id: str
    occurred_at: datetime
    ticket_id: str
    status: str
    category: str
    satisfaction: int | None = None
    extra: dict[str, Any] = {}


class CustomerProfile(faust.Record, serializer="orjson", include_metadata=False, coerce=True):
    """Consent per channel (``None`` = unchanged), IANA ``timezone``, ``locale``."""

    event_id: str
    customer_id: str
    occurred_at: datetime
    consent: dict[str, bool] | None = None
    timezone: str | None = None
    locale: str | None = None
    extra: dict[str, Any] = {}


CustomerEvent = Purchase | PageView | SupportTicket | CustomerProfile

RECORD_BY_TYPE: dict[str, type[faust.Record]] = {
    "purchase": Purchase,
    "page_view": PageView,
    "support_ticket": SupportTicket,
    "customer_profile": CustomerProfile,
}


def event_type_name(event: CustomerEvent) -> str:
    """The contract name (``purchase``, ``page_view``, ...) of a record."""
    return _NAME_BY_RECORD[type(event)]


_NAME_BY_RECORD: dict[type[Any], str] = {rec: name for name, rec in RECORD_BY_TYPE.items()}
