"""Helper processes that evaluate bursts of due timers beside the worker's event loop.

A burst of firings is CPU-bound Python: per customer, decoding its state,
running its rules, encoding its state, triggers and read-model row (about
half the worker's time per trigger, measured). The event loop runs on one
core; the pool runs that evaluation (:func:`agents.domain.firing.fire_stored`,
pure) in ``processes`` helper processes, so the event loop mostly reads the
states and hands the results to Kafka, RocksDB and Redis while the helpers
evaluate; it evaluates a chunk itself only when every helper is busy
(``depth`` chunks in flight).

Only chunks of at least ``min_chunk`` customers go to a helper: one or two
customers due after an event cost less to fire in place than to ship. The
results are applied by the worker, in order, exactly as if it had evaluated
them itself: a helper has no state and no side effects, so a chunk whose
helper died (killed, out of memory) is evaluated again in place, and new
helpers are started (after ``MAX_RESTARTS`` failures, none: every chunk is
then evaluated in place).

Helpers are started with ``spawn`` (the worker has threads: RocksDB's, the
consumer's) and warmed up at once, so the first burst does not wait for
their imports. They exit when the pool is closed, or within
``ORPHAN_CHECK_S`` of their worker's death (even by SIGKILL).
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from agents.domain.engine import EngineConfig
from agents.domain.firing import FiredCustomer, FiringRequest, FiringResult, fire_stored

log = logging.getLogger(__name__)

ORPHAN_CHECK_S = 0.5  # how often a helper checks that its worker is alive
MAX_RESTARTS = 3  # helper failures after which the worker fires everything itself

_engine: EngineConfig | None = None  # in a helper: the worker's engine configuration


def _start_helper(engine: EngineConfig, worker_pid: int) -> None:
    global _engine
    _engine = engine
    # Ctrl-C or a SIGTERM to the worker's process group stops the worker, which stops us.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    # The worker may have died already, while this helper was starting.
    watch = threading.Thread(target=_exit_when_orphaned, args=(worker_pid,), daemon=True)
    watch.start()


def _exit_when_orphaned(worker_pid: int) -> None:
    """A helper's work queue stays open after its worker was killed (SIGKILL, OOM):
    exit as soon as the worker is gone instead of waiting on it for ever."""
    while os.getppid() == worker_pid:
        time.sleep(ORPHAN_CHECK_S)
    os._exit(0)


# Results cross back as plain tuples: a NamedTuple pickles and unpickles by class
# reference, 4.1 against 1.5 us per customer, and the unpickling takes the worker's GIL.
_Wire = list[tuple[Any, ...] | str | None]


def _fire_in_helper(values: Sequence[bytes | None], request: FiringRequest) -> _Wire:
    if _engine is None:  # pragma: no cover - the initializer always runs first
        raise RuntimeError("firing helper started without its engine configuration")
    results = fire_stored(values, request, _engine, co_purchases=None)
    return [tuple(r) if isinstance(r, FiredCustomer) else r for r in results]


def _from_wire(results: _Wire) -> list[FiringResult]:
    return [FiredCustomer._make(r) if isinstance(r, tuple) else r for r in results]


def _ready() -> bool:
    return True


class FiringPool:
    """``processes`` helper processes evaluating chunks of at least ``min_chunk`` customers
    (``processes == 0``: none; every chunk is evaluated in place)."""

    def __init__(self, engine: EngineConfig, *, processes: int, min_chunk: int) -> None:
        self._engine = engine
        self.processes = processes
        self.min_chunk = min_chunk
        self._executor: ProcessPoolExecutor | None = None
        self.failures = 0  # helper failures so far

    def start(self) -> None:
        """Start the helpers and have each import its code now (returns at once)."""
        if self.processes == 0 or self._executor is not None or self.failures > MAX_RESTARTS:
            return
        self._executor = ProcessPoolExecutor(
            max_workers=self.processes,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_start_helper,
            initargs=(self._engine, os.getpid()),
        )
        for _ in range(self.processes):
            self._executor.submit(_ready)

    @property
    def depth(self) -> int:
        """Chunks worth having with the helpers: two queued per helper besides the one it
        evaluates. A finished chunk's results and the next chunk pass through the worker's
        executor threads, which wait for the GIL while the event loop computes; with one
        chunk queued the helper sat idle half of a burst (measured)."""
        return 3 * self.processes

    def takes(self, chunk_size: int) -> bool:
        """Whether a chunk of ``chunk_size`` customers goes to a helper."""
        return self._executor is not None and chunk_size >= self.min_chunk

    def submit(
        self, values: Sequence[bytes | None], request: FiringRequest
    ) -> asyncio.Future[list[FiringResult] | None] | None:
        """Start evaluating one chunk in a helper (call only when :meth:`takes` it).

        Its result is ``None``, as is the return value if the pool broke before, when a
        helper died: evaluate the chunk in place then (new helpers are on their way)."""
        executor = self._executor
        if executor is None:
            raise RuntimeError("the firing pool is not running")
        try:
            future = executor.submit(_fire_in_helper, values, request)
        except BrokenProcessPool as exc:  # a helper died since the last chunk
            self._failed(executor, exc)
            return None
        return asyncio.ensure_future(self._result(executor, asyncio.wrap_future(future)))

    async def _result(
        self, executor: ProcessPoolExecutor, future: asyncio.Future[_Wire]
    ) -> list[FiringResult] | None:
        try:
            return _from_wire(await future)
        except BrokenProcessPool as exc:
            self._failed(executor, exc)
            return None

    def _failed(self, executor: ProcessPoolExecutor, exc: BaseException) -> None:
        """``executor`` broke: start new helpers, at most ``MAX_RESTARTS`` times, then
        evaluate everything in place. Once per broken executor (every chunk in flight
        in it reports the same failure)."""
        if executor is not self._executor:
            return
        self.failures += 1
        self.close()
        if self.failures > MAX_RESTARTS:
            log.error(
                "firing helpers failed %d times; firing in the worker: %r", self.failures, exc
            )
        else:
            log.error("a firing helper failed; starting new ones: %r", exc)
            self.start()

    def close(self) -> None:
        """Stop the helpers (queued chunks are cancelled; running ones finish)."""
        executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=False, cancel_futures=True)

    def pids(self) -> list[int]:
        """Process ids of the running helpers (for monitoring and benchmarks)."""
        processes: dict[int, Any] = getattr(self._executor, "_processes", None) or {}
        return sorted(processes)
