"""docker-compose.yml and the scripts describe the same stack with the same names."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from streams.config import Settings

ROOT = Path(__file__).resolve().parents[2]
ENV_NAME = re.compile(r"KIZUNA_[A-Z_]+")


def _config_env_names() -> set[str]:
    names = set()
    for section in Settings.__dataclass_fields__.values():
        section_type = section.default_factory  # type: ignore[misc]
        for f in getattr(section_type, "__dataclass_fields__", {}).values():
            if f.metadata.get("env"):
                names.add(f.metadata["env"])
    return names


def _script_env_names() -> set[str]:
    names: set[str] = set()
    for script in (ROOT / "scripts").glob("*.sh"):
        names |= set(ENV_NAME.findall(script.read_text()))
    return names


def test_compose_uses_only_environment_names_the_scripts_and_config_know() -> None:
    compose_text = (ROOT / "docker-compose.yml").read_text()
    used = set(ENV_NAME.findall(compose_text))
    known = _config_env_names() | _script_env_names()
    assert used, "compose should be configured through KIZUNA_* variables"
    assert used <= known, f"unknown to scripts/config: {sorted(used - known)}"


def test_compose_runs_the_kafka_version_the_scripts_pin() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    image = compose["services"]["kafka"]["image"]
    pinned = re.search(
        r'VERSION="\$\{KIZUNA_KAFKA_VERSION:-([0-9.]+)\}"', (ROOT / "scripts/kafka.sh").read_text()
    )
    assert pinned is not None
    assert image == f"apache/kafka:${{KIZUNA_KAFKA_VERSION:-{pinned.group(1)}}}"
    pom = (ROOT / "scripts/kafka/pom.xml").read_text()
    assert f"<kafka.version>{pinned.group(1)}</kafka.version>" in pom


def test_compose_has_the_whole_stack() -> None:
    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    assert {"kafka", "redis", "worker", "publisher"} <= set(services)
    assert services["worker"]["command"] == ["worker"]
    assert services["publisher"]["command"][:1] == ["publish"]
    worker_env = services["worker"]["environment"]
    assert worker_env["KIZUNA_BROKER"].startswith("kafka://")
    assert worker_env["KIZUNA_REDIS_URL"].startswith("redis://")
