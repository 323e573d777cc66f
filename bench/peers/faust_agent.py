"""Peer for bench/compare.py: a bare Faust agent, one trivial dict update per message.

    F_LOOP=uvloop .venv/bin/python -m bench.peers.faust_agent --broker kafka://HOST:PORT \
        --topics A,B,C --app-id ID --partitions 4 --data-dir DIR --events N [--time-cap S]

faust-streaming from the project's virtualenv, raw value serializer, ``orjson``
decode, the memory store, at-least-once, no web server; the same quiet worker as
``kizuna worker`` (no spinner). The event loop is chosen the way Faust chooses it
for the Kizuna worker too: ``F_LOOP`` in the environment (``uvloop`` or unset for
asyncio's default). The consumer group is the app id. Same stdout protocol as
``bench.peers.aiokafka_loop``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import threading
import time
from typing import Any

import faust
import orjson


def report(*fields: object) -> None:
    # straight to fd 1: Faust's worker redirects sys.stdout into its logger
    os.write(1, (" ".join(["@@bench", *map(str, fields)]) + "\n").encode())


def exit_when_stdin_closes() -> None:
    sys.stdin.read()
    os._exit(0)


def build(args: argparse.Namespace) -> faust.App:
    app = faust.App(
        args.app_id,
        broker=args.broker,
        store="memory://",
        value_serializer="raw",
        key_serializer="raw",
        web_enabled=False,
        datadir=args.data_dir,
        topic_partitions=args.partitions,
        topic_replication_factor=1,
        consumer_auto_offset_reset="earliest",
        processing_guarantee="at_least_once",
    )
    topic = app.topic(*args.topics.split(","), key_type=bytes, value_type=bytes)
    customers: dict[str, int] = {}
    progress = {"seen": 0, "first": 0.0}

    @app.agent(topic)
    async def count(stream: Any) -> None:
        async for value in stream:
            if not value:
                continue  # not an event (defensive: nothing empty is published)
            event = orjson.loads(value)
            cid = event["customer_id"]
            customers[cid] = customers.get(cid, 0) + 1
            seen = progress["seen"] = progress["seen"] + 1
            now = time.time()
            if seen == 1:
                progress["first"] = now
                report("first", now, type(asyncio.get_running_loop()).__module__)
            if seen == args.events or now - progress["first"] >= args.time_cap:
                report("done", seen, progress["first"], now)
                progress["first"] = float("inf")  # report once; keep draining until killed

    return app


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--broker", required=True, help="kafka://host:port")
    parser.add_argument("--topics", required=True, help="comma-separated full topic names")
    parser.add_argument("--app-id", required=True)
    parser.add_argument("--partitions", type=int, required=True)
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--events", type=int, required=True)
    parser.add_argument("--time-cap", type=float, default=float("inf"))
    args = parser.parse_args()

    class QuietWorker(faust.Worker):
        """As in ``kizuna worker``: no spinner (it sets the root logger to DEBUG)."""

        def on_setup_root_logger(self, logger: Any, level: int) -> None:
            self.spinner = None

    threading.Thread(target=exit_when_stdin_closes, daemon=True).start()
    QuietWorker(build(args), loglevel="warning", quiet=True).execute_from_commandline()
