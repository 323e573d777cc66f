"""Typed records of the input events (wire contract v1).

The fields mirror :mod:`schemas.contract` exactly (a test enforces it), plus
``occurred_ms`` (``occurred_at`` as epoch milliseconds, UTC, computed once by
the validator) and ``extra`` (top-level fields the contract does not know, so
a newer producer loses nothing). Records are built by
:func:`schemas.validation.decode_event` from raw bytes, never trusted straight
off the wire. They are immutable ``msgspec`` structs: cheap to build and to
compare, which matters at tens of thousands of events per second.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec


class LineItem(msgspec.Struct, frozen=True, gc=False):
    """One line of an order: ``price`` is the unit price in major units."""

    sku: str
    category: str
    quantity: int
    price: float


class Purchase(msgspec.Struct, frozen=True, kw_only=True):
    """A completed order; ``amount`` is the order total in major units of ``currency``."""

    event_id: str
    customer_id: str
    occurred_at: datetime
    order_id: str
    amount: float
    currency: str = "JPY"
    items: tuple[LineItem, ...] = ()
    source: str | None = None
    coupon: str | None = None
    occurred_ms: int = 0
    extra: dict[str, Any] = msgspec.field(default_factory=dict)


class PageView(msgspec.Struct, frozen=True, kw_only=True):
    """A storefront page view."""

    event_id: str
    customer_id: str
    occurred_at: datetime
    page_type: str
    path: str | None = None
    sku: str | None = None
    session_id: str | None = None
    occurred_ms: int = 0
    extra: dict[str, Any] = msgspec.field(default_factory=dict)


class SupportTicket(msgspec.Struct, frozen=True, kw_only=True):
    """A support ticket opened or changed; ``satisfaction`` is 1-5 when given."""

    event_id: str
    customer_id: str
    occurred_at: datetime
    ticket_id: str
    status: str
    category: str
    satisfaction: int | None = None
    occurred_ms: int = 0
    extra: dict[str, Any] = msgspec.field(default_factory=dict)


class CustomerProfile(msgspec.Struct, frozen=True, kw_only=True):
    """Consent per channel (``None`` = unchanged), IANA ``timezone``, ``locale``."""

    event_id: str
    customer_id: str
    occurred_at: datetime
    consent: dict[str, Any] | None = None
    timezone: str | None = None
    locale: str | None = None
    occurred_ms: int = 0
    extra: dict[str, Any] = msgspec.field(default_factory=dict)


class Refund(msgspec.Struct, frozen=True, kw_only=True):
    """Money given back for an order: ``amount`` in major units of ``currency``."""

    event_id: str
    customer_id: str
    occurred_at: datetime
    order_id: str
    amount: float
    currency: str = "JPY"
    reason: str | None = None
    occurred_ms: int = 0
    extra: dict[str, Any] = msgspec.field(default_factory=dict)


CustomerEvent = Purchase | PageView | SupportTicket | CustomerProfile | Refund

RECORD_BY_TYPE: dict[str, type[CustomerEvent]] = {
    "purchase": Purchase,
    "page_view": PageView,
    "support_ticket": SupportTicket,
    "customer_profile": CustomerProfile,
    "refund": Refund,
}

#: Fields every record has beyond the contract's.
DERIVED_FIELDS = ("occurred_ms", "extra")


def record_fields(record_cls: type[Any]) -> tuple[str, ...]:
    """The field names of a record class, in declaration order."""
    return tuple(record_cls.__struct_fields__)


def required_fields(record_cls: type[Any]) -> frozenset[str]:
    """The fields a record class has no default for."""
    fields = record_cls.__struct_fields__
    return frozenset(fields[: len(fields) - len(record_cls.__struct_defaults__)])


def event_type_name(event: CustomerEvent) -> str:
    """The contract name (``purchase``, ``page_view``, ...) of a record."""
    return _NAME_BY_RECORD[type(event)]


_NAME_BY_RECORD: dict[type[Any], str] = {rec: name for name, rec in RECORD_BY_TYPE.items()}
