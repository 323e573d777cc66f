"""Check that a broker does what Kizuna needs from it, with the aiokafka and Faust Kizuna pins.

    .venv/bin/python scripts/kafka_smoke.py --bootstrap 127.0.0.1:19092

Checks, in order (each prints an "ok:" line; the first failure stops the run
with exit status 1):

1. CreateTopics through aiokafka's AIOKafkaAdminClient;
2. plain produce (idempotent, acks=all) and consume;
3. a transactional producer commits one transaction and aborts another: a
   read_committed consumer sees only the committed record, a
   read_uncommitted one sees both;
4. send_offsets_to_transaction inside the committed transaction commits the
   consumer group's offsets;
5. a consume-transform-produce loop under exactly-once with a group consumer
   (the way Faust's exactly_once guarantee uses aiokafka);
6. Faust (faust-streaming) creates a compacted topic with the partition count
   it asks for, via its own CreateTopics path.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import time
import uuid

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType


async def consume_all(bootstrap: str, topic: str, isolation: str, expect: int) -> list[bytes]:
    """Read a topic from the start until `expect` records arrived or 10 s passed."""
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
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=300)
            for records in batch.values():
                values += [r.value for r in records if r.value is not None]
            if len(values) >= expect:
                # One more short poll, so that unexpected extra records show up too.
                batch = await consumer.getmany(timeout_ms=500)
                for records in batch.values():
                    values += [r.value for r in records if r.value is not None]
                break
        return sorted(values)
    finally:
        await consumer.stop()


async def check_admin(bootstrap: str, topics: list[str]) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(t, 2, 1) for t in topics])
        listed = set(await admin.list_topics())
        assert set(topics) <= listed, f"created topics missing: {set(topics) - listed}"
    finally:
        await admin.close()
    print(f"ok: CreateTopics via AIOKafkaAdminClient ({len(topics)} topics, 2 partitions)")


async def check_produce_consume(bootstrap: str, plain: str, src: str) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True)
    await producer.start()
    try:
        await producer.send_and_wait(plain, b"hello", key=b"k")
        for i in range(4):
            await producer.send_and_wait(src, b"source-%d" % i, partition=i % 2)
    finally:
        await producer.stop()
    seen = await consume_all(bootstrap, plain, "read_uncommitted", 1)
    assert seen == [b"hello"], seen
    print("ok: idempotent produce (acks=all) and consume")


async def check_transactions(bootstrap: str, tag: str, txn: str, src: str) -> None:
    group = f"smoke-{tag}-group"
    tx = AIOKafkaProducer(bootstrap_servers=bootstrap, transactional_id=f"smoke-{tag}")
    await tx.start()
    try:
        async with tx.transaction():
            await tx.send(txn, b"committed", key=b"k")
            await tx.send_offsets_to_transaction(
                {TopicPartition(src, 0): 2, TopicPartition(src, 1): 1}, group
            )
        await tx.begin_transaction()
        await tx.send(txn, b"aborted", key=b"k")
        await tx.abort_transaction()
    finally:
        await tx.stop()

    committed_only = await consume_all(bootstrap, txn, "read_committed", 1)
    assert committed_only == [b"committed"], committed_only
    everything = await consume_all(bootstrap, txn, "read_uncommitted", 2)
    assert everything == [b"aborted", b"committed"], everything
    print("ok: transaction commit + abort: read_committed sees only the committed record")

    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group)
    await consumer.start()
    try:
        offsets = (
            await consumer.committed(TopicPartition(src, 0)),
            await consumer.committed(TopicPartition(src, 1)),
        )
    finally:
        await consumer.stop()
    assert offsets == (2, 1), offsets
    print("ok: send_offsets_to_transaction committed the group's offsets (2, 1)")


async def check_exactly_once_loop(bootstrap: str, tag: str, src: str, out: str) -> None:
    """Consume src in a group, produce to out and commit offsets in one transaction."""
    group = f"smoke-{tag}-eos"
    consumer = AIOKafkaConsumer(
        src,
        bootstrap_servers=bootstrap,
        group_id=group,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        isolation_level="read_committed",
    )
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, transactional_id=f"smoke-{tag}-eos")
    await consumer.start()
    await producer.start()
    try:
        done = 0
        deadline = time.monotonic() + 20
        while done < 4 and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=300)
            if not batch:
                continue
            async with producer.transaction():
                offsets = {}
                for tp, records in batch.items():
                    for r in records:
                        await producer.send(out, r.value.upper(), partition=tp.partition)
                        done += 1
                    offsets[tp] = records[-1].offset + 1
                await producer.send_offsets_to_transaction(offsets, group)
        assert done == 4, f"consumed {done} of 4 source records"
    finally:
        await producer.stop()
        await consumer.stop()
    seen = await consume_all(bootstrap, out, "read_committed", 4)
    assert seen == [b"SOURCE-%d" % i for i in range(4)], seen

    check = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group)
    await check.start()
    try:
        committed = [await check.committed(TopicPartition(src, p)) for p in (0, 1)]
    finally:
        await check.stop()
    assert committed == [2, 2], committed
    print("ok: consume-transform-produce under a transaction with a consumer group")


async def check_faust_creates_topics(bootstrap: str, tag: str) -> None:
    import faust  # imported here: it is slow to import and only this check needs it

    name = f"smoke-{tag}-faust-changelog"
    app = faust.App(
        f"smoke-{tag}-faust",
        broker=f"kafka://{bootstrap}",
        topic_replication_factor=1,
        topic_partitions=3,
        web_enabled=False,
    )
    topic = app.topic(name, partitions=3, compacting=True, deleting=False, internal=True)
    await app.producer.start()
    try:
        await topic.declare()
    finally:
        await app.producer.stop()

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        described = await admin.describe_topics([name])
        partitions = len(described[0]["partitions"])
        configs = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, name)])
    finally:
        await admin.close()
    assert partitions == 3, f"{name} has {partitions} partitions, wanted 3"
    entries = {c[0]: c[1] for c in configs[0].resources[0][4]}
    assert entries.get("cleanup.policy") == "compact", entries.get("cleanup.policy")
    print("ok: Faust created a compacted topic with 3 partitions (its own CreateTopics path)")


async def main(bootstrap: str) -> int:
    tag = uuid.uuid4().hex[:8]
    plain, txn, src, out = (f"smoke-{tag}-{n}" for n in ("plain", "txn", "src", "out"))
    await check_admin(bootstrap, [plain, txn, src, out])
    await check_produce_consume(bootstrap, plain, src)
    await check_transactions(bootstrap, tag, txn, src)
    await check_exactly_once_loop(bootstrap, tag, src, out)
    await check_faust_creates_topics(bootstrap, tag)
    print(f"all checks passed against {bootstrap}")
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap", default="127.0.0.1:19092", help="host:port of the broker")
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    try:
        sys.exit(asyncio.run(main(args.bootstrap)))
    except Exception as exc:  # report any failure as one line, exit status 1
        print(f"FAILED: {type(exc).__name__}: {exc}", file=sys.stderr)
        sys.exit(1)
