"""``kizuna topology``: what reads and writes what, read off the app the worker runs.

:func:`describe` takes the :class:`~streams.app.Pipeline` that
:func:`~streams.app.build_pipeline` returns (building it connects to nothing) and
reads the topology off the objects themselves, so the description cannot drift
from the code:

* sources: each agent registered on the Faust app (``app.agents``) and the topics
  of its channel, with their partition counts;
* timers: the tasks ``@app.timer`` registered (``app._app_tasks``), with their
  interval and whether they run on the leader only;
* state stores: the Faust tables (``app.tables``) with their changelog topics;
* partition counts of every topic: the Pipeline's topic objects.

What a stage *writes* is not visible on those objects (a send is a call inside a
function), so each stage declares it right above its code with :func:`declares`,
in the Pipeline's own terms: :class:`~streams.topics.TopicNames` fields for the
topics it sends to, Pipeline attributes for the tables it reads and writes (their
changelogs are its sinks) and for the external stores it feeds. :func:`describe`
resolves them to the real names and raises :class:`DeclarationError` for one that
does not resolve; a stage that declares nothing is shown as undeclared.

:func:`format_text` prints the description shaped like Kafka Streams'
``Topology.describe()``: one sub-topology per agent and per timer, whose
``Source`` (or ``Timer``), ``Processor`` and ``Sink`` nodes are linked by ``-->``
(to) and ``<--`` (from); then the stores, external stores and topics.
:meth:`Topology.to_dict` is the same, machine-readable (``kizuna topology --json``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from faust.types import TopicT

if TYPE_CHECKING:
    from streams.app import Pipeline

T = TypeVar("T")

DECLARED_ATTR = "kizuna_declared"


class DeclarationError(ValueError):
    """A stage declares a topic, table or store the Pipeline does not have."""


@dataclass(frozen=True)
class Declared:
    """What a stage writes, in the Pipeline's terms (see :func:`declares`)."""

    sends: tuple[str, ...] = ()  # TopicNames fields ("inputs": every input topic)
    stores: tuple[str, ...] = ()  # Pipeline attributes of the tables it reads and writes
    external: tuple[str, ...] = ()  # Pipeline attributes of the external stores it feeds


def declares(
    *, sends: Iterable[str] = (), stores: Iterable[str] = (), external: Iterable[str] = ()
) -> Callable[[T], T]:
    """Mark an agent or timer with what it writes; put it above ``@app.agent`` or
    ``@app.timer`` (it marks the object Faust registered)."""
    spec = Declared(tuple(sends), tuple(stores), tuple(external))

    def mark(registered: T) -> T:
        setattr(registered, DECLARED_ATTR, spec)
        return registered

    return mark


@dataclass(frozen=True)
class SourceTopic:
    name: str
    partitions: int


@dataclass(frozen=True)
class Sink:
    name: str  # the node's name: "<stage>-sink-<topic>"
    topic: str
    partitions: int
    kind: str  # "topic" (a send) or "changelog" (a table write)
    store: str | None  # the table of a changelog


@dataclass(frozen=True)
class Stage:
    """An agent (with its source topics) or a timer, and what it writes."""

    name: str
    kind: str  # "agent", "timer" or "task" (once at start-up)
    sources: tuple[SourceTopic, ...]  # agents: the topics consumed
    concurrency: int | None  # agents
    interval_s: float | None  # timers
    on_leader: bool | None  # timers and tasks
    stores: tuple[str, ...]  # table names
    external: tuple[str, ...]  # external store names
    sinks: tuple[Sink, ...]
    declared: bool  # False: the stage declares nothing about its writes

    @property
    def source_node(self) -> str:
        return f"{self.name}-source" if self.kind == "agent" else f"{self.name}-{self.kind}"


@dataclass(frozen=True)
class Store:
    name: str
    kind: str  # the store URL's scheme: "rocksdb" or "memory"
    partitions: int
    changelog_topic: str
    key_serializer: str
    value_serializer: str
    on_recover: tuple[str, ...]  # callbacks run after each recovery


