"""Control records (wall-clock ticks, the stall check's wake-ups, co-purchase changes) to
any partition, through a plain producer of the worker's own.

Under exactly-once, Faust's transaction manager picks the transactional producer by
the *destination* partition, and a worker only has producers for the partitions it
owns: a tick or a co-purchase record for another worker's partition raised
(``ProducerSendError: No transaction producer found``), and one for an owned partition
went into that partition's transaction, invisible until that partition committed. A
plain producer reaches every partition, visible at once, in both guarantee modes.

What keeps that sound: ticks and wake-ups are idempotent, and co-purchase change records carry an
id deterministic in their source (input stream and offset) that every replica drops
once applied (``agents/domain/co_purchase.py``), so a record re-sent after a crash or
a rebalance is harmless. What must not happen is an input offset committed before its
control records are in Kafka: :meth:`ControlProducer.install_commit_hook` makes
Faust's commit (``producer.flush`` at-least-once, ``producer.commit_transactions``
exactly-once) wait for :meth:`ControlProducer.delivered` first.

Records are handed to aiokafka by one task in call order, so the records to one
partition reach it in call order (the producer is idempotent: retries keep the order).
A record that cannot be delivered crashes the worker, as a lost changelog record does.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

from aiokafka import AIOKafkaProducer

log = logging.getLogger(__name__)

Record = tuple[str, int, bytes, list[tuple[str, bytes]] | None]  # topic, partition, value, headers


class ControlProducer:
    """Lazily started; one per worker. ``close`` it on shutdown."""

    def __init__(
        self,
        bootstrap_servers: str,
        on_failure: Callable[[BaseException], Any] | None = None,
    ) -> None:
        self._bootstrap = bootstrap_servers
        self._on_failure = on_failure
        self._producer: AIOKafkaProducer | None = None
        self._queue: deque[Record] = deque()
        self._pump: asyncio.Task[None] | None = None
        self._in_flight: set[asyncio.Future[Any]] = set()
        self.failure: BaseException | None = None
        self.records_sent = 0
        self._hooked: set[int] = set()
        self._crash: asyncio.Future[Any] | None = None
        # Run after the control records are delivered and before Faust's commit flushes
        # its producer (the worker publishes the states held for their records).
        self.before_commit: list[Callable[[], Awaitable[None]]] = []
        # Run first by every :meth:`delivered` (so by every commit): they queue the
        # records batched so far (the worker's co-purchase outbox), which then count as
        # queued for that wait.
        self.before_delivery: list[Callable[[], None]] = []

    def send_soon(
        self,
        topic: str,
        partition: int,
        value: bytes,
        headers: list[tuple[str, bytes]] | None = None,
    ) -> None:
        """Queue one record (no key) for ``topic[partition]``; handed over in call order."""
        self._check()
        self._queue.append((topic, partition, value, headers))
        if self._pump is None or self._pump.done():
            self._pump = asyncio.ensure_future(self._hand_over())

    async def delivered(self) -> None:
        """Wait until every record queued so far (and every batched record the
        :attr:`before_delivery` callbacks queue now) is in Kafka; raises if one was not."""
        for queue_batched in self.before_delivery:
            queue_batched()
        while True:
            self._check()
            if self._pump is not None and not self._pump.done():
                await asyncio.shield(self._pump)
            elif self._in_flight:
                await asyncio.wait(list(self._in_flight))
            elif self._queue:  # pragma: no cover - a pump always follows a queued record
                self._pump = asyncio.ensure_future(self._hand_over())
            else:
                self._check()
                return

    def install_commit_hook(self, faust_producer: Any) -> None:
        """Make ``faust_producer``'s ``flush`` and ``commit_transactions`` (what Faust's
        commit calls before committing offsets, in the two guarantee modes) first wait
        for :meth:`delivered`. Idempotent."""
        if id(faust_producer) in self._hooked:
            return
        self._hooked.add(id(faust_producer))
        flush = faust_producer.flush
        commit_transactions = faust_producer.commit_transactions

        async def flush_after_control() -> None:
            await self.delivered()
            for callback in self.before_commit:
                await callback()
            await flush()

        async def commit_after_control(*args: Any, **kwargs: Any) -> None:
            await self.delivered()
            # Exactly-once, Faust commits without draining its buffer of table changelog
            # writes: they would land in the next transaction, or, when the commit ends
            # the transactions (a rebalance revoking partitions), fail with "Can't send
            # messages while not in transaction" and crash the worker. Drained first,
            # they commit with the offsets of the messages that made them.
            buffer = getattr(faust_producer, "buffer", None)
            while buffer is not None and buffer.size and buffer.state == "running":
                await buffer.flush()
            await commit_transactions(*args, **kwargs)

        faust_producer.flush = flush_after_control
        faust_producer.commit_transactions = commit_after_control

    async def close(self) -> None:
        """Deliver what is queued (best effort) and stop the producer."""
        try:
            await self.delivered()
        except Exception as exc:  # already reported through on_failure
            log.warning("control records not delivered at shutdown: %r", exc)
        if self._producer is not None:
            producer, self._producer = self._producer, None
            await producer.stop()

    def _check(self) -> None:
        if self.failure is not None:
            raise RuntimeError("a control record was not delivered") from self.failure

    async def _hand_over(self) -> None:
        try:
            while self._queue:
                topic, partition, value, headers = self._queue[0]
                producer = await self._started()
                future = await producer.send(topic, value, partition=partition, headers=headers)
                self._queue.popleft()
                self.records_sent += 1
                self._in_flight.add(future)
                future.add_done_callback(self._done)
        except Exception as exc:
            self._fail(exc)

    async def _started(self) -> AIOKafkaProducer:
        if self._producer is None:
            producer = AIOKafkaProducer(
                bootstrap_servers=self._bootstrap,
                acks="all",
                enable_idempotence=True,  # retries neither duplicate nor reorder
                linger_ms=0,
            )
            await producer.start()
            self._producer = producer
        return self._producer

    def _done(self, future: asyncio.Future[Any]) -> None:
        self._in_flight.discard(future)
        if future.cancelled():
            self._fail(asyncio.CancelledError("control record send cancelled"))
        elif future.exception() is not None:
            self._fail(future.exception())  # type: ignore[arg-type]

    def _fail(self, exc: BaseException) -> None:
        if self.failure is None:
            self.failure = exc
            log.error("a control record could not be delivered; stopping the worker: %r", exc)
            if self._on_failure is not None:
                outcome = self._on_failure(exc)
                if inspect.isawaitable(outcome):  # e.g. Faust's ``app.crash``
                    self._crash = asyncio.ensure_future(outcome)
