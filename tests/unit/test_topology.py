"""``kizuna topology``: the description read off the built app (no broker needed)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest
from faust.types import TopicT

from streams.app import Pipeline, build_pipeline
from streams.config import settings_from_mapping
from streams.topology import DeclarationError, Topology, declares, describe, format_text

# Written out by hand for prefix "acme." and app id "orders": not derived by the code under test.
INPUTS = {
    "acme.purchases",
    "acme.page-views",
    "acme.support-tickets",
    "acme.customer-profiles",
    "acme.refunds",
}
OUTPUTS = {"acme.dead-letter", "acme.triggers"}
OWN = {"acme.orders-clock-ticks", "acme.orders-co-purchases"}
CHANGELOGS = {
    "customers": "acme.orders-customers-changelog",
    "partition-clocks": "acme.orders-partition-clocks-changelog",
    "co-purchase-model": "acme.orders-co-purchase-model-changelog",
}


def pipeline(data_dir: Path, **sections: dict[str, Any]) -> Pipeline:
    raw: dict[str, dict[str, Any]] = {
        "kafka": {"topic_prefix": "acme.", "partitions": 6},
        "redis": {"key_prefix": "acme:"},
        "worker": {"app_id": "orders", "data_dir": str(data_dir), "store": "memory://"},
    }
    for name, values in sections.items():
        raw[name] = {**raw.get(name, {}), **values}
    return build_pipeline(settings_from_mapping(raw, env={}))


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Pipeline:
    return pipeline(tmp_path_factory.mktemp("worker"))


@pytest.fixture(scope="module")
def topology(built: Pipeline) -> Topology:
    return describe(built)


def test_names_exactly_the_topics_of_the_prefix_and_app_id(topology: Topology) -> None:
    topics = {t.name: t for t in topology.topics}
    assert set(topics) == INPUTS | OUTPUTS | OWN | set(CHANGELOGS.values())
    assert {t.partitions for t in topology.topics} == {6}
    assert {n for n, t in topics.items() if t.role == "inputs"} == INPUTS
    assert {n for n, t in topics.items() if t.role == "changelog"} == set(CHANGELOGS.values())
    assert {n for n, t in topics.items() if t.internal} == OWN | set(CHANGELOGS.values())
    assert topology.app_id == "acme.orders"


def test_the_agent_reads_the_inputs_ticks_and_co_purchases(topology: Topology) -> None:
    (agent,) = [s for s in topology.stages if s.kind == "agent"]
    assert agent.name == "ingest" and agent.concurrency == 1
    assert {t.name for t in agent.sources} == INPUTS | OWN
    assert {t.partitions for t in agent.sources} == {6}
    topics = {t.name: t for t in topology.topics}
    assert topics["acme.orders-clock-ticks"].read_by == ("ingest",)
    assert topics["acme.triggers"].read_by == ()  # read outside the app


def test_three_tables_with_their_changelogs(topology: Topology) -> None:
    stores = {s.name: s for s in topology.stores}
    assert {name: s.changelog_topic for name, s in stores.items()} == CHANGELOGS
    assert {s.kind for s in stores.values()} == {"memory"}
    assert {s.partitions for s in stores.values()} == {6}
    assert stores["customers"].value_serializer == "raw"  # Kizuna owns its codec
    assert stores["customers"].on_recover == ("rebuild",)  # the timer index
    topics = {t.name: t for t in topology.topics}
    assert topics[CHANGELOGS["customers"]].read_by == ("customers (recovery)",)


def test_what_each_stage_writes(topology: Topology) -> None:
    stages = {s.name: s for s in topology.stages}
    assert all(s.declared for s in topology.stages)
    ingest = stages["ingest"]
    assert {k.topic for k in ingest.sinks} == (
        OUTPUTS | {"acme.orders-co-purchases"} | set(CHANGELOGS.values())
    )
    assert {k.store: k.topic for k in ingest.sinks if k.kind == "changelog"} == CHANGELOGS
    assert set(ingest.stores) == set(CHANGELOGS)
    assert ingest.external == ("read_model",)
    assert {k.topic for k in stages["wall_clock_ticks"].sinks} == {"acme.orders-clock-ticks"}
    # Wake-ups of stalled input partitions go to the app's own clock-ticks topic.
    assert {k.topic for k in stages["input_stall_check"].sinks} == {"acme.orders-clock-ticks"}
    assert stages["flush_read_model"].sinks == ()
    assert stages["flush_read_model"].external == ("read_model",)
    written = {t.name: set(t.written_by) for t in topology.topics}
    assert written["acme.orders-co-purchases"] == {"ingest"}
    assert written["acme.orders-clock-ticks"] == {"wall_clock_ticks", "input_stall_check"}
    assert all(not written[topic] for topic in INPUTS)  # only read: others consume them too


def test_every_send_the_code_makes_to_a_topic_is_declared(
    built: Pipeline, topology: Topology
) -> None:
    """A guard against a new send nobody declared: the topics the agent's and the timers'
    code names in a send call (``x.send_soon(p.topics.NAME, ...)``, ``p.TOPIC.send(...)``)."""
    root = Path(__file__).resolve().parents[2]
    code = (root / "agents/ingest.py").read_text() + (root / "streams/app.py").read_text()
    named = re.findall(r"\.(?:send|send_soon|append_many)\(\s*p\.topics\.(\w+)", code)
    objects = [getattr(built, name) for name in re.findall(r"\bp\.(\w+)\.send\(", code)]
    sent = {getattr(built.topics, name) for name in named}
    sent |= {topic for obj in objects if isinstance(obj, TopicT) for topic in obj.topics}
    assert sent >= {"acme.triggers", "acme.dead-letter", "acme.orders-co-purchases"}
    assert sent <= {k.topic for s in topology.stages for k in s.sinks}


def test_timers_with_their_intervals(topology: Topology) -> None:
    timers = {s.name: (s.interval_s, s.on_leader) for s in topology.stages if s.kind == "timer"}
    assert timers == {
        "input_stall_check": (5.0, False),
        "flush_read_model": (0.25, False),
        "wall_clock_ticks": (1.0, True),
    }


def test_event_clock_has_no_wall_clock_ticks(tmp_path: Path) -> None:
    t = describe(pipeline(tmp_path, clock={"mode": "event"}, redis={"flush_interval_ms": 500}))
    timers = {s.name: s.interval_s for s in t.stages if s.kind == "timer"}
    assert timers == {"input_stall_check": 5.0, "flush_read_model": 0.5}
    ticks = next(topic for topic in t.topics if topic.name == "acme.orders-clock-ticks")
    assert ticks.read_by == ("ingest",)  # ticks come from a replay
    assert "wall_clock_ticks" not in ticks.written_by


def test_the_read_model_key_layout(topology: Topology) -> None:
    (redis,) = topology.external_stores
    assert (redis.name, redis.kind) == ("read_model", "redis")
    assert redis.keys == ("acme:customer:<customer_id>", "acme:stats")


def test_a_declaration_that_does_not_resolve_is_an_error(tmp_path: Path) -> None:
    p = pipeline(tmp_path)

    @declares(sends=("no_such_topic",))
    @p.app.timer(1.0, name="bad")
    async def bad() -> None:  # pragma: no cover - never run
        pass

    with pytest.raises(DeclarationError, match="no_such_topic"):
        describe(p)


def test_an_undeclared_stage_is_shown_as_such(tmp_path: Path) -> None:
    p = pipeline(tmp_path)

    @p.app.timer(2.0, name="undeclared")
    async def undeclared() -> None:  # pragma: no cover - never run
        pass

    t = describe(p)
    (stage,) = [s for s in t.stages if s.name == "undeclared"]
    assert not stage.declared and stage.sinks == ()
    assert "Processor: undeclared (stores: [], external: [], writes not declared)" in format_text(t)


def test_text_is_shaped_like_kafka_streams_describe(topology: Topology) -> None:
    lines = format_text(topology).splitlines()
    assert "   Sub-topology: 0 (agent ingest, concurrency 1)" in lines
    source = next(line for line in lines if line.startswith("    Source: ingest-source"))
    assert "acme.purchases (6)" in source and "acme.orders-co-purchases (6)" in source
    at = lines.index("    Sink: ingest-sink-acme.triggers (topic: acme.triggers)")
    assert lines[at + 1] == "      <-- ingest"
    assert "    Timer: wall_clock_ticks-timer (every 1 s, leader only)" in lines


def kizuna(args: list[str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KIZUNA_")}
    env |= {"KIZUNA_TOPIC_PREFIX": "acme.", "KIZUNA_DATA_DIR": str(tmp_path / "data")}
    return subprocess.run(
        [str(Path(sys.executable).with_name("kizuna")), *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_cli_prints_the_topology(tmp_path: Path) -> None:
    done = kizuna(["topology"], tmp_path)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("Topology of Faust app acme.kizuna: 4 partitions per topic")
    assert (
        "    Processor: ingest (stores: [customers, partition-clocks, co-purchase-model], "
        "external: [read_model])"
    ) in lines
    assert (
        "    Sink: ingest-sink-acme.kizuna-customers-changelog "
        "(topic: acme.kizuna-customers-changelog, changelog of customers)"
    ) in lines
    assert (
        "    Sink: wall_clock_ticks-sink-acme.kizuna-clock-ticks (topic: acme.kizuna-clock-ticks)"
    ) in lines
    assert list(tmp_path.iterdir()) == []  # no data dir, no .cache: nothing written


def test_cli_json_parses(tmp_path: Path) -> None:
    done = kizuna(["topology", "--json"], tmp_path)
    assert done.returncode == 0, done.stderr
    doc = orjson.loads(done.stdout)
    assert doc["app"]["id"] == "acme.kizuna"
    assert {t["name"] for t in doc["sources"][0]["topics"]} >= {"acme.purchases", "acme.refunds"}
    assert {s["changelog_topic"] for s in doc["stores"]} == {
        "acme.kizuna-customers-changelog",
        "acme.kizuna-partition-clocks-changelog",
        "acme.kizuna-co-purchase-model-changelog",
    }
    assert {t["name"] for t in doc["timers"]} == {
        "input_stall_check",
        "flush_read_model",
        "wall_clock_ticks",
    }
    assert {"processor": "ingest", "topic": "acme.triggers"}.items() <= next(
        s for s in doc["sinks"] if s["topic"] == "acme.triggers"
    ).items()


def test_cli_bad_argument_says_what_topology_takes(tmp_path: Path) -> None:
    done = kizuna(["topology", "--jsn"], tmp_path)
    assert done.returncode == 2
    assert "usage: kizuna topology [-h] [--config FILE] [--json]" in done.stderr
    assert "unrecognized arguments: --jsn" in done.stderr
