"""Wire contract v1 of the input events, as data.

This module is the single source of truth for what a valid input event is.
The validator (:mod:`schemas.validation`), the JSON Schema export
(:mod:`schemas.jsonschema`) and the typed records (:mod:`schemas.events`,
checked against this by a test) all derive from it. No I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

CONTRACT_VERSION = 1

FieldType = Literal["string", "number", "integer", "boolean", "timestamp", "object", "array"]


@dataclass(frozen=True)
class Field:
    """One field of an event object.

    ``minimum``/``maximum`` bound numbers (inclusive); ``enum`` lists the
    allowed strings; ``pattern`` is a regular expression a string must match
    in full; ``items`` describes the objects of an ``array`` field and
    ``properties`` the members of an ``object`` field.
    """

    name: str
    type: FieldType
    required: bool = True
    description: str = ""
    non_empty: bool = False
    minimum: float | None = None
    maximum: float | None = None
    enum: tuple[str, ...] | None = None
    pattern: str | None = None
    default: object = None
    items: tuple[Field, ...] | None = None
    properties: tuple[Field, ...] | None = None


@dataclass(frozen=True)
class EventType:
    """An input event type: its name (the ``type`` of a JSON-lines record),
    the logical topic it travels on, and its fields after the common ones."""

    name: str
    topic: str
    description: str
    fields: tuple[Field, ...]

    @property
    def all_fields(self) -> tuple[Field, ...]:
        return COMMON_FIELDS + self.fields


PAGE_TYPES = ("home", "category", "product", "cart", "checkout", "pricing", "support", "other")
HIGH_INTENT_PAGE_TYPES = frozenset({"cart", "checkout", "pricing"})
TICKET_STATUSES = ("opened", "updated", "resolved", "closed")
OPEN_TICKET_STATUSES = frozenset({"opened", "updated"})
TICKET_CATEGORIES = ("trouble", "complaint", "question", "cancellation", "other")
TROUBLE_TICKET_CATEGORIES = frozenset({"trouble", "complaint"})
CONSENT_CHANNELS = ("email", "line", "dm", "sms")

RFC3339_PATTERN = r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})"
CURRENCY_PATTERN = r"[A-Z]{3}"

#: ``occurred_at`` must lie in [EARLIEST_OCCURRED_AT, LATEST_OCCURRED_AT) (UTC instants).
#: Earlier is no storefront event; later leaves no room for the times rules derive
#: from an event (due dates, windows: decades at most) inside the years 0001-9999
#: that dates can be written in.
EARLIEST_OCCURRED_AT = "2000-01-01T00:00:00Z"
LATEST_OCCURRED_AT = "9000-01-01T00:00:00Z"
#: The largest amount, in major units of its currency and again after conversion to
#: the base currency (``agents.domain.customer_state.MAX_AMOUNT``, the same value).
MAX_AMOUNT = 1e15
_OCCURRED_AT_RANGE = f"Must lie in [{EARLIEST_OCCURRED_AT}, {LATEST_OCCURRED_AT})."
#: How deeply a message may nest objects and lists (the event object is level 1).
#: Unknown fields are kept, and deeper values would exhaust the stack of the encoders
#: that store and fingerprint an event.
MAX_NESTING_DEPTH = 32

COMMON_FIELDS: tuple[Field, ...] = (
    Field(
        "event_id",
        "string",
        non_empty=True,
        description="Unique per event; a repeat for the same customer is ignored.",
    ),
    Field(
        "customer_id",
        "string",
        non_empty=True,
        description="The customer; must equal the Kafka message key (UTF-8).",
    ),
    Field(
        "occurred_at",
        "timestamp",
        pattern=RFC3339_PATTERN,
        description=(
            "RFC 3339 timestamp with an explicit offset, e.g. 2026-03-01T10:15:00+09:00. "
            + _OCCURRED_AT_RANGE
        ),
    ),
)

LINE_ITEM_FIELDS: tuple[Field, ...] = (
    Field("sku", "string", non_empty=True),
    Field("category", "string", non_empty=True),
    Field("quantity", "integer", minimum=1),
    Field("price", "number", minimum=0, description="Unit price, major currency units."),
)

PURCHASE = EventType(
    name="purchase",
    topic="purchases",
    description="A completed order.",
    fields=(
        Field("order_id", "string", non_empty=True),
        Field(
            "amount",
            "number",
            minimum=0,
            maximum=MAX_AMOUNT,
            description=(
                f"Order total, major currency units; at most {MAX_AMOUNT:g}, also in base units."
            ),
        ),
        Field(
            "currency",
            "string",
            required=False,
            default="JPY",
            pattern=CURRENCY_PATTERN,
            description="ISO 4217 code.",
        ),
        Field("items", "array", required=False, items=LINE_ITEM_FIELDS, default=()),
        Field(
            "source",
            "string",
            required=False,
            description="Acquisition campaign or landing-page variant.",
        ),
        Field("coupon", "string", required=False),
    ),
)

PAGE_VIEW = EventType(
    name="page_view",
    topic="page-views",
    description="A page view on the storefront.",
    fields=(
        Field("page_type", "string", enum=PAGE_TYPES),
        Field("path", "string", required=False),
        Field("sku", "string", required=False),
        Field("session_id", "string", required=False),
    ),
)

SUPPORT_TICKET = EventType(
    name="support_ticket",
    topic="support-tickets",
    description="A support ticket was opened or changed status.",
    fields=(
        Field("ticket_id", "string", non_empty=True),
        Field("status", "string", enum=TICKET_STATUSES),
        Field("category", "string", enum=TICKET_CATEGORIES),
        Field("satisfaction", "integer", required=False, minimum=1, maximum=5),
    ),
)

CUSTOMER_PROFILE = EventType(
    name="customer_profile",
    topic="customer-profiles",
    description="Consent, timezone and locale of a customer (ids only, no personal data).",
    fields=(
        Field(
            "consent",
            "object",
            required=False,
            properties=tuple(Field(c, "boolean", required=False) for c in CONSENT_CHANNELS),
            description="Per-channel marketing consent; channels left out are unchanged.",
        ),
        Field("timezone", "string", required=False, description="IANA time zone name."),
        Field("locale", "string", required=False, description="BCP 47 tag, e.g. ja-JP."),
    ),
)

REFUND = EventType(
    name="refund",
    topic="refunds",
    description=(
        "Money given back for an order: lowers the customer's spend, and a refund of the "
        "whole order amount takes the order out of the purchase counts."
    ),
    fields=(
        Field("order_id", "string", non_empty=True, description="The order refunded."),
        Field(
            "amount",
            "number",
            minimum=0,
            maximum=MAX_AMOUNT,
            description=(
                f"Amount refunded, major units; at most {MAX_AMOUNT:g}, also in base units."
            ),
        ),
        Field(
            "currency",
            "string",
            required=False,
            default="JPY",
            pattern=CURRENCY_PATTERN,
            description="ISO 4217 code.",
        ),
        Field("reason", "string", required=False),
    ),
)

EVENT_TYPES: tuple[EventType, ...] = (
    PURCHASE,
    PAGE_VIEW,
    SUPPORT_TICKET,
    CUSTOMER_PROFILE,
    REFUND,
)
EVENT_TYPES_BY_NAME: dict[str, EventType] = {t.name: t for t in EVENT_TYPES}
EVENT_TYPES_BY_TOPIC: dict[str, EventType] = {t.topic: t for t in EVENT_TYPES}
