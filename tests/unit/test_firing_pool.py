"""The firing pool's helper processes (real processes, no broker): they give the bytes
firing in place gives, a dead one is replaced without losing a chunk, and none
outlives its worker."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from agents.domain.co_purchase import CoPurchaseModel
from agents.domain.customer_state import CustomerState, StateLimits
from agents.domain.engine import EngineConfig, process_event
from agents.domain.firing import NEEDS_CO_PURCHASES, FiringRequest, fire_stored
from agents.domain.rulebook import Rulebook
from agents.domain.state_codec import encode_state
from schemas.timestamps import MS_PER_DAY, iso
from schemas.validation import parse_timestamp_ms
from streams.firing_pool import MAX_RESTARTS, FiringPool
from tests.factories import purchase, record

DAY0 = parse_timestamp_ms("2025-01-01T00:00:00Z")
ENGINE = EngineConfig(
    StateLimits(), {"JPY": 1.0}, Rulebook.only("lapse_90d", "lapse_180d", "cross_sell")
)
LAPSES = EngineConfig(StateLimits(), {"JPY": 1.0}, Rulebook.only("lapse_90d", "lapse_180d"))
REQUEST = FiringRequest(before_ms=DAY0 + 200 * MS_PER_DAY, now_ms=None, as_of_ms=DAY0)
REPO_ROOT = Path(__file__).resolve().parents[2]


def customers(
    count: int, first_day: int = 0, categories: tuple[str, ...] = ("food",)
) -> list[bytes | None]:
    """Stored customers who bought once, one a day from ``first_day``, and a missing one
    (an order without categories has no cross-sell)."""
    values: list[bytes | None] = []
    for n in range(first_day, first_day + count):
        state = CustomerState(customer_id=f"c{n}")
        bought = purchase(f"c{n}", iso(DAY0 + n * MS_PER_DAY), 6000, categories=categories)
        process_event(state, record(bought), ENGINE)
        values.append(encode_state(state))
    return [*values, None]


def lapsed_customers(count: int) -> list[bytes | None]:
    """``count`` stored customers who bought on day 0: each fires both lapses."""
    values: list[bytes | None] = []
    for n in range(count):
        state = CustomerState(customer_id=f"l{n}")
        process_event(state, record(purchase(f"l{n}", iso(DAY0), 6000)), LAPSES)
        values.append(encode_state(state))
    return values


async def helper_results(pool: FiringPool, values: list[bytes | None]) -> object:
    future = pool.submit(values, REQUEST)
    assert future is not None
    return await future


async def test_a_helper_fires_exactly_what_firing_in_place_gives() -> None:
    # Lapses due (bought on days 0..99, no cross-sell then), and three cross-sells due.
    values = customers(100, 0, categories=()) + customers(10, 190)
    pool = FiringPool(ENGINE, processes=1, min_chunk=1)
    pool.start()
    try:
        results = await helper_results(pool, values)
    finally:
        pool.close()

    in_place = fire_stored(values, REQUEST, ENGINE, co_purchases=None)
    assert results == in_place
    assert isinstance(results, list) and results.count(NEEDS_CO_PURCHASES) == 3
    fired = [r for r in results if not isinstance(r, str | None)]
    assert sum(len(r.triggers) for r in fired) == 100 + 20  # all 90-day lapses, 20 180-day
    with_model = fire_stored(values, REQUEST, ENGINE, CoPurchaseModel())
    assert [r for r in results if r != NEEDS_CO_PURCHASES] == [
        w for r, w in zip(results, with_model, strict=True) if r != NEEDS_CO_PURCHASES
    ]


async def test_a_killed_helper_is_replaced_and_its_chunks_come_back_to_the_caller() -> None:
    small = customers(20)
    big = lapsed_customers(1500)  # some 100 ms of evaluation per chunk
    pool = FiringPool(ENGINE, processes=1, min_chunk=5)
    pool.start()
    try:
        assert pool.takes(5) and not pool.takes(4)
        assert await helper_results(pool, small) == fire_stored(small, REQUEST, ENGINE, None)
        [first] = pool.pids()

        in_flight = [pool.submit(big, REQUEST) for _ in range(3)]
        os.kill(first, signal.SIGKILL)  # before it answers the first of them
        assert [await future for future in in_flight if future is not None] == [None] * 3
        assert pool.failures == 1 and pool.takes(5)
        assert await helper_results(pool, small) == fire_stored(small, REQUEST, ENGINE, None)
        assert pool.pids() and pool.pids() != [first]

        for _ in range(MAX_RESTARTS):
            future = pool.submit(big, REQUEST)
            for pid in pool.pids():
                os.kill(pid, signal.SIGKILL)
            assert future is not None and await future is None
        assert pool.failures == MAX_RESTARTS + 1
        assert not pool.takes(20) and pool.pids() == []  # every chunk is fired in place now
        assert pool.submit(small, REQUEST) is None
    finally:
        pool.close()


async def test_a_helper_dead_before_its_first_chunk_is_noticed_and_replaced() -> None:
    values = customers(20)
    pool = FiringPool(ENGINE, processes=1, min_chunk=1)
    pool.start()
    try:
        [first] = pool.pids()
        os.kill(first, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while alive(first) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        future = pool.submit(values, REQUEST)
        assert future is not None and await future is None
        assert pool.failures == 1 and pool.pids() and pool.pids() != [first]
        assert await helper_results(pool, values) == fire_stored(values, REQUEST, ENGINE, None)
    finally:
        pool.close()


async def test_closing_the_pool_answers_pending_chunks_and_stops_the_helpers() -> None:
    values = lapsed_customers(1500)
    pool = FiringPool(ENGINE, processes=2, min_chunk=1)
    pool.start()
    helpers = pool.pids()
    pending = [pool.submit(values, REQUEST) for _ in range(4)]
    pool.close()
    assert [await future for future in pending if future is not None] == [None] * 4
    assert not pool.takes(1) and not any(alive(pid) for pid in helpers)


HOLDER = """
import sys, time
from agents.domain.customer_state import StateLimits
from agents.domain.engine import EngineConfig
from agents.domain.rulebook import Rulebook
from streams.firing_pool import FiringPool

if __name__ == "__main__":
    pool = FiringPool(EngineConfig(StateLimits(), {}, Rulebook()), processes=2, min_chunk=1)
    pool.start()
    while len(pool.pids()) < 2:
        time.sleep(0.05)
    print(*pool.pids(), flush=True)
    time.sleep(120)
"""


def test_helpers_exit_when_their_worker_is_killed(tmp_path: Path) -> None:
    script = tmp_path / "holder.py"
    script.write_text(HOLDER)
    holder = subprocess.Popen(
        [sys.executable, str(script)],
        cwd=REPO_ROOT,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        helpers = [int(pid) for pid in holder.stdout.readline().split()]
        assert len(helpers) == 2 and all(alive(pid) for pid in helpers)
    finally:
        holder.kill()  # SIGKILL: the worker cannot close its pool
        holder.wait(10)
    deadline = time.monotonic() + 10
    while any(alive(pid) for pid in helpers) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(alive(pid) for pid in helpers)


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie, exited but not yet reaped by init, does not)."""
    try:
        status = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return status.rsplit(")", 1)[1].split()[0] != "Z"
