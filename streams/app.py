"""The Faust app and its topology: topics, tables, clocks, timers, read model, web views.

Wiring only: :func:`build_pipeline` creates the app from validated
:class:`~streams.config.Settings` and registers the agents of ``agents/``.
Business rules live in ``agents.domain``.
"""

from __future__ import annotations

import gc
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import faust
from faust.types import TP, TableT
from faust.web import Request, Response, View

from agents.domain.clock import BacklogBarrier, PartitionClock
from agents.domain.co_purchase import CoPurchaseModel
from agents.domain.co_purchase_records import Outbox
from agents.domain.state_codec import head
from agents.domain.timer_index import TimerIndex
from schemas import codec  # noqa: F401  (registers the orjson codec)
from schemas.ticks import TICK_HEADERS, encode_tick
from schemas.wake_ups import wake_up_headers
from streams.config import Settings
from streams.control_producer import ControlProducer
from streams.customer_table import CustomerTable
from streams.firing_pool import FiringPool
from streams.input_offsets import InputOffsets
from streams.partition_reader import PartitionReader
from streams.read_model import RedisReadModel
from streams.record_sink import RecordSink
from streams.topics import TopicNames
from streams.topology import declares

log = logging.getLogger(__name__)

CUSTOMER_TABLE = "customers"
CLOCK_TABLE = "partition-clocks"
CO_PURCHASE_TABLE = "co-purchase-model"
PRODUCER_BATCH_BYTES = 512 * 1024


def store_url(settings: Settings) -> str:
    """Faust store URL: ``rocksdict://`` is Faust's ``rocksdb://`` with the rocksdict driver."""
    store = settings.worker.store
    return "rocksdb://" if store == "rocksdict://" else store


def lower_compaction_priority() -> None:
    """Run RocksDB's compaction threads (its shared low-priority pool, one per process)
    at the lowest CPU priority: a compaction left over from an ingest then yields the
    cores to a burst of firings and runs when they are idle. Flushes keep their priority.
    Only with the rocksdict driver (Faust's default when it is installed)."""
    try:
        import rocksdict
    except ImportError:  # python-rocksdb driver: compaction keeps the normal priority
        return
    rocksdict.Env().lower_thread_pool_cpu_priority()


def wall_clock_ms() -> int:
    """Real time, epoch milliseconds. The only wall-clock read in the worker."""
    return time.time_ns() // 1_000_000


