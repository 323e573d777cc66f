"""Ingest agent: validate input events, update the customer table, dead-letter the rest.

Thin by design: decoding is :func:`schemas.validation.decode_event`, the state
change is :func:`agents.domain.customer_state.apply_event`. The table read,
change and write happen without an ``await`` in between, so no other agent
interleaves with them.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from agents.domain.customer_state import CustomerState, Outcome, apply_event
from agents.domain.customer_view import summarize
from schemas.validation import Rejection, ValidationPolicy, decode_event

if TYPE_CHECKING:
    from faust.types import Message

    from streams.app import Pipeline

log = logging.getLogger(__name__)

HEADER_REASON = "kizuna.reason"
HEADER_CODE = "kizuna.reason_code"
HEADER_TOPIC = "kizuna.source_topic"
HEADER_PARTITION = "kizuna.source_partition"
HEADER_OFFSET = "kizuna.source_offset"
HEADER_TIMESTAMP = "kizuna.source_timestamp_ms"


def dead_letter_headers(message: Message, rejection: Rejection) -> list[tuple[str, bytes]]:
    """Headers that say where a rejected message came from and why it was rejected."""
    return [
        (HEADER_CODE, rejection.code.encode()),
        (HEADER_REASON, rejection.reason.encode()),
        (HEADER_TOPIC, message.topic.encode()),
        (HEADER_PARTITION, str(message.partition).encode()),
        (HEADER_OFFSET, str(message.offset).encode()),
        (HEADER_TIMESTAMP, str(int(message.timestamp * 1000)).encode()),
    ]


def register(p: Pipeline) -> None:
    """Attach the ingest agent to ``p.app``."""
    settings = p.settings
    policy = ValidationPolicy(
        max_future_ms=int(settings.validation.max_future_hours * 3_600_000),
        currencies=frozenset(settings.currency.all_rates()),
    )
    limits = settings.state.limits()
    rates = settings.currency.all_rates()
    event_type_by_topic = {topic: name for name, topic in p.topics.inputs.items()}

    @p.app.agent(p.inputs, name="ingest")
    async def ingest(stream: Any) -> None:
        async for event in stream.events():
            message = event.message
            decoded = decode_event(
                event_type_by_topic[message.topic],
                message.key,
                message.value,
                now_ms=p.now_ms(),
                policy=policy,
            )
            if isinstance(decoded, Rejection):
                p.counters["dead_letter.total"] += 1
                p.counters[f"dead_letter.{decoded.code}"] += 1
                p.read_model.count("dead_letter.total")
                p.read_model.count(f"dead_letter.{decoded.code}")
                log.info(
                    "dead-lettered %s[%d]@%d: %s",
                    message.topic,
                    message.partition,
                    message.offset,
                    decoded.reason,
                )
                await p.dead_letter.send(
                    key=message.key,
                    value=message.value,
                    headers=dead_letter_headers(message, decoded),
                )
                continue

            stored = p.customers.get(decoded.customer_id)
            state = (
                CustomerState(decoded.customer_id)
                if stored is None
                else CustomerState.from_dict(stored)
            )
            outcome = apply_event(state, decoded, limits=limits, rates=rates)
            p.counters[f"events.{outcome.value}"] += 1
            p.read_model.count(f"events.{outcome.value}")
            if outcome is not Outcome.APPLIED:
                continue
            p.customers[decoded.customer_id] = state.to_dict()
            p.read_model.stage(
                state.customer_id,
                state.version,
                {**summarize(state, p.now_ms(), limits), "state": state.to_dict()},
            )
