"""Ingest agent: validate input events, update the customer table, fire due timers.

Thin by design: decoding is :func:`schemas.validation.decode_event`, the state
change is :func:`agents.domain.engine.process_event`, firing is
:func:`agents.domain.firing.fire_stored`. A customer's read, change and
store write happen without an ``await`` in between; changelog records and
triggers go through :class:`streams.record_sink.RecordSink`, a fired state only
after its triggers are in Kafka (``streams/customer_table.py`` says when the
local store takes a value). A burst of
firings is read and written here chunk by chunk while helper processes
(:class:`streams.firing_pool.FiringPool`) evaluate the next chunks, and the
agent evaluates a chunk itself whenever the helpers are busy; a due customer
is read and written by no one else meanwhile (it left the timer index when it
was read), and chunks are written in the order they were read.

Per message on partition ``p`` (a record of an input topic or of the co-purchase topic
first goes through :func:`in_sequence`, which reads back any the consumer skipped; a
wake-up from the stall check reads back those of a partition that stopped short):

1. a clock tick moves ``p``'s event clock (event mode) or just wakes ``p`` up (wall mode);
2. a co-purchase record (pair changes or another partition's progress, see
   below; one already applied is dropped) updates ``p``'s replica;
3. a bad event goes to the dead-letter topic with its reason;
4. a good event is folded into its customer, whose next due timer is indexed;
   category pairs it newly co-purchased are broadcast to every partition;
5. every moment of ``p`` due before ``p``'s bound fires, in due order (wall
   mode: the backlog barrier, ``agents.domain.clock.BacklogBarrier``; event
   mode: the watermark).

Cross-sell reads co-purchase counts of *all* customers, which live on every
partition. Each partition keeps a replica built from the ``co-purchases``
topic, to which every partition broadcasts its new pairs and, in event mode,
its watermark. A partition's timers then fire only before the minimum of its
own watermark and every partition's broadcast progress, so the replica holds
every pair stamped before any due time it is read at: the same counts the
backtest reads.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter, deque
from collections.abc import Callable
from itertools import islice
from typing import TYPE_CHECKING, Any, NamedTuple

from faust.types import TP

from agents.domain.co_purchase import CoPurchaseModel
from agents.domain.co_purchase_records import encode_progress, parse_record
from agents.domain.customer_state import CHANGED, CustomerState
from agents.domain.engine import Step, process_event
from agents.domain.firing import (
    FiredCustomer,
    FiringRequest,
    FiringResult,
    customer_row,
    fire_stored,
)
from agents.domain.state_codec import decode_state, encode_state
from schemas.events import CustomerEvent
from schemas.ticks import decode_tick, is_tick
from schemas.timestamps import MS_PER_HOUR
from schemas.validation import (
    BAD_CLOCK_TICK,
    BAD_CO_PURCHASE,
    PROCESSING_ERROR,
    Rejection,
    decode_event,
)
from schemas.wake_ups import decode_wake_up, is_legacy_nudge, is_wake_up
from streams.topology import declares

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
READ_BATCH = 128  # due customers read in one multi-get and fired between event-loop yields
MAX_IN_FLIGHT = 8  # chunks read but not yet written, at most (bounds a burst's memory)
STATES_PER_DELIVERY = 1000  # fired states held back while their triggers are delivered
MAX_HELD_STATES = 5000  # states held for their co-purchase records, at most
NEVER = -(2**62)  # a firing bound before every timer
MAX_REASON_CHARS = 500  # a processing error's reason header, at most


class Folded(NamedTuple):
    """An input event folded into its customer, not yet written: the new table value
    (``None``: unchanged) and read-model row, built when Redis is written (``None``:
    nothing to mirror)."""

    event: CustomerEvent
    step: Step
    state: CustomerState
    value: bytes | None
    row: Callable[[], dict[str, str]] | None


def processing_error(exc: BaseException) -> Rejection:
    """The dead-letter reason of an input record whose processing raised ``exc``."""
    text = f"{type(exc).__name__}: {exc}"
    if len(text) > MAX_REASON_CHARS:
        text = text[: MAX_REASON_CHARS - 3] + "..."
    return Rejection(PROCESSING_ERROR, text)


class InFlight(NamedTuple):
    """A chunk of due customers being fired: their stored values, what was asked, and
    either the helper evaluating it or its results evaluated in the worker."""

    values: list[bytes | None]
    request: FiringRequest
    helper: asyncio.Future[list[FiringResult] | None] | None
    results: list[FiringResult] | None

    @property
    def ready(self) -> bool:
        return self.helper is None or self.helper.done()


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
    policy = settings.validation_policy()
    engine = settings.engine_config()
    event_type_by_topic = {topic: name for name, topic in p.topics.inputs.items()}
    input_topics = list(p.topics.inputs.values())
    partitions = range(settings.kafka.partitions)
    co_purchase_sources = [f"{p.topics.co_purchases}#{s}" for s in partitions]
    progress_sent = p.progress_sent  # partition -> last watermark broadcast
    exactly_once = settings.worker.processing_guarantee == "exactly_once"
    # Faust can skip records of any topic it consumes (faust-streaming#606): the inputs,
    # and the co-purchase records a replica must count once each (the clock ticks are
    # not guarded: a lost tick is made up by the next one).
    guarded_topics = {*event_type_by_topic, p.topics.co_purchases}
    firing_bounds = p.firing_bounds  # partition -> bound of its last firing (ms)

    async def dead_letter(message: Message, rejection: Rejection) -> None:
        p.counters["dead_letter.total"] += 1
        p.counters[f"dead_letter.{rejection.code}"] += 1
        p.read_model.count("dead_letter.total")
        p.read_model.count(f"dead_letter.{rejection.code}")
        log.info(
            "dead-lettered %s[%d]@%d: %s",
            message.topic,
            message.partition,
            message.offset,
            rejection.reason,
        )
        await p.dead_letter.send(
            key=message.key, value=message.value, headers=dead_letter_headers(message, rejection)
        )

    def observe_tick(message: Message) -> Rejection | None:
        at_ms = decode_tick(message.value)
        if at_ms is None:
            return Rejection(BAD_CLOCK_TICK, "clock tick without a valid 'at' timestamp")
        p.counters["clock.ticks"] += 1
        if p.event_time and message.topic in event_type_by_topic:
            clock = p.partition_clock(message.partition)
            if clock.observe_tick(message.topic, at_ms):
                p.clocks[str(message.partition)] = dict(clock.progress)
        return None

    def fold(message: Message, event: Any) -> Folded:
        """The computing half of applying ``event``: its customer's new state, encoded,
        and read-model row. Writes nothing, so if it raises nothing has changed."""
        stored = p.customers.get(message.partition, event.customer_id)
        state = (
            CustomerState(customer_id=event.customer_id) if stored is None else decode_state(stored)
        )
        # Prune only below the partition's last firing bound: a pending moment may still
        # read anything after it (in wall mode the bound trails the backlog: see
        # agents.domain.clock.BacklogBarrier).
        horizon = firing_bounds.get(message.partition, NEVER)
        step = process_event(state, event, engine, horizon_ms=horizon)
        if step.outcome not in CHANGED:
            # A re-delivery after a crash may find the row not yet written.
            row = None if stored is None else row_of(stored)
            return Folded(event, step, state, None, row)
        state.partition = message.partition
        value = encode_state(state)
        return Folded(event, step, state, value, row_of(value))

    def row_of(value: bytes) -> Callable[[], dict[str, str]]:
        """The read-model row of a stored state, built as of the time it is written."""
        return lambda: customer_row(decode_state(value), p.now_ms(), engine)

    async def apply(message: Message, folded: Folded) -> None:
        """The writing half: index, mirror and store what :func:`fold` computed."""
        event, step, state = folded.event, folded.step, folded.state
        p.counters[f"events.{step.outcome.value}"] += 1
        p.read_model.count(f"events.{step.outcome.value}")
        if folded.row is not None:
            p.read_model.stage_lazy(state.customer_id, state.version, folded.row)
        if folded.value is None:
            # A duplicate (a re-delivery, or the same event published again) has no change
            # record left to broadcast: the state that holds the event reached the
            # changelog only after the event's record was in every replica (below), and
            # the record carries no more than that state's change, which the duplicate
            # cannot reproduce (it depends on the state before the event).
            return
        if step.co_purchases:
            # Identified by the input record (stream, offset): re-processing it after a
            # crash or rebalance re-sends the same entry, which every replica drops.
            full = outbox.add(
                message.partition,
                f"{event_type_by_topic[message.topic]}#{message.partition}",
                message.offset,
                event.occurred_ms,
                step.co_purchases,
            )
            if full:
                send_outbox()
        p.timer_index.schedule(message.partition, state.customer_id, state.next_due)
        held = p.held_for_control
        if not exactly_once and (step.co_purchases or message.partition in held):
            # At-least-once the changelog may run ahead of the committed offsets, so the
            # state goes out only once its co-purchase record is in Kafka: a state in the
            # changelog then implies its record reached every replica. It is held (reads
            # see it) and published with the partition's later states when the control
            # records are delivered: before Faust's next commit, or sooner when many are
            # held. (Exactly-once the state commits with the offset, after the record.)
            p.customers.stage(message.partition, [(state.customer_id, folded.value)])
            held.add(message.partition)
            if p.customers.staged >= MAX_HELD_STATES:
                await release_held()
            return
        await p.customers.put(message.partition, state.customer_id, folded.value)

    async def release_held() -> None:
        """Publish the states held for their co-purchase records, once those are in Kafka
        (one wait for all of them; also run before every commit, see ``streams/app.py``)."""
        if not p.held_for_control:
            return
        await p.control.delivered()
        for partition in sorted(p.held_for_control):
            await p.customers.publish(partition)
        p.held_for_control.clear()

    p.release_held = release_held

    def broadcast(value: bytes) -> None:
        """Send a co-purchase record to every partition's replica, through the worker's
        plain producer (most partitions may be another worker's; under exactly-once
        Faust's producers only reach owned ones): the input offsets behind it are
        committed only once it is in Kafka (``streams/control_producer.py``)."""
        p.control.install_commit_hook(p.app.producer)
        for partition in partitions:
            p.control.send_soon(p.topics.co_purchases, partition, value)

    def send_outbox() -> None:
        """Broadcast the co-purchase changes batched so far, one record per input stream
        (``agents/domain/co_purchase_records.py``). Run by every wait for the control
        records (so before every commit and every release of held states), before every
        progress record, and when a stream's batch is full."""
        for value in outbox.drain():
            broadcast(value)

    outbox = p.co_purchase_outbox
    p.control.before_delivery.append(send_outbox)

    def broadcast_progress(partition: int, forced: bool) -> None:
        """Event mode: tell every replica how far ``partition`` has got (hourly, or on a tick)."""
        if not (p.event_time and engine.shares_co_purchases):
            return
        watermark = p.partition_clock(partition).watermark(input_topics)
        sent = progress_sent.get(partition)
        if watermark is None or (sent is not None and watermark <= sent):
            return
        if forced or sent is None or watermark // MS_PER_HOUR != sent // MS_PER_HOUR:
            progress_sent[partition] = watermark
            send_outbox()  # a progress record promises every change before it was sent
            broadcast(encode_progress(partition, watermark))

    def observe_co_purchases(message: Message) -> Rejection | None:
        record = parse_record(message.value)
        if record is None:
            return Rejection(BAD_CO_PURCHASE, "not a co-purchase change or progress record")
        partition = message.partition
        if record.entries:
            assert record.stream is not None
            model = p.co_purchases(partition)
            fresh = [e for e in record.entries if model.first_time(record.stream, e.seq)]
            if len(fresh) < len(record.entries):
                p.counters["co_purchases.resent_entries_dropped"] += len(record.entries) - len(
                    fresh
                )
            if fresh:  # one write of the model per record
                p.save_co_purchases(partition, model.add(d for e in fresh for d in e.deltas))
        clock = p.partition_clock(partition)
        clock.observe_event(f"{p.topics.co_purchases}#{record.source}", record.at)
        p.clocks[str(partition)] = dict(clock.progress)
        return None

    def event_time_bound(partition: int) -> int:
        """Event mode: the partition's watermark, held back (when cross-sell is on) until
        every partition's co-purchase pairs before it have reached this replica."""
        clock = p.partition_clock(partition)
        watermark = clock.watermark(input_topics)
        if watermark is not None and engine.shares_co_purchases:
            shared = clock.watermark(co_purchase_sources)
            watermark = None if shared is None else min(watermark, shared)
        return NEVER if watermark is None else watermark

    async def backlog_bound(partition: int) -> int:
        """Wall mode: the partition's :class:`~agents.domain.clock.BacklogBarrier` bound
        after a snapshot of its input topics' log ends and what was processed."""
        barrier = p.backlog_barrier(partition)
        ends: dict[TP, int] = {}
        processed: dict[TP, int] = {}
        for topic in input_topics:
            tp = TP(topic, partition)
            highwater = p.app.consumer.highwater(tp)
            if highwater is None:
                return barrier.bound  # not fetched since the assignment: backlog unknown
            if not highwater:
                continue
            if tp not in p.input_offsets:
                await p.start_input_offsets(tp)
            ends[tp] = highwater
            processed[tp] = p.input_offsets.expected(tp)
        return barrier.observe(p.now_ms(), ends, processed)

    async def fire_before(partition: int) -> int:
        """Exclusive bound for due times.

        Event mode: the partition's watermark. Wall mode: up to the newest moment
        every input record already in the log then has been processed for (the
        backlog barrier): an unprocessed record may hold the purchase that cancels a
        moment, and a backlog need not be in time order. Under steady load moments
        fire within the consumer's lag; after a restart or a backfill, once the
        records published before them are in.
        """
        if p.event_time:
            return event_time_bound(partition)
        return await backlog_bound(partition)

    async def fire_due(partition: int) -> None:
        before = await fire_before(partition)
        firing_bounds[partition] = before
        model = p.co_purchases(partition)
        pool = p.firing_pool
        fired = 0
        rules_fired: Counter[str] = Counter()
        # Chunks in read order, written in that order once evaluated. A chunk goes to a
        # helper if one is free; otherwise the worker evaluates it rather than wait.
        in_flight: deque[InFlight] = deque()
        due = p.timer_index.pop_due(partition, before)
        while chunk := list(islice(due, READ_BATCH)):
            values = p.customers.get_many_raw(partition, chunk)
            request = FiringRequest(
                before_ms=before,
                now_ms=None if p.event_time else p.now_ms(),  # event time stamps the due time
                as_of_ms=p.now_ms(),
            )
            in_helpers = sum(1 for c in in_flight if not c.ready)
            helper = None
            if pool.takes(len(values)) and in_helpers < pool.depth:
                helper = pool.submit(values, request)
            results = None if helper is not None else fire_stored(values, request, engine, model)
            in_flight.append(InFlight(values, request, helper, results))
            written = False
            while in_flight and (in_flight[0].ready or len(in_flight) >= MAX_IN_FLIGHT):
                fired += await write_fired(partition, in_flight.popleft(), model, rules_fired)
                written = True
            if not written:
                await asyncio.sleep(0)  # let finished helpers report
        while in_flight:
            fired += await write_fired(partition, in_flight.popleft(), model, rules_fired)
        if fired:
            await publish_fired(partition)
        # Nothing else is handed over here: the event path's changelog records wait in
        # the sink's open batch until it is full or Faust commits (the commit hook hands
        # it over first). Handing it over per message made every message wait for the
        # previous one's batch to reach the broker (aiokafka sends one batch per
        # partition at a time): a third of the at-least-once agent's time.
        p.counters["timers.customers_fired"] += fired
        if pool.failures:
            p.counters["firing.helper_failures"] = pool.failures
        for rule, count in rules_fired.items():
            p.counters[f"triggers.{rule}"] += count
            p.read_model.count(f"triggers.{rule}", count)
        if before > model.folded_before and model.pending:
            # Persist only when increments moved: the bound alone need not be durable
            # (after a restart late increments then wait in the log; reads are the same).
            touched = model.fold(before)
            if touched:
                p.save_co_purchases(partition, touched)

    async def evaluated(chunk: InFlight, model: CoPurchaseModel) -> list[FiredCustomer | None]:
        """The chunk's results, from its helper or evaluated here (also when its helper
        died); customers a helper could not fire (they read the co-purchase model) are
        fired here."""
        results = chunk.results if chunk.helper is None else await chunk.helper
        if results is None:  # its helper died
            results = fire_stored(chunk.values, chunk.request, engine, model)
            p.counters["firing.customers_in_worker"] += len(results)
        else:
            where = "worker" if chunk.helper is None else "helpers"
            p.counters[f"firing.customers_in_{where}"] += len(results)
        done: list[FiredCustomer | None] = []
        for value, result in zip(chunk.values, results, strict=True):
            if isinstance(result, str):  # NEEDS_CO_PURCHASES
                result = fire_stored([value], chunk.request, engine, model)[0]
                if isinstance(result, str):  # pragma: no cover - a model was given
                    raise RuntimeError(f"fired with the co-purchase model yet got {result!r}")
            done.append(result)
        return done

    async def write_fired(
        partition: int, chunk: InFlight, model: CoPurchaseModel, rules_fired: Counter[str]
    ) -> int:
        """Apply a chunk's firings: re-index each customer, stage its row if its stage
        changed, queue its triggers and state (in one go); returns how many customers
        fired and counts their triggers per rule in ``rules_fired``."""
        triggers: list[tuple[bytes, bytes]] = []
        states: list[tuple[str, bytes]] = []
        for fired in await evaluated(chunk, model):
            if fired is None:
                continue
            customer_id = fired.customer_id
            if fired.triggers:
                key = customer_id.encode()
                triggers.extend((key, trigger) for trigger in fired.triggers)
                rules_fired.update(fired.rules)
            p.timer_index.schedule(partition, customer_id, fired.next_due_ms)
            if fired.row is not None:
                p.read_model.stage_encoded(customer_id, fired.version, fired.row)
            states.append((customer_id, fired.value))
        # Triggers go out now; the states that record them as sent are staged and go out
        # only once the triggers are in Kafka (publish_fired), so a crash at any point
        # leaves states that fire again, with the same trigger ids, rather than lose one.
        await p.sink.append_many(p.topics.triggers, partition, triggers)
        p.customers.stage(partition, states)
        if p.customers.staged_on(partition) >= STATES_PER_DELIVERY:
            await publish_fired(partition)  # bounds what a long burst holds in memory
        await asyncio.sleep(0)  # let the producer, consumer and Redis flush run
        return len(states)

    async def publish_fired(partition: int) -> None:
        """Wait until every trigger handed over is in Kafka, then send the changelog
        records of the states fired since the last call."""
        if p.customers.staged_on(partition):
            await p.sink.delivered()
            if partition in p.held_for_control:
                await release_held()  # held event-path states go first, after their records
            await p.customers.publish(partition)

    def decode_and_fold(message: Message) -> Folded | Rejection:
        """Validate an input event and compute its change (no writes).

        Wall mode checks ``future_timestamp`` against the wall clock; event mode (replays,
        simulation) does not: its time is the data's, as in the backtest, and events
        after a replay's ``--until`` are not published in the first place.
        """
        decoded = decode_event(
            event_type_by_topic[message.topic],
            message.key,
            message.value,
            now_ms=None if p.event_time else p.now_ms(),
            policy=policy,
        )
        if isinstance(decoded, Rejection):
            return decoded
        return fold(message, decoded)

    async def handle(message: Message) -> None:
        if message.topic == p.topics.clock_ticks and is_wake_up(message.headers):
            await wake_up(message)  # neither a tick nor a bad record
            return
        if is_legacy_nudge(message.headers):
            return  # an empty record an earlier version appended to an input topic
        if is_tick(message.headers):
            rejection = observe_tick(message)
            if rejection is not None:
                await dead_letter(message, rejection)
            broadcast_progress(message.partition, forced=True)
            await fire_due(message.partition)
            return
        if message.topic == p.topics.co_purchases:
            rejection = observe_co_purchases(message)
            if rejection is not None:
                await dead_letter(message, rejection)
            await fire_due(message.partition)
            return
        if message.topic not in event_type_by_topic:
            return  # an untagged message on the clock-ticks topic
        try:
            folded = decode_and_fold(message)
        except Exception as exc:  # any failure of this one record's own processing
            # Dead-lettered, not raised: Faust would restart the agent past the record,
            # neither applied nor dead-lettered. Nothing was written for it yet.
            log.exception(
                "processing %s[%d]@%d failed", message.topic, message.partition, message.offset
            )
            folded = processing_error(exc)
        if isinstance(folded, Rejection):
            await dead_letter(message, folded)
            return
        if p.event_time:
            clock = p.partition_clock(message.partition)
            clock.observe_event(message.topic, folded.event.occurred_ms)
        await apply(message, folded)
        broadcast_progress(message.partition, forced=False)
        await fire_due(message.partition)

    async def in_sequence(message: Message) -> bool:
        """Input topics: False for a record already processed (a re-delivery); first
        handles, in offset order, any records of the partition the consumer skipped
        (read back from Kafka and acknowledged, so commits move past them)."""
        tp, offset = message.tp, message.offset
        if tp not in p.input_offsets:
            await p.start_input_offsets(tp)
        if p.input_offsets.is_repeat(tp, offset):
            p.counters["offsets.redeliveries_skipped"] += 1
            return False
        missing = p.input_offsets.missing_before(tp, offset)
        if missing:
            await read_back(tp, missing, "the consumer skipped them")
        return True

    async def read_back(tp: TP, missing: range, why: str) -> None:
        """Handle, in offset order, the records of ``tp`` at the offsets ``missing``
        (from the next one expected), read back from Kafka: each is counted as processed
        and acknowledged, so commits move past it. Offsets of the range that hold no
        record (a transaction marker) count as processed too. Should Faust deliver one
        of them after all, it is then a repeat (:func:`in_sequence`)."""
        log.warning(
            "%s[%d]: reading offsets %d..%d back (%s)",
            tp.topic,
            tp.partition,
            missing.start,
            missing.stop - 1,
            why,
        )
        records = await p.partition_reader.read(tp.topic, tp.partition, missing.start, missing.stop)
        for skipped in records:
            p.input_offsets.processed(tp, skipped.offset)
            await handle(skipped)
            p.app.consumer.ack(skipped)
            p.counters["offsets.skipped_records_recovered"] += 1
        p.input_offsets.processed(tp, missing.stop - 1)  # the whole range was read

    async def wake_up(message: Message) -> None:
        """A wake-up from the stall check (``schemas/wake_ups.py``, ``streams/app.py``):
        for each partition ``(topic, message.partition)`` it names, read back the records
        past the last one processed, up to the log end Faust's consumer knows, if they
        are still missing (:meth:`~streams.input_offsets.InputOffsets.still_missing`). A
        wake-up comes behind whatever Faust had already handed the agent when it was
        fetched, so a partition merely waiting its turn has moved on by then."""
        consumer = p.app.consumer
        assigned = consumer.assignment()
        # Faust's consumer's last offset handed towards the agent per partition (or,
        # after a seek, the offset sought to); Faust-internal, so read defensively.
        handed_on = getattr(consumer, "_read_offset", None)
        for topic, stalled_at in decode_wake_up(message.headers):
            tp = TP(topic, message.partition)
            if topic not in guarded_topics or tp not in assigned:
                continue
            if tp not in p.input_offsets:
                await p.start_input_offsets(tp)
            handed = handed_on.get(tp) if handed_on is not None else None
            missing = p.input_offsets.still_missing(tp, stalled_at, handed, consumer.highwater(tp))
            if not missing:
                continue
            # Not past the records readable now (a transaction still open on the topic).
            stable = await p.partition_reader.end_offset(topic, tp.partition)
            missing = range(missing.start, min(missing.stop, stable))
            if missing:
                p.counters["offsets.stalled_partitions_read_back"] += 1
                await read_back(tp, missing, "stalled: no later record came")

    # What the sends above write (`kizuna topology` prints it): dead letters, triggers,
    # co-purchase records, the three tables (their changelogs) and read-model rows.
    @declares(
        sends=("dead_letter", "triggers", "co_purchases"),
        stores=("customers", "clocks", "co_purchase_table"),
        external=("read_model",),
    )
    @p.app.agent(p.inputs, name="ingest")
    async def ingest(stream: Any) -> None:
        async for event in stream.events():
            message = event.message
            if message.topic in guarded_topics:
                if not await in_sequence(message):
                    continue
                # Counted before it is handled: its own firing sees no backlog.
                p.input_offsets.processed(message.tp, message.offset)
            await handle(message)