@dataclass
class Pipeline:
    """Everything the agents share: the app, its topics and tables, timers and read model."""

    settings: Settings
    app: faust.App
    topics: TopicNames
    inputs: faust.TopicT  # the four event topics, clock-ticks and co-purchases
    dead_letter: faust.TopicT
    triggers: faust.TopicT
    clock_ticks: faust.TopicT
    co_purchase_topic: faust.TopicT
    customers: CustomerTable
    clocks: TableT[str, Any]  # str(partition) -> PartitionClock.progress (event mode)
    # "<partition>/row/<category>" -> {category: customers}; "<partition>/meta" -> log
    co_purchase_table: TableT[str, Any]
    read_model: RedisReadModel
    sink: RecordSink  # the customer table's changelog and the triggers
    partition_reader: PartitionReader  # reads back input records the consumer skipped
    firing_pool: FiringPool  # helper processes for bursts of firings
    control: ControlProducer  # ticks, wake-ups, co-purchase records to any partition (not Faust's)
    input_offsets: InputOffsets = field(default_factory=InputOffsets)
    timer_index: TimerIndex = field(default_factory=TimerIndex)
    partition_clocks: dict[int, PartitionClock] = field(default_factory=dict)
    counters: Counter[str] = field(default_factory=Counter)
    co_purchase_models: dict[int, CoPurchaseModel] = field(default_factory=dict)
    # Per partition, dropped with the assignment (``reset_partitions``):
    backlog_barriers: dict[int, BacklogBarrier] = field(default_factory=dict)  # wall mode
    firing_bounds: dict[int, int] = field(default_factory=dict)  # bound of the last firing
    progress_sent: dict[int, int] = field(default_factory=dict)  # last progress broadcast
    held_for_control: set[int] = field(default_factory=set)  # states wait for co-purchase records
    co_purchase_outbox: Outbox = field(default_factory=Outbox)  # changes not broadcast yet
    release_held: Callable[[], Awaitable[None]] | None = None  # set by the ingest agent

    def reset_partitions(self) -> None:
        """Forget every partition's bookkeeping: after a recovery (start-up, rebalance)
        the consumer restarts each assigned partition from its committed offset."""
        self.partition_clocks.clear()
        self.input_offsets.clear()
        self.co_purchase_models.clear()  # reloaded from their table per partition on first use
        self.backlog_barriers.clear()
        self.firing_bounds.clear()
        self.progress_sent.clear()
        self.held_for_control.clear()  # the customer table forgets what it held

    def backlog_barrier(self, partition: int) -> BacklogBarrier:
        barrier = self.backlog_barriers.get(partition)
        if barrier is None:
            barrier = self.backlog_barriers[partition] = BacklogBarrier()
        return barrier

    @property
    def event_time(self) -> bool:
        return self.settings.clock.mode == "event"

    def now_ms(self) -> int:
        return wall_clock_ms()

    def partition_clock(self, partition: int) -> PartitionClock:
        """The event clock of ``partition``, loaded from its table on first use."""
        clock = self.partition_clocks.get(partition)
        if clock is None:
            stored = self.clocks.get(str(partition))
            clock = PartitionClock(dict(stored) if stored else {})
            self.partition_clocks[partition] = clock
        return clock

    async def start_input_offsets(self, tp: TP) -> None:
        """Start ``tp`` in the input-offset ledger where the consumer starts it (once per
        assignment): the group's committed offset, or the log start."""
        if tp not in self.input_offsets:
            committed, log_start = await self.partition_reader.start_offsets(tp.topic, tp.partition)
            self.input_offsets.begin(tp, committed, log_start)

    def co_purchases(self, partition: int) -> CoPurchaseModel:
        """``partition``'s replica of the co-purchase model, loaded from its table on first use."""
        model = self.co_purchase_models.get(partition)
        if model is None:
            prefix = f"{partition}/row/"
            rows = {
                key.removeprefix(prefix): dict(value)
                for key, value in self.co_purchase_table.items()
                if key.startswith(prefix) and value
            }
            model = CoPurchaseModel.restore(
                self.co_purchase_table.get(f"{partition}/meta"),
                rows,
                self.settings.engine_config().co_purchase_categories,
            )
            self.co_purchase_models[partition] = model
        return model

    def save_co_purchases(self, partition: int, touched: set[str]) -> None:
        """Write the model's changed rows and its log (inside stream processing only)."""
        model = self.co_purchases(partition)
        for category in sorted(touched):
            self.co_purchase_table[f"{partition}/row/{category}"] = model.rows[category]
        self.co_purchase_table[f"{partition}/meta"] = model.meta()


