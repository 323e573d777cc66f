"""Session fixtures: one real Kafka broker and one real Redis for the whole run.

The stack comes from ``scripts/stack.sh`` (the same scripts users run). If it
is already up (``scripts/test.sh`` starts it), it is reused and left alone;
otherwise it is started here and stopped at the end of the session.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.harness import REPO_ROOT, Namespace

STACK = REPO_ROOT / "scripts" / "stack.sh"


def _stack(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(STACK), *args], capture_output=True, text=True, cwd=REPO_ROOT, timeout=600
    )


@pytest.fixture(scope="session")
def stack_env() -> Iterator[dict[str, str]]:
    already_up = _stack("status").returncode == 0
    started = _stack("up")
    if started.returncode != 0:
        pytest.fail(f"scripts/stack.sh up failed:\n{started.stdout}\n{started.stderr}")
    env = dict(
        line.split("=", 1) for line in started.stdout.splitlines() if line.startswith("KIZUNA_")
    )
    assert "KIZUNA_BROKER" in env and "KIZUNA_REDIS_URL" in env, started.stdout
    yield env
    if not already_up:
        _stack("down")


@pytest.fixture
def ns(stack_env: dict[str, str], tmp_path: Path) -> Namespace:
    """A fresh, isolated namespace (topic prefix, Redis prefix, data dir) for one test."""
    return Namespace.create(stack_env, tmp_path)


LAST = "test_broker_restart.py"  # restarts the shared broker: nothing may run after it


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/integration" in str(item.fspath):
            item.add_marker(pytest.mark.integration)
    items.sort(key=lambda item: item.path.name == LAST)  # stable: the rest keep their order
