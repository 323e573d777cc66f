"""The Faust app and its topology: topics, tables, read model, web views.

Wiring only: :func:`build_pipeline` creates the app from validated
:class:`~streams.config.Settings` and registers the agents of ``agents/``.
Business rules live in ``agents.domain``.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import faust
from faust.types import TableT
from faust.web import Request, Response, View

from schemas import codec  # noqa: F401  (registers the orjson codec)
from streams.config import Settings
from streams.read_model import RedisReadModel
from streams.topics import TopicNames

log = logging.getLogger(__name__)

CUSTOMER_TABLE = "customers"


def store_url(settings: Settings) -> str:
    """Faust store URL: ``rocksdict://`` is Faust's ``rocksdb://`` with the rocksdict driver."""
    store = settings.worker.store
    return "rocksdb://" if store == "rocksdict://" else store


def wall_clock_ms() -> int:
    """Real time, epoch milliseconds. The only wall-clock read in the worker."""
    return time.time_ns() // 1_000_000


@dataclass
class Pipeline:
    """Everything the agents share: the app, its topics and tables, and the read model."""

    settings: Settings
    app: faust.App
    topics: TopicNames
    inputs: faust.TopicT
    dead_letter: faust.TopicT
    customers: TableT[str, Any]
    read_model: RedisReadModel
    counters: Counter[str] = field(default_factory=Counter)

    def now_ms(self) -> int:
        return wall_clock_ms()


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
        table_standby_replicas=0,
    )
    names = TopicNames.from_settings(settings)
    inputs = app.topic(
        *names.inputs.values(),
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
        partitions=partitions,
    )
    dead_letter = app.topic(
        names.dead_letter,
        key_serializer="raw",
        value_serializer="raw",
        partitions=partitions,
    )
    customers = app.Table(
        CUSTOMER_TABLE,
        default=None,
        partitions=partitions,
        schema=faust.Schema(key_type=str, key_serializer="raw", value_serializer="orjson"),
    )
    read_model = RedisReadModel(
        settings.redis.url, settings.redis.key_prefix, settings.redis.max_batch
    )
    pipeline = Pipeline(
        settings=settings,
        app=app,
        topics=names,
        inputs=inputs,
        dead_letter=dead_letter,
        customers=customers,
        read_model=read_model,
    )
    _register_read_model_flush(pipeline)
    _register_web_views(pipeline)

    from agents import ingest

    ingest.register(pipeline)
    return pipeline


def _register_read_model_flush(p: Pipeline) -> None:
    interval = p.settings.redis.flush_interval_ms / 1000

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
        """Counters of this worker: events applied, duplicates, dead letters by reason."""

        async def get(self, request: Request) -> Response:
            return self.json(
                {
                    "counters": dict(sorted(p.counters.items())),
                    "redis": {
                        "pending": p.read_model.pending,
                        "rows_written": p.read_model.rows_written,
                        "rows_skipped_older": p.read_model.rows_skipped,
                    },
                }
            )