def build_pipeline(settings: Settings) -> Pipeline:
    """Create the Faust app for ``settings`` with all agents registered."""
    prefix = settings.kafka.topic_prefix
    partitions = settings.kafka.partitions
    datadir = Path(settings.worker.data_dir) / f"{prefix}{settings.worker.app_id}"
    datadir.mkdir(parents=True, exist_ok=True)
    app = faust.App(
        f"{prefix}{settings.worker.app_id}",
        broker=settings.kafka.broker,
        store=store_url(settings),
        datadir=str(datadir),
        topic_partitions=partitions,
        topic_replication_factor=settings.kafka.replication_factor,
        processing_guarantee=settings.worker.processing_guarantee,
        broker_session_timeout=settings.worker.session_timeout_s,
        broker_heartbeat_interval=settings.worker.session_timeout_s / 4,
        web_port=settings.worker.web_port,
        web_host="127.0.0.1",
        consumer_auto_offset_reset="earliest",
        key_serializer="raw",
        value_serializer="raw",
        autodiscover=False,
        producer_linger_ms=5,
        # Room for a burst of firings per request (Faust's default is 16 KiB).
        producer_max_batch_size=PRODUCER_BATCH_BYTES,
        table_standby_replicas=0,
    )
    names = TopicNames.from_settings(settings)

    def raw_topic(*topic_names: str) -> faust.TopicT:
        return app.topic(
            *topic_names,
            key_type=bytes,
            value_type=bytes,
            key_serializer="raw",
            value_serializer="raw",
            partitions=partitions,
        )

    # Faust's RocksDB defaults (2 GiB block cache and 3 x 64 MiB write buffers per
    # partition) would let memory grow far past what a worker needs; cap them.
    store_options = (
        {
            "block_cache_size": settings.worker.rocksdb_block_cache_mb * 1024**2,
            "block_cache_compressed_size": settings.worker.rocksdb_block_cache_mb * 1024**2 // 4,
            "write_buffer_size": settings.worker.rocksdb_write_buffer_mb * 1024**2,
            "max_write_buffer_number": 2,
        }
        if store_url(settings) == "rocksdb://"
        else None
    )

    if store_url(settings) == "rocksdb://" and settings.worker.rocksdb_compaction_priority == "low":
        lower_compaction_priority()

    def table(name: str, value_type: type | None = None) -> TableT[str, Any]:
        # Faust picks the store's and changelog's serializers from the types: keys
        # are JSON strings; values JSON, or raw for ``bytes``. The schema says the
        # same for recovery into the memory store (RocksDB takes the raw bytes).
        return app.Table(
            name,
            default=None,
            partitions=partitions,
            key_type=str,
            value_type=value_type,
            schema=faust.Schema(
                key_type=str,
                key_serializer="json",
                value_type=value_type,
                value_serializer="raw" if value_type is bytes else "json",
            ),
            options=store_options,
        )

    sink = RecordSink(app)

    pipeline = Pipeline(
        settings=settings,
        app=app,
        topics=names,
        inputs=raw_topic(*names.inputs.values(), names.clock_ticks, names.co_purchases),
        dead_letter=raw_topic(names.dead_letter),
        triggers=raw_topic(names.triggers),
        clock_ticks=raw_topic(names.clock_ticks),
        co_purchase_topic=raw_topic(names.co_purchases),
        customers=CustomerTable(table(CUSTOMER_TABLE, bytes), sink),  # owns its codec
        clocks=table(CLOCK_TABLE),
        co_purchase_table=table(CO_PURCHASE_TABLE),
        read_model=RedisReadModel(
            settings.redis.url, settings.redis.key_prefix, settings.redis.max_batch
        ),
        sink=sink,
        partition_reader=PartitionReader(
            settings.bootstrap_servers,
            app.conf.id,  # Faust's consumer group
            read_committed=settings.worker.processing_guarantee == "exactly_once",
        ),
        firing_pool=FiringPool(
            settings.engine_config(),
            processes=settings.worker.firing_processes,
            min_chunk=settings.worker.firing_offload_min,
        ),
        control=ControlProducer(settings.bootstrap_servers, on_failure=app.crash),
    )
    _register_control_producer(pipeline)
    _register_local_store_writes(pipeline)
    _register_timer_index_rebuild(pipeline)
    _register_input_stall_check(pipeline)
    _register_read_model_flush(pipeline)
    _register_firing_pool(pipeline)
    if not pipeline.event_time:
        _register_wall_clock_ticks(pipeline)
    _register_web_views(pipeline)

    from agents import ingest

    ingest.register(pipeline)
    return pipeline


