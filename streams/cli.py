"""The ``kizuna`` command.

Subcommands::

    kizuna worker                 start the Faust worker
    kizuna publish FILE           publish a JSON-lines event file
    kizuna publish FILE --event-clock [--until T]
                                  ... in event-time order with clock ticks (replay)
    kizuna backtest FILE [--until T] [--as-received] [--states]
                                  print the triggers FILE would fire, offline, as JSON lines
                                  (--states: every customer's state at the end instead;
                                  --as-received: in file order, as a worker receives them)
    kizuna triggers               print the emitted triggers
    kizuna customer ID            print one customer's state (from Redis) as JSON
    kizuna stats                  print the pipeline counters (from Redis)
    kizuna dead-letters           print dead-lettered messages with their reasons
    kizuna topics                 create/check the topics
    kizuna topology [--json]      print what reads and writes what (offline, from the code)
    kizuna export-schemas [DIR]   write the JSON Schema files of the wire contract

Every subcommand takes ``--config FILE`` (default ``$KIZUNA_CONFIG``; with
neither, the built-in defaults). A bad configuration value, or a named file
that does not exist, exits with status 2 and a message naming it.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson
from aiokafka.errors import KafkaConnectionError
from redis.exceptions import ConnectionError as RedisConnectionError

from streams.config import ConfigError, Settings, load_settings

EXIT_USAGE = 2


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown:  # the subcommand's usage says what it takes (exits with status 2)
        command_parser = getattr(args, "command_parser", parser)
        command_parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    if args.command is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    try:
        settings = load_settings(args.config)
    except ConfigError as exc:
        print(f"kizuna: configuration error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    handler = _HANDLERS[args.command]
    try:
        return int(handler(settings, args))
    except KeyboardInterrupt:
        return 130
    except KafkaConnectionError:
        print(
            f"kizuna: cannot reach Kafka at {settings.kafka.broker} "
            "(start it with scripts/stack.sh up, or set KIZUNA_BROKER)",
            file=sys.stderr,
        )
        return 1
    except RedisConnectionError:
        print(
            f"kizuna: cannot reach Redis at {settings.redis.url} "
            "(start it with scripts/stack.sh up, or set KIZUNA_REDIS_URL)",
            file=sys.stderr,
        )
        return 1


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kizuna", description="Kizuna real-time customer-lifecycle engine."
    )
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--config",
        metavar="FILE",
        help="TOML config (default: $KIZUNA_CONFIG, else the built-in defaults)",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.add_parser("worker", parents=[common], help="start the Faust worker")
    publish = sub.add_parser("publish", parents=[common], help="publish a JSON-lines event file")
    publish.add_argument("file", type=_existing_file, metavar="FILE", help="JSON-lines events")
    publish.add_argument(
        "--event-clock",
        action="store_true",
        help="publish in event-time order with clock ticks (for a worker with clock mode 'event')",
    )
    publish.add_argument(
        "--until",
        type=_timestamp,
        metavar="TIMESTAMP",
        help="with --event-clock: the final tick (RFC 3339); later events are not sent",
    )
    backtest = sub.add_parser(
        "backtest", parents=[common], help="print the triggers a file would fire, offline"
    )
    backtest.add_argument("file", type=_existing_file, metavar="EVENTS.jsonl")
    backtest.add_argument(
        "--until",
        type=_timestamp,
        metavar="TIMESTAMP",
        help="advance the event clock to this RFC 3339 time at the end (default: last event)",
    )
    backtest.add_argument(
        "--states",
        action="store_true",
        help="print every customer's state as of the end (as `kizuna customer` does), "
        "sorted by customer id, instead of the triggers",
    )
    backtest.add_argument(
        "--as-received",
        action="store_true",
        help="apply the events in file order, as a worker receives them, instead of "
        "sorting them by event time (the clock is the latest occurred_at seen so far)",
    )
    triggers = sub.add_parser("triggers", parents=[common], help="print emitted triggers")
    triggers.add_argument(
        "--limit", type=_positive_int, default=1000, metavar="N", help="at most N (default 1000)"
    )
    triggers.add_argument("--customer", metavar="ID", help="only this customer's triggers")
    triggers.add_argument(
        "--brief", action="store_true", help="one line each: due time, rule, customer, reason"
    )
    customer = sub.add_parser("customer", parents=[common], help="print one customer's state")
    customer.add_argument("customer_id", metavar="ID", help="the customer id")
    sub.add_parser("stats", parents=[common], help="print pipeline counters from Redis")
    dead = sub.add_parser("dead-letters", parents=[common], help="print dead-lettered messages")
    dead.add_argument(
        "--limit", type=_positive_int, default=100, metavar="N", help="at most N (default 100)"
    )
    dead.add_argument(
        "--brief", action="store_true", help="one line each: origin, reason code, reason"
    )
    sub.add_parser("topics", parents=[common], help="create the topics or check their partitions")
    topology = sub.add_parser(
        "topology",
        parents=[common],
        help="print the topology: topics, agents, timers, tables, what reads and writes what",
    )
    topology.add_argument(
        "--json", action="store_true", help="machine-readable JSON instead of the text form"
    )
    export = sub.add_parser(
        "export-schemas", parents=[common], help="write the wire contract as JSON Schema files"
    )
    export.add_argument("directory", nargs="?", type=Path, default=None, metavar="DIR")
    for command in sub.choices.values():
        command.set_defaults(command_parser=command)
    return parser


def _existing_file(text: str) -> Path:
    path = Path(text)
    if not path.is_file():
        raise argparse.ArgumentTypeError(f"expected an existing JSON-lines file, got {text!r}")
    return path


def _timestamp(text: str) -> int:
    from schemas.validation import parse_timestamp_ms

    try:
        return parse_timestamp_ms(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected an RFC 3339 timestamp with offset (e.g. 2026-03-01T00:00:00Z), got {text!r}"
        ) from None


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _print_json(obj: Any) -> None:
    sys.stdout.write(orjson.dumps(obj, option=orjson.OPT_INDENT_2).decode() + "\n")


def cmd_worker(settings: Settings, args: argparse.Namespace) -> int:
    from faust import Worker

    from streams.app import build_pipeline
    from streams.topics import TopicNames, TopologyError, ensure_topics

    try:
        asyncio.run(ensure_topics(settings, TopicNames.from_settings(settings).all))
    except TopologyError as exc:
        print(f"kizuna: {exc}", file=sys.stderr)
        return EXIT_USAGE

    class QuietWorker(Worker):
        """Faust's terminal spinner sets the root logger to DEBUG whenever the log level
        is warning or above, which makes every debug call in the send path build a
        log record (measured: ~6% of the worker's time). No spinner, no DEBUG."""

        def on_setup_root_logger(self, logger: Any, level: int) -> None:
            self.spinner = None

    pipeline = build_pipeline(settings)
    pipeline.firing_pool.start()  # importing their code while the worker recovers
    worker = QuietWorker(pipeline.app, loglevel=settings.worker.log_level)
    worker.execute_from_commandline()
    return 0


def cmd_publish(settings: Settings, args: argparse.Namespace) -> int:
    from streams.publisher import publish_event_clock, publish_file
    from streams.topics import TopicNames, ensure_topics

    if args.until is not None and not args.event_clock:
        print("kizuna publish: --until needs --event-clock", file=sys.stderr)
        return EXIT_USAGE

    async def run() -> Any:
        await ensure_topics(settings, TopicNames.from_settings(settings).all)
        if args.event_clock:
            return await publish_event_clock(settings, args.file, until_ms=args.until)
        return await publish_file(settings, args.file)

    report = asyncio.run(run())
    if report.ticks:
        print(f"sent {report.ticks} clock ticks", file=sys.stderr)
    if report.after_until:
        print(f"not sent: {report.after_until} events after --until", file=sys.stderr)
    for problem in report.skipped:
        print(f"kizuna publish: skipped {problem}", file=sys.stderr)
    print(
        f"published {report.published} events "
        + ", ".join(f"{t}={n}" for t, n in sorted(report.by_topic.items())),
        file=sys.stderr,
    )
    return 1 if report.skipped else 0


def cmd_backtest(settings: Settings, args: argparse.Namespace) -> int:
    from agents.domain.backtest import BacktestReport, decode_lines, load_events, run_backtest
    from agents.domain.customer_state import CustomerState
    from agents.domain.customer_view import summarize
    from agents.domain.state_codec import to_plain

    policy = settings.validation_policy()
    engine = settings.engine_config()
    report = BacktestReport()
    load = decode_lines if args.as_received else load_events
    with args.file.open("rb") as fh:
        # Event time, as an event-clock worker: no future_timestamp check against a
        # wall clock; events after --until are left out (after_until) by run_backtest.
        events = load(fh, now_ms=None, policy=policy, report=report)
    states: dict[str, CustomerState] | None = {} if args.states else None
    out = sys.stdout.buffer
    fired = 0
    for trigger in run_backtest(
        events,
        engine,
        until_ms=args.until,
        report=report,
        states=states,
        as_received=args.as_received,
    ):
        if states is None:
            out.write(trigger.to_bytes() + b"\n")
        fired += 1
    if states is not None and report.end_ms is not None:
        for customer_id in sorted(states):
            state = states[customer_id]
            summary = summarize(state, report.end_ms, engine)
            out.write(orjson.dumps({**summary, "state": to_plain(state)}) + b"\n")
    out.flush()
    rejected = sum(report.rejected.values())
    print(
        f"backtest: {report.events} lines, {report.outcomes.get('applied', 0)} applied, "
        f"{rejected} rejected {dict(sorted(report.rejected.items()))}, "
        f"{report.after_until} after --until, {fired} triggers",
        file=sys.stderr,
    )
    return 0


def cmd_triggers(settings: Settings, args: argparse.Namespace) -> int:
    from streams.topic_reader import read_from_start
    from streams.topics import TopicNames

    topic = TopicNames.from_settings(settings).triggers
    for message in asyncio.run(read_from_start(settings, topic, limit=args.limit)):
        if args.customer is not None and message.key != args.customer.encode():
            continue
        if args.brief:
            doc = orjson.loads(message.value)
            print(f"{doc['due_at']}  {doc['rule']:<26} {doc['customer_id']:<10} {doc['reason']}")
        else:
            sys.stdout.write(message.value.decode() + "\n")
    return 0


def cmd_customer(settings: Settings, args: argparse.Namespace) -> int:
    from agents.domain.customer_view import state_from_json, summarize
    from agents.domain.state_codec import to_plain
    from streams.app import wall_clock_ms
    from streams.read_model import RedisReadModel

    async def read() -> dict[str, str] | None:
        model = RedisReadModel(settings.redis.url, settings.redis.key_prefix, 1)
        try:
            return await model.read_customer(args.customer_id)
        finally:
            await model.close()

    row = asyncio.run(read())
    if row is None:
        print(f"kizuna: no customer {args.customer_id!r} in the read model", file=sys.stderr)
        return 1
    state = state_from_json(row["state"])
    summary = summarize(state, wall_clock_ms(), settings.engine_config())
    _print_json({**summary, "state": to_plain(state)})
    return 0


def cmd_stats(settings: Settings, args: argparse.Namespace) -> int:
    from streams.read_model import RedisReadModel

    async def read() -> dict[str, int]:
        model = RedisReadModel(settings.redis.url, settings.redis.key_prefix, 1)
        try:
            return await model.read_stats()
        finally:
            await model.close()

    _print_json(dict(sorted(asyncio.run(read()).items())))
    return 0


def cmd_dead_letters(settings: Settings, args: argparse.Namespace) -> int:
    from streams.dead_letters import read_dead_letters

    for record in asyncio.run(read_dead_letters(settings, limit=args.limit)):
        if args.brief:
            origin = (
                f"{record['source_topic']}[{record['source_partition']}]@{record['source_offset']}"
            )
            print(f"{origin}  {record['reason_code']}: {record['reason']}")
        else:
            sys.stdout.write(orjson.dumps(record).decode() + "\n")
    return 0


def cmd_topics(settings: Settings, args: argparse.Namespace) -> int:
    from streams.topics import TopicNames, TopologyError, ensure_topics

    names = TopicNames.from_settings(settings).all
    try:
        asyncio.run(ensure_topics(settings, names))
    except TopologyError as exc:
        print(f"kizuna: {exc}", file=sys.stderr)
        return EXIT_USAGE
    for name in names:
        print(f"{name}\t{settings.kafka.partitions} partitions")
    return 0


def cmd_topology(settings: Settings, args: argparse.Namespace) -> int:
    """Build the app as ``kizuna worker`` would (no connection), describe it, print it.
    Its data directory is a throw-away one: nothing is written where a worker keeps state."""
    import dataclasses
    import tempfile

    from streams.app import build_pipeline
    from streams.topology import describe, format_text

    with tempfile.TemporaryDirectory(prefix="kizuna-topology-") as scratch:
        worker = dataclasses.replace(settings.worker, data_dir=scratch)
        topology = describe(build_pipeline(dataclasses.replace(settings, worker=worker)))
    if args.json:
        _print_json(topology.to_dict())
    else:
        sys.stdout.write(format_text(topology))
    return 0


def cmd_export_schemas(settings: Settings, args: argparse.Namespace) -> int:
    from schemas.jsonschema import DEFAULT_DIRECTORY, write_schemas

    for path in write_schemas(args.directory or DEFAULT_DIRECTORY):
        print(path)
    return 0


_HANDLERS = {
    "worker": cmd_worker,
    "publish": cmd_publish,
    "customer": cmd_customer,
    "backtest": cmd_backtest,
    "triggers": cmd_triggers,
    "stats": cmd_stats,
    "dead-letters": cmd_dead_letters,
    "topics": cmd_topics,
    "topology": cmd_topology,
    "export-schemas": cmd_export_schemas,
}

if __name__ == "__main__":
    sys.exit(main())
