"""Peer for bench/compare.py: a Quix Streams application doing work comparable to Kizuna's.

    .cache/bench-quix-venv/bin/python bench/peers/quix_app.py --broker HOST:PORT \
        --purchases T --page-views T --tickets T --triggers T --group G \
        --state-dir DIR --events N [--time-cap S] [--guarantee at-least-once]

Runs in its own virtualenv (quixstreams + orjson only; compare.py creates it), so it
imports nothing from the repository. One streaming dataframe per input topic, keyed
by customer id, values decoded with ``orjson``; per-customer state in Quix's RocksDB
state store with changelog topics: purchases keep the count, spend and last
purchase time, page views the count and last view, tickets the count and open
tickets. A customer's third purchase emits a trigger record to ``--triggers``
(as Kizuna's ``loyal_promotion`` does). Same stdout protocol as
``bench.peers.aiokafka_loop``.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from typing import Any

import orjson
from quixstreams import Application, State
from quixstreams.models.serializers import Deserializer


class OrjsonDeserializer(Deserializer):
    def __call__(self, value: bytes, ctx: Any) -> Any:
        # None for an empty record: not an event (defensive; the Kizuna worker writes
        # nothing to the input topics, and earlier versions' nudges were empty)
        return orjson.loads(value) if value else None


def report(*fields: object) -> None:
    # straight to fd 1: Faust's worker redirects sys.stdout into its logger
    os.write(1, (" ".join(["@@bench", *map(str, fields)]) + "\n").encode())


def exit_when_stdin_closes() -> None:
    sys.stdin.read()
    os._exit(0)


def main(args: argparse.Namespace) -> None:
    app = Application(
        broker_address=args.broker,
        consumer_group=args.group,
        auto_offset_reset="earliest",
        state_dir=args.state_dir,
        use_changelog_topics=True,
        processing_guarantee=args.guarantee,
        loglevel="WARNING",
    )
    progress = {"seen": 0, "first": 0.0, "last": 0.0, "triggers": 0}

    def tick(value: Any) -> None:
        seen = progress["seen"] = progress["seen"] + 1
        now = time.time()
        if seen == 1:
            progress["first"] = now
            report("first", now)
        if seen == args.events or now - progress["first"] >= args.time_cap:
            progress["last"] = now
            app.stop()

    def on_purchase(event: dict[str, Any], state: State) -> dict[str, Any] | None:
        count = state.get("purchases", 0) + 1
        state.set("purchases", count)
        state.set("spend", state.get("spend", 0.0) + float(event["amount"]))
        state.set("last_purchase_at", event["occurred_at"])
        if count != 3:
            return None
        progress["triggers"] += 1
        return {
            "rule": "loyal_promotion",
            "customer_id": event["customer_id"],
            "at": event["occurred_at"],
            "purchases": count,
            "spend": state.get("spend"),
        }

    def on_page_view(event: dict[str, Any], state: State) -> None:
        state.set("views", state.get("views", 0) + 1)
        state.set("last_view_at", event["occurred_at"])

    def on_ticket(event: dict[str, Any], state: State) -> None:
        state.set("tickets", state.get("tickets", 0) + 1)
        opened = state.get("open_tickets", [])
        if event["status"] in ("opened", "updated"):
            if event["ticket_id"] not in opened:
                state.set("open_tickets", [*opened, event["ticket_id"]])
        elif event["ticket_id"] in opened:
            state.set("open_tickets", [t for t in opened if t != event["ticket_id"]])

    def source(name: str) -> Any:
        topic = app.topic(name, key_deserializer="str", value_deserializer=OrjsonDeserializer())
        return app.dataframe(topic).filter(lambda event: event is not None).update(tick)

    triggers = app.topic(args.triggers, value_serializer="json")
    purchases = source(args.purchases).apply(on_purchase, stateful=True)
    purchases.filter(lambda trigger: trigger is not None).to_topic(triggers)
    source(args.page_views).update(on_page_view, stateful=True)
    source(args.tickets).update(on_ticket, stateful=True)
    app.run()
    report("triggers", progress["triggers"])
    report("done", progress["seen"], progress["first"], progress["last"] or time.time())


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--broker", required=True, help="host:port")
    parser.add_argument("--purchases", required=True)
    parser.add_argument("--page-views", required=True)
    parser.add_argument("--tickets", required=True)
    parser.add_argument("--triggers", required=True)
    parser.add_argument("--group", required=True)
    parser.add_argument("--state-dir", required=True)
    parser.add_argument("--events", type=int, required=True)
    parser.add_argument("--time-cap", type=float, default=float("inf"))
    parser.add_argument("--guarantee", default="at-least-once")
    args = parser.parse_args()
    threading.Thread(target=exit_when_stdin_closes, daemon=True).start()
    main(args)
    sys.stdin.read()
