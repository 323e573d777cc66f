"""Routing JSON lines to topics and ordering them on the event clock (no broker)."""

from __future__ import annotations

import orjson

from schemas.customer_row import encode_field
from streams.config import settings_from_mapping
from streams.dead_letters import describe_dead_letter
from streams.publisher import Routed, event_clock_order, route_lines
from streams.topics import TopicNames
from tests.factories import page_view, purchase

NAMES = TopicNames.from_settings(settings_from_mapping({"kafka": {"topic_prefix": "x."}}))


def test_lines_route_to_their_topic_keyed_by_customer_and_bad_lines_are_named() -> None:
    lines = [
        orjson.dumps(purchase("c1")),
        b"",
        b"{oops",
        orjson.dumps({"type": "exchange", "customer_id": "c1"}),
        orjson.dumps({**page_view("c2"), "customer_id": ""}),
    ]
    out = list(route_lines(lines, NAMES))
    assert isinstance(out[0], Routed) and out[0].topic == "x.purchases" and out[0].key == b"c1"
    assert out[1].startswith("line 3: not valid JSON")
    assert out[2].startswith("line 4: type 'exchange' is not one of purchase, page_view")
    assert isinstance(out[3], Routed) and out[3].key is None  # the worker will dead-letter it


def test_event_clock_order_sorts_by_time_and_keeps_bad_timestamps_in_place() -> None:
    events = [
        purchase("c1", "2026-03-02T00:00:00Z", event_id="b"),
        purchase("c1", "2026-03-01T00:00:00Z", event_id="a"),
        purchase("c1", "not a time", event_id="bad"),
        purchase("c1", "2026-03-01T00:00:00Z", event_id="a2"),
    ]
    routed = [
        r for r in route_lines([orjson.dumps(e) for e in events], NAMES) if isinstance(r, Routed)
    ]
    ordered = [item.event["event_id"] for _, item in event_clock_order(routed)]
    # "bad" keeps the time of the line before it in the file ("a"), and file order breaks ties
    assert ordered == ["a", "bad", "a2", "b"]


def test_read_model_field_encoding() -> None:
    assert [encode_field(v) for v in (None, "x", True, 3, 2.5, ["a"], {"k": 1})] == [
        "",
        "x",
        "true",
        "3",
        "2.5",
        '["a"]',
        '{"k":1}',
    ]


def test_dead_letter_description_keeps_original_bytes() -> None:
    headers = [("kizuna.reason_code", b"malformed_json"), ("kizuna.reason", b"not valid JSON")]
    text = describe_dead_letter(b"c1", b"{oops", headers)
    assert text == {
        "reason_code": "malformed_json",
        "reason": "not valid JSON",
        "key": "c1",
        "value": "{oops",
    }
    binary = describe_dead_letter(None, b"\xff\xfe", headers)
    assert binary["key"] is None and binary["value_base64"] == "//4="
