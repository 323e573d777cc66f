"""RocksDB's compaction threads run at the lowest CPU priority once the worker asks
for it (real RocksDB through Faust's store options, in a temporary directory)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]

# In a fresh process: the thread pool and its priority are per process.
COMPACT = """
import os, sys
from pathlib import Path
from faust.stores.rocksdb import RocksDBOptions
from streams.app import lower_compaction_priority

if sys.argv[2] == "low":
    lower_compaction_priority()
db = RocksDBOptions(write_buffer_size=64 * 1024).open(Path(sys.argv[1]))
for n in range(20_000):
    db[b"k%08d" % n] = os.urandom(64)
db.flush()
db.compact_range(None, None)
for task in os.listdir("/proc/self/task"):
    name = Path(f"/proc/self/task/{task}/comm").read_text().strip()
    nice = Path(f"/proc/self/task/{task}/stat").read_text().rsplit(")", 1)[1].split()[16]
    print(name, nice)
"""


def thread_priorities(tmp_path: Path, priority: str) -> dict[str, set[int]]:
    out = subprocess.run(
        [sys.executable, "-c", COMPACT, str(tmp_path / priority), priority],
        cwd=REPO_ROOT,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout
    seen: dict[str, set[int]] = {}
    for line in out.splitlines():
        name, nice = line.rsplit(" ", 1)
        seen.setdefault(name.rstrip("0123456789"), set()).add(int(nice))
    return seen


def test_compaction_threads_run_at_the_lowest_priority_and_nothing_else_does(
    tmp_path: Path,
) -> None:
    low = thread_priorities(tmp_path, "low")
    assert low["rocksdb:low"] == {19}  # compaction
    assert low["rocksdb:high"] == {0}  # flushes keep theirs
    assert low["python"] == {0}  # the event loop too

    normal = thread_priorities(tmp_path, "normal")
    assert normal["rocksdb:low"] == {0}