@dataclass(frozen=True)
class ExternalStore:
    name: str  # the Pipeline attribute
    kind: str
    keys: tuple[str, ...]  # key layout


@dataclass(frozen=True)
class Topic:
    name: str
    partitions: int
    role: str  # a TopicNames field ("inputs", "triggers", ...) or "changelog"
    internal: bool  # written and read by this app only
    read_by: tuple[str, ...]  # stages; "<table> (recovery)" for a changelog
    written_by: tuple[str, ...]


@dataclass(frozen=True)
class Topology:
    app_id: str
    partitions: int
    store: str
    processing_guarantee: str
    clock_mode: str
    stages: tuple[Stage, ...]
    stores: tuple[Store, ...]
    external_stores: tuple[ExternalStore, ...]
    topics: tuple[Topic, ...]

    def to_dict(self) -> dict[str, Any]:
        """Plain data for ``--json``: sources, timers, processors, sinks, stores,
        external stores and topics."""
        plain = dataclasses.asdict
        return {
            "app": {
                "id": self.app_id,
                "partitions": self.partitions,
                "store": self.store,
                "processing_guarantee": self.processing_guarantee,
                "clock_mode": self.clock_mode,
            },
            "sources": [
                {
                    "agent": s.name,
                    "concurrency": s.concurrency,
                    "topics": [plain(t) for t in s.sources],
                }
                for s in self.stages
                if s.kind == "agent"
            ],
            "timers": [
                {"name": s.name, "interval_s": s.interval_s, "on_leader": s.on_leader}
                for s in self.stages
                if s.kind == "timer"
            ],
            "processors": [
                {
                    "name": s.name,
                    "kind": s.kind,
                    "stores": list(s.stores),
                    "external": list(s.external),
                    "writes": [k.topic for k in s.sinks],
                    "declared": s.declared,
                }
                for s in self.stages
            ],
            "sinks": [{"processor": s.name, **plain(k)} for s in self.stages for k in s.sinks],
            "stores": [plain(s) for s in self.stores],
            "external_stores": [plain(e) for e in self.external_stores],
            "topics": [plain(t) for t in self.topics],
        }


def describe(p: Pipeline) -> Topology:
    """The topology of the built pipeline ``p`` (reads objects only; connects to nothing)."""
    app = p.app
    default_partitions = int(app.conf.topic_partitions)
    tables = {name: table for name, table in app.tables.items()}
    changelogs = {name: t.changelog_topic.get_topic_name() for name, t in tables.items()}
    partitions = _topic_partitions(p, default_partitions)
    for name, table in tables.items():
        partitions[changelogs[name]] = int(table.changelog_topic.partitions or default_partitions)

    stages: list[Stage] = []
    for name, agent in app.agents.items():
        channel = agent.channel
        topics = tuple(getattr(channel, "topics", ()) or ())
        sources = tuple(SourceTopic(t, partitions.get(t, default_partitions)) for t in topics)
        stage = _stage(p, name, "agent", agent, partitions, changelogs)
        stages.append(
            dataclasses.replace(stage, sources=sources, concurrency=int(agent.concurrency))
        )
    for task in app._app_tasks:  # registered by @app.task and @app.timer
        spec = _timer_spec(task)
        if spec is None:
            name = getattr(task, "__name__", repr(task))
            stages.append(_stage(p, name, "task", task, partitions, changelogs))
        else:
            name, interval_s, on_leader = spec
            stage = _stage(p, name, "timer", task, partitions, changelogs)
            stages.append(dataclasses.replace(stage, interval_s=interval_s, on_leader=on_leader))

    store_kind = str(app.conf.store).split(":", 1)[0]
    stores = tuple(
        Store(
            name=name,
            kind=str(getattr(table, "_store", None) or store_kind).split(":", 1)[0],
            partitions=int(table.partitions or default_partitions),
            changelog_topic=changelogs[name],
            key_serializer=str(table.changelog_topic.key_serializer),
            value_serializer=str(table.changelog_topic.value_serializer),
            on_recover=tuple(
                sorted(
                    getattr(f, "__name__", repr(f))
                    for f in getattr(table, "_recover_callbacks", ())
                )
            ),
        )
        for name, table in tables.items()
    )
    external_names = sorted({e for s in stages for e in s.external})
    external = tuple(_external_store(p, name) for name in external_names)

    roles: dict[str, str] = {}
    for field in dataclasses.fields(p.topics):
        for topic in _topic_field(p, field.name):
            roles[topic] = field.name
    internal = {*p.topics.internal, *changelogs.values()}
    recovered_by = {topic: f"{name} (recovery)" for name, topic in changelogs.items()}
    names = [*roles, *(c for c in changelogs.values() if c not in roles)]
    topics = tuple(
        Topic(
            name=topic,
            partitions=partitions.get(topic, default_partitions),
            role=roles.get(topic, "changelog"),
            internal=topic in internal,
            read_by=(
                *(s.name for s in stages if any(t.name == topic for t in s.sources)),
                *([recovered_by[topic]] if topic in recovered_by else []),
            ),
            written_by=tuple(s.name for s in stages if any(k.topic == topic for k in s.sinks)),
        )
        for topic in names
    )
    return Topology(
        app_id=str(app.conf.id),
        partitions=default_partitions,
        store=store_kind,
        processing_guarantee=str(app.conf.processing_guarantee.value),
        clock_mode=p.settings.clock.mode,
        stages=tuple(stages),
        stores=stores,
        external_stores=external,
        topics=topics,
    )