def _register_local_store_writes(p: Pipeline) -> None:
    """Write the customer table's delivered values to the local store right after each
    successful commit of their partitions' input offsets (``streams/customer_table.py``):
    Faust calls ``tables.on_commit`` once the producer is flushed and the offsets (or the
    transaction) are committed."""
    tables: Any = p.app.tables
    on_commit = tables.on_commit

    def committed(offsets: Any) -> None:
        on_commit(offsets)
        p.customers.committed(tp.partition for tp in offsets)

    tables.on_commit = committed


def _register_timer_index_rebuild(p: Pipeline) -> None:
    """After every recovery (start-up, rebalance) rebuild the due-timer index from the table."""

    async def rebuild() -> None:
        started = time.monotonic()
        entries = []
        for customer_id, value in p.customers.items():
            stored = head(value)  # the leading fields only: no need to decode the facts
            if stored.next_due is not None and stored.partition is not None:
                entries.append((stored.partition, customer_id, stored.next_due))
        count = p.timer_index.rebuild(entries)
        del entries
        _freeze_long_lived_objects()
        p.reset_partitions()
        p.customers.forget()  # recovery replayed whatever of them was delivered
        p.counters["timers.index_rebuilds"] += 1
        log.info(
            "timer index rebuilt: %d customers with pending timers in %.2f s",
            count,
            time.monotonic() - started,
        )

    p.customers.table.on_recover(rebuild)


def _freeze_long_lived_objects() -> None:
    """Exempt the objects alive after recovery (the timer index, Faust's own) from later
    garbage collections. They live as long as the assignment, and without this every
    full collection during a burst of firings walks them all again (measured: GC took
    0.2-0.4 s of each 25,000-customer partition burst, 0.05-0.07 s with them frozen)."""
    gc.collect()  # what is garbage now is freed, not frozen
    gc.freeze()


def _register_input_stall_check(p: Pipeline) -> None:
    """Every ``stall_check_interval_s``: find the input partitions that have records past
    the last one processed and made no progress since the previous check, and send a
    wake-up (``schemas/wake_ups.py``) naming them to the same partition of Kizuna's own
    ``clock-ticks`` topic (co-partitioned with the inputs, consumed by the same agent).
    Faust can fetch records while a recovery completes and never deliver them; when no
    later record comes, nothing else would notice. The agent, woken, reads back what is
    still missing (``agents/ingest.py``). The input topics are only read: anything
    appended to them is seen by every other consumer of them.

    Not a seek: records Faust has already handed towards the agent may still be queued
    behind other partitions, and seeking below them makes Faust deliver them twice and
    count them as a gap too; the duplicate acknowledgements then hold its commits back
    for good (measured: the group's offset stopped ~139,000 records short of a
    partition's end in a 1,000,000-event ingest). Nor a read-back from here: the wake-up
    reaches the agent behind whatever Faust had already handed it, so the agent
    re-checks after those records are processed, between two records of its own."""
    input_topics = {*p.topics.inputs.values(), p.topics.co_purchases}  # as the agent guards

    @declares(sends=("clock_ticks",))  # wake-ups (kizuna topology prints it)
    @p.app.timer(p.settings.worker.stall_check_interval_s, name="input_stall_check")
    async def input_stall_check() -> None:
        recovery = p.app.tables.recovery  # type: ignore[attr-defined]
        if p.app.rebalancing or not recovery.completed.is_set():
            return
        consumer = p.app.consumer
        stalled: dict[int, list[tuple[str, int]]] = {}  # partition -> [(topic, offset)]
        for tp in sorted(t for t in consumer.assignment() if t.topic in input_topics):
            end = consumer.highwater(tp)
            if not end:
                continue
            await p.start_input_offsets(tp)
            offset = p.input_offsets.stalled(tp, end)
            if offset is None:
                continue
            log.warning(
                "%s[%d]: no progress past offset %d (log end %d); waking the agent up",
                tp.topic,
                tp.partition,
                offset,
                end,
            )
            p.counters["offsets.stalled_partitions_woken"] += 1
            stalled.setdefault(tp.partition, []).append((tp.topic, offset))
        if not stalled:
            return
        for partition, entries in sorted(stalled.items()):
            p.control.send_soon(p.topics.clock_ticks, partition, b"", wake_up_headers(entries))
        await p.control.delivered()

    @p.app.on_before_shutdown.connect  # type: ignore[arg-type]
    async def close_guard_clients(app: Any, **kwargs: Any) -> None:
        await p.partition_reader.close()


