"""Peer for bench/compare.py: a bare aiokafka consume + ``orjson.loads`` loop (the ceiling).

    .venv/bin/python -m bench.peers.aiokafka_loop --broker HOST:PORT --topics A,B,C \
        --group G --events N [--time-cap S]

Reads the topics from the start with its own consumer group (auto commit) until
it has decoded ``--events`` records or ``--time-cap`` seconds have passed since
the first one. Talks to compare.py on stdout, one ``@@bench`` line per fact:
``first`` when the first record is decoded, ``done N T_FIRST T_LAST`` at the end
(wall-clock seconds). Runs on uvloop when ``F_LOOP=uvloop`` (as compare.py
sets it for Faust and Kizuna too). Then waits for its stdin to close, so the parent can read
its CPU time and peak RSS from /proc before it exits.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time

import orjson
from aiokafka import AIOKafkaConsumer


def report(*fields: object) -> None:
    # straight to fd 1: Faust's worker redirects sys.stdout into its logger
    os.write(1, (" ".join(["@@bench", *map(str, fields)]) + "\n").encode())


async def main(args: argparse.Namespace) -> None:
    consumer = AIOKafkaConsumer(
        *args.topics.split(","),
        bootstrap_servers=args.broker,
        group_id=args.group,
        auto_offset_reset="earliest",
        enable_auto_commit=True,
    )
    await consumer.start()
    customers: dict[str, int] = {}
    seen = 0
    first = last = 0.0
    deadline = float("inf")
    try:
        while seen < args.events and time.time() < deadline:
            batch = await consumer.getmany(timeout_ms=500, max_records=2000)
            for records in batch.values():
                for msg in records:
                    if msg.headers or not msg.value:
                        continue  # not an event (defensive: e.g. a replay's clock tick)
                    event = orjson.loads(msg.value)
                    cid = event["customer_id"]
                    customers[cid] = customers.get(cid, 0) + 1
                    seen += 1
                    if seen == 1:
                        first = time.time()
                        deadline = first + args.time_cap
                        report("first", first)
            last = time.time()
    finally:
        await consumer.stop()
    report("done", seen, first, last)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--broker", required=True)
    parser.add_argument("--topics", required=True, help="comma-separated full topic names")
    parser.add_argument("--group", required=True)
    parser.add_argument("--events", type=int, required=True)
    parser.add_argument("--time-cap", type=float, default=float("inf"))
    args = parser.parse_args()
    if os.environ.get("F_LOOP") == "uvloop":  # the same loop as the Faust peer and Kizuna
        import uvloop

        uvloop.install()
    asyncio.run(main(args))
    sys.stdin.read()  # the parent closes it once it has read /proc
