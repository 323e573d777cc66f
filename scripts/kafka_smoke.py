"""Check that a broker does what Kizuna needs from it, with the aiokafka Kizuna pins.

    .venv/bin/python scripts/kafka_smoke.py --bootstrap 127.0.0.1:19092

Creates topics (CreateTopics), produces and consumes, commits one
transaction and aborts another (a read_committed consumer must see only the
committed one), and commits consumer offsets inside a transaction
(send_offsets_to_transaction). Exit status 0 when all hold.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import uuid

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic


async def consume_all(bootstrap: str, topic: str, isolation: str) -> list[bytes]:
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        isolation_level=isolation,
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        values: list[bytes] = []
        for _ in range(10):
            batch = await consumer.getmany(timeout_ms=500)
            for records in batch.values():
                values += [r.value for r in records if r.value is not None]
        return values
    finally:
        await consumer.stop()


async def main(bootstrap: str) -> int:
    tag = uuid.uuid4().hex[:8]
    plain, txn, src = f"smoke-{tag}-plain", f"smoke-{tag}-txn", f"smoke-{tag}-src"
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    await admin.create_topics([NewTopic(t, 2, 1) for t in (plain, txn, src)])
    await admin.close()
    print("ok: CreateTopics")

    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True)
    await producer.start()
    await producer.send_and_wait(plain, b"hello", key=b"k")
    await producer.send_and_wait(src, b"source", key=b"k")
    await producer.stop()
    assert await consume_all(bootstrap, plain, "read_uncommitted") == [b"hello"]
    print("ok: produce and consume")

    tx = AIOKafkaProducer(bootstrap_servers=bootstrap, transactional_id=f"smoke-{tag}")
    await tx.start()
    async with tx.transaction():
        await tx.send(txn, b"committed", key=b"k")
        await tx.send_offsets_to_transaction(
            {TopicPartition(src, 0): 1, TopicPartition(src, 1): 1}, f"smoke-{tag}-group"
        )
    await tx.begin_transaction()
    await tx.send(txn, b"aborted", key=b"k")
    await tx.abort_transaction()
    await tx.stop()
    seen = await consume_all(bootstrap, txn, "read_committed")
    assert seen == [b"committed"], seen
    print("ok: transaction commit/abort seen correctly by read_committed")

    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=f"smoke-{tag}-group")
    await consumer.start()
    committed = await consumer.committed(TopicPartition(src, 0))
    await consumer.stop()
    assert committed == 1, committed
    print("ok: send_offsets_to_transaction committed group offsets")
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap", default="127.0.0.1:19092", help="host:port of the broker")
    sys.exit(asyncio.run(main(parser.parse_args().bootstrap)))