def _topic_partitions(p: Pipeline, default: int) -> dict[str, int]:
    """Topic name -> partitions, from the Pipeline's topic objects and the agents' channels."""
    found: dict[str, int] = {}
    channels: list[Any] = [getattr(p, f.name) for f in dataclasses.fields(p)]
    channels += [agent.channel for agent in p.app.agents.values()]
    for channel in channels:
        if isinstance(channel, TopicT):
            for name in channel.topics:
                found.setdefault(name, int(channel.partitions or default))
    return found


def _topic_field(p: Pipeline, field: str) -> list[str]:
    """The topic names of a TopicNames field ("inputs" is every input topic)."""
    value = getattr(p.topics, field, None)
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [str(v) for v in value.values()]
    raise DeclarationError(f"no topic field {field!r} in TopicNames")


def _table_name(p: Pipeline, attribute: str) -> str:
    """The Faust table behind a Pipeline attribute (a table, or a wrapper with ``.table``)."""
    held = getattr(p, attribute, None)
    table = getattr(held, "table", held)
    name = getattr(table, "name", None)
    if name is None or p.app.tables.get(name) is not table:
        raise DeclarationError(f"Pipeline.{attribute} is not a table of the app")
    return str(name)


def _stage(
    p: Pipeline,
    name: str,
    kind: str,
    registered: object,
    partitions: dict[str, int],
    changelogs: dict[str, str],
) -> Stage:
    """A stage and what it declares it writes, resolved against ``p``."""
    spec = getattr(registered, DECLARED_ATTR, None)
    declared = spec if isinstance(spec, Declared) else Declared()
    default = int(p.app.conf.topic_partitions)
    sinks: list[Sink] = []
    for field in declared.sends:
        for topic in _topic_field(p, field):
            sinks.append(
                Sink(f"{name}-sink-{topic}", topic, partitions.get(topic, default), "topic", None)
            )
    stores = tuple(_table_name(p, attribute) for attribute in declared.stores)
    for table in stores:
        topic = changelogs[table]
        sinks.append(Sink(f"{name}-sink-{topic}", topic, partitions[topic], "changelog", table))
    for attribute in declared.external:
        if getattr(p, attribute, None) is None:
            raise DeclarationError(f"no external store Pipeline.{attribute}")
    return Stage(
        name=name,
        kind=kind,
        sources=(),
        concurrency=None,
        interval_s=None,
        on_leader=None,
        stores=stores,
        external=declared.external,
        sinks=tuple(sinks),
        declared=isinstance(spec, Declared),
    )


