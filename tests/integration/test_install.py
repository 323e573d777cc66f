"""A non-editable install works away from the repository.

The wheel is built from a copy of the source tree, installed with its pinned
dependencies (``-c requirements.lock``) into a fresh virtualenv that sees no
other site-packages, and its ``kizuna`` command is run from an unrelated
directory: no config file is needed (the built-in defaults apply), the JSON
Schema files travel as package data, and a named config file that is missing
is still an error naming it. Needs PyPI (or the pip cache); about 30 s.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import venv
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
UNTIL = "2026-12-01T00:00:00Z"
# Not part of the source tree: virtualenvs, caches, build output.
_NOT_SOURCE = shutil.ignore_patterns(
    ".git", ".venv", ".cache", "build", "dist", "*.egg-info", "__pycache__", ".*_cache"
)


@dataclass(frozen=True)
class Installed:
    kizuna: Path
    python: Path
    cwd: Path  # an unrelated directory, with a copy of the sample events
    env: dict[str, str]

    def run(self, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        return _run([str(self.kizuna), *args], cwd=self.cwd, env={**self.env, **env}, timeout=120)


def _run(
    cmd: Sequence[str], *, cwd: Path, env: dict[str, str], timeout: float
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        list(cmd), cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


def _clean_env() -> dict[str, str]:
    """The environment without Kizuna's settings or anything pointing at the repo."""
    drop = ("KIZUNA_", "PYTHON", "VIRTUAL_ENV")
    return {k: v for k, v in os.environ.items() if not k.startswith(drop)}


def _ok(proc: subprocess.CompletedProcess[str], what: str) -> None:
    assert proc.returncode == 0, f"{what} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    base = tmp_path_factory.mktemp("install")
    env = _clean_env()
    source = base / "src"
    shutil.copytree(REPO_ROOT, source, ignore=_NOT_SOURCE)
    wheels = base / "wheels"
    build = [sys.executable, "-m", "pip", "wheel", "--no-deps", "-w", str(wheels), str(source)]
    _ok(_run(build, cwd=base, env=env, timeout=300), "building the wheel")
    (wheel,) = wheels.glob("kizuna-*.whl")

    target = base / "venv"
    venv.EnvBuilder(with_pip=True, system_site_packages=False, clear=True).create(target)
    python = target / "bin" / "python"
    install = [str(python), "-m", "pip", "install", "--disable-pip-version-check", "-q"]
    install += ["-c", str(REPO_ROOT / "requirements.lock"), str(wheel)]
    _ok(_run(install, cwd=base, env=env, timeout=600), "installing the wheel")

    cwd = base / "elsewhere"
    cwd.mkdir()
    shutil.copy(REPO_ROOT / "samples" / "events.jsonl", cwd / "events.jsonl")
    return Installed(kizuna=target / "bin" / "kizuna", python=python, cwd=cwd, env=env)


def test_the_installed_package_is_the_one_running(installed: Installed) -> None:
    code = "import agents, schemas, streams; print(streams.__file__, schemas.__file__)"
    proc = _run(
        [str(installed.python), "-c", code], cwd=installed.cwd, env=installed.env, timeout=60
    )
    _ok(proc, "importing the installed packages")
    site = installed.python.parent.parent.resolve()
    for path in proc.stdout.split():
        assert Path(path).resolve().is_relative_to(site), proc.stdout


def test_backtest_runs_anywhere_with_the_built_in_defaults(installed: Installed) -> None:
    proc = installed.run("backtest", "events.jsonl", "--until", UNTIL)
    _ok(proc, "kizuna backtest (installed)")
    in_repo = _run(
        [sys.executable, "-m", "streams.cli", "backtest", "samples/events.jsonl", "--until", UNTIL],
        cwd=REPO_ROOT,
        env=_clean_env(),
        timeout=120,
    )
    _ok(in_repo, "kizuna backtest (repository)")
    assert proc.stdout.splitlines(), "the sample events should fire triggers"
    assert proc.stdout == in_repo.stdout
    summary = [line for line in proc.stderr.splitlines() if line.startswith("backtest:")]
    assert summary and summary == [
        line for line in in_repo.stderr.splitlines() if line.startswith("backtest:")
    ]  # the same counts of events, rejections and triggers

    shipped = shutil.copy(REPO_ROOT / "config" / "kizuna.toml", installed.cwd / "shipped.toml")
    with_file = installed.run(
        "backtest", "--config", str(shipped), "events.jsonl", "--until", UNTIL
    )
    _ok(with_file, "kizuna backtest --config <shipped config>")
    assert with_file.stdout == proc.stdout


def test_export_schemas_writes_the_packaged_schema_files(installed: Installed) -> None:
    proc = installed.run("export-schemas", "out")
    _ok(proc, "kizuna export-schemas")
    written = {p.name: p.read_bytes() for p in (installed.cwd / "out").iterdir()}
    shipped = {p.name: p.read_bytes() for p in (REPO_ROOT / "schemas" / "json").glob("*.json")}
    assert written and written == shipped


def test_a_named_config_file_that_is_missing_is_an_error_naming_it(installed: Installed) -> None:
    missing = "/nonexistent/kizuna.toml"
    for proc in (
        installed.run("backtest", "--config", missing, "events.jsonl"),
        installed.run("backtest", "events.jsonl", KIZUNA_CONFIG=missing),
    ):
        assert proc.returncode == 2, proc.stderr
        assert f"config file {missing} does not exist" in proc.stderr
        assert proc.stdout == ""

    bad = installed.cwd / "bad.toml"
    bad.write_text("[kafka]\npartitions = 0\n", encoding="utf-8")
    proc = installed.run("backtest", "--config", str(bad), "events.jsonl")
    assert proc.returncode == 2
    assert "[kafka] partitions = 0 is out of range" in proc.stderr