def _register_firing_pool(p: Pipeline) -> None:
    """The helpers stop with the worker (``kizuna worker`` starts them)."""

    @p.app.on_before_shutdown.connect  # type: ignore[arg-type]
    async def stop_firing_pool(app: Any, **kwargs: Any) -> None:
        p.firing_pool.close()


def _register_control_producer(p: Pipeline) -> None:
    """Ticks and co-purchase records go to partitions this worker may not own, so not
    through Faust's per-partition transactional producers (``streams/control_producer.py``):
    Faust's commit waits for them first, and the producer stops with the worker."""

    async def release_held() -> None:
        if p.release_held is not None:
            await p.release_held()

    p.control.before_commit.append(release_held)
    # Then the sink's open batches (the held states just published among them): Faust's
    # producer flush, which the commit runs next, waits for what was handed over.
    p.control.before_commit.append(p.sink.flush)

    if p.settings.worker.processing_guarantee != "exactly_once":
        # Now, not on ``app.on_worker_init``: ``kizuna worker`` starts Faust's Worker
        # itself, which never sends that signal (exactly-once installs it lazily, on the
        # first control record).
        p.control.install_commit_hook(p.app.producer)

    @p.app.on_before_shutdown.connect  # type: ignore[arg-type]
    async def close_control_producer(app: Any, **kwargs: Any) -> None:
        await p.control.close()


def _register_wall_clock_ticks(p: Pipeline) -> None:
    """Wall mode: the leader sends a tick to every partition so idle ones fire their timers
    (through the worker's plain producer: most partitions may be another worker's)."""
    interval = p.settings.clock.tick_interval_ms / 1000

    @declares(sends=("clock_ticks",))
    @p.app.timer(interval, on_leader=True, name="wall_clock_ticks")
    async def wall_clock_ticks() -> None:
        value = encode_tick(wall_clock_ms())
        for partition in range(p.settings.kafka.partitions):
            p.control.send_soon(p.topics.clock_ticks, partition, value, TICK_HEADERS)
        await p.control.delivered()


def _register_read_model_flush(p: Pipeline) -> None:
    interval = p.settings.redis.flush_interval_ms / 1000

    @declares(external=("read_model",))
    @p.app.timer(interval, name="flush_read_model")
    async def flush_read_model() -> None:
        try:
            await p.read_model.flush()
        except Exception as exc:  # Redis down: keep rows queued, retry next tick
            p.counters["redis.flush_errors"] += 1
            log.warning("Redis flush failed (%d rows queued): %r", p.read_model.pending, exc)

    @p.app.on_before_shutdown.connect  # type: ignore[arg-type]
    async def final_flush(app: Any, **kwargs: Any) -> None:
        try:
            await p.read_model.flush()
        finally:
            await p.read_model.close()


def _register_web_views(p: Pipeline) -> None:
    @p.app.page("/kizuna/stats/")
    class Stats(View):
        """Counters of this worker: events, duplicates, dead letters, timers, triggers."""

        async def get(self, request: Request) -> Response:
            return self.json(
                {
                    "counters": dict(sorted(p.counters.items())),
                    "timers": {"customers_with_pending_timers": len(p.timer_index)},
                    "clock": {
                        "mode": p.settings.clock.mode,
                        "partitions": {
                            str(k): v.progress for k, v in sorted(p.partition_clocks.items())
                        },
                    },
                    "redis": {
                        "pending": p.read_model.pending,
                        "rows_written": p.read_model.rows_written,
                        "rows_skipped_older": p.read_model.rows_skipped,
                        "rows_failed": p.read_model.rows_failed,
                    },
                }
            )