def _timer_spec(task: Any) -> tuple[str, float, bool] | None:
    """(name, interval in s, leader only) of a task ``@app.timer`` registered, else None.

    Faust keeps them only in the closure of the loop it wraps around the timer's
    function (faust-streaming 0.15: ``App.timer``'s ``around_timer``)."""
    loop = getattr(task, "__wrapped__", None)
    code = getattr(loop, "__code__", None)
    closure = getattr(loop, "__closure__", None)
    if code is None or not closure:
        return None
    cells = dict(zip(code.co_freevars, (c.cell_contents for c in closure), strict=True))
    if not {"timer_name", "interval_s", "on_leader"} <= cells.keys():
        return None
    return str(cells["timer_name"]), float(cells["interval_s"]), bool(cells["on_leader"])


def _external_store(p: Pipeline, attribute: str) -> ExternalStore:
    from streams.read_model import RedisReadModel

    store = getattr(p, attribute)
    if isinstance(store, RedisReadModel):
        return ExternalStore(
            attribute, "redis", (store.customer_key("<customer_id>"), store.stats_key)
        )
    return ExternalStore(attribute, type(store).__name__, ())


def format_text(t: Topology) -> str:
    """The description shaped like Kafka Streams' ``Topology.describe()``."""
    lines = [
        f"Topology of Faust app {t.app_id}: {t.partitions} partitions per topic, "
        f"{t.store} stores, {t.processing_guarantee}, {t.clock_mode} clock",
        "Sub-topologies:",
    ]
    for number, s in enumerate(t.stages):
        if s.kind == "agent":
            what = f"agent {s.name}, concurrency {s.concurrency}"
            topics = ", ".join(f"{x.name} ({x.partitions})" for x in s.sources)
            source = f"Source: {s.source_node} (topics: [{topics}])"
        elif s.kind == "timer":
            leader = ", leader only" if s.on_leader else ""
            what = f"timer {s.name}"
            source = f"Timer: {s.source_node} (every {s.interval_s:g} s{leader})"
        else:
            what = f"task {s.name}"
            source = f"Task: {s.source_node} (once at start-up)"
        lines += [f"   Sub-topology: {number} ({what})", f"    {source}", f"      --> {s.name}"]
        details = f"stores: [{', '.join(s.stores)}], external: [{', '.join(s.external)}]"
        if not s.declared:
            details += ", writes not declared"
        lines.append(f"    Processor: {s.name} ({details})")
        lines.append(f"      --> {', '.join(k.name for k in s.sinks) or 'none'}")
        lines.append(f"      <-- {s.source_node}")
        for k in s.sinks:
            of = f", changelog of {k.store}" if k.store else ""
            lines += [f"    Sink: {k.name} (topic: {k.topic}{of})", f"      <-- {s.name}"]
    lines.append("State stores:")
    for store in t.stores:
        recover = f", on recovery: {', '.join(store.on_recover)}" if store.on_recover else ""
        lines.append(
            f"    {store.name} ({store.kind}, {store.partitions} partitions, "
            f"changelog: {store.changelog_topic}{recover})"
        )
    lines.append("External stores:")
    for e in t.external_stores:
        lines.append(f"    {e.name} ({e.kind}, keys: [{', '.join(e.keys)}])")
    lines.append("Topics:")
    for topic in t.topics:
        kind = f"{topic.role}, internal" if topic.internal else topic.role
        lines.append(
            f"    {topic.name} ({kind}, {topic.partitions} partitions)"
            f"  --> [{', '.join(topic.read_by)}]  <-- [{', '.join(topic.written_by)}]"
        )
    return "\n".join(lines) + "\n"
