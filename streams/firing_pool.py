"""Helper processes that evaluate bursts of due timers beside the worker's event loop.

A burst of firings is CPU-bound Python: per customer, decoding its state,
running its rules, encoding its state, triggers and read-model row (about
half the worker's time per trigger, measured). The event loop runs on one
core; the pool runs that evaluation (:func:`agents.domain.firing.fire_stored`,
pure) in ``processes`` helper processes (:mod:`streams.firing_helper`), so
the event loop mostly reads the states and hands the results to Kafka,
RocksDB and Redis while the helpers evaluate; it evaluates a chunk itself
only when every helper is busy (``depth`` chunks in flight).

The event loop itself talks to the helpers, over pipes it writes and reads
without blocking (frames of pickle, see :mod:`streams.firing_helper`): no
thread of the worker needs its GIL to pass a chunk on or to take results
back, so a helper is not kept waiting while the loop computes. Pipes are
enlarged to ``PIPE_BYTES`` so a helper can write a whole answer without
waiting for the loop to read it.

Only chunks of at least ``min_chunk`` customers go to a helper: one or two
customers due after an event cost less to fire in place than to ship. The
results are applied by the worker, in order, exactly as if it had evaluated
them itself: a helper has no state and no side effects, so a chunk whose
helper died (killed, out of memory) is evaluated again in place, and a new
helper is started (after ``MAX_RESTARTS`` failures, none: every chunk is then
evaluated in place).

Helpers start when the pool does and import their code at once, so the first
burst does not wait for them. They exit when the pool is closed, or as soon
as their worker dies, SIGKILL included: their input pipe then ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import pickle
import subprocess
import sys
from collections import deque
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO

from agents.domain.engine import EngineConfig
from agents.domain.firing import FiredCustomer, FiringRequest, FiringResult
from streams.firing_helper import HEADER, Wire, frame

log = logging.getLogger(__name__)

MAX_RESTARTS = 3  # helper failures after which the worker fires everything itself
PIPE_BYTES = 1024 * 1024  # pipe capacity asked for (Linux: up to fs.pipe-max-size)
READ_BYTES = 1024 * 1024  # read at most this much from a helper at a time
STOP_S = 2.0  # how long a closed helper may take to exit before it is killed
_F_SETPIPE_SZ = getattr(fcntl, "F_SETPIPE_SZ", 1031)  # Linux
_REPO_ROOT = str(Path(__file__).resolve().parents[1])

Answer = asyncio.Future[list[FiringResult] | None]


def _from_wire(results: Wire) -> list[FiringResult]:
    return [FiredCustomer._make(r) if isinstance(r, tuple) else r for r in results]


def _enlarge(pipe: IO[bytes]) -> None:
    # Not Linux, or above fs.pipe-max-size: the default size works too, more slowly.
    with contextlib.suppress(OSError):
        fcntl.fcntl(pipe.fileno(), _F_SETPIPE_SZ, PIPE_BYTES)


class _Helper:
    """One helper process and the chunks it was sent, answered in the order sent."""

    def __init__(self, engine: EngineConfig, on_death: Callable[[_Helper], None]) -> None:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (_REPO_ROOT, env.get("PYTHONPATH")) if p)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "streams.firing_helper"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
        )
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self._stdin, self._stdout = self.proc.stdin, self.proc.stdout
        _enlarge(self._stdin)
        _enlarge(self._stdout)
        self._on_death = on_death
        self.pending: deque[Answer] = deque()
        self.alive = True
        self._loop: asyncio.AbstractEventLoop | None = None
        self._unsent = bytearray()
        self._received = bytearray()
        # Blocking, small: fits in the pipe. If it died already, its first chunk finds out.
        with contextlib.suppress(BrokenPipeError):
            self._stdin.write(frame(engine))
            self._stdin.flush()

    def send(self, values: Sequence[bytes | None], request: FiringRequest) -> Answer:
        """Queue a chunk; the future gets its results, or ``None`` if the helper dies first."""
        loop = asyncio.get_running_loop()
        if self._loop is None:
            self._attach(loop)
        answer: Answer = loop.create_future()
        self.pending.append(answer)
        self._unsent += frame((values, request))
        self._write()
        return answer

    def _attach(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        os.set_blocking(self._stdin.fileno(), False)
        os.set_blocking(self._stdout.fileno(), False)
        loop.add_reader(self._stdout.fileno(), self._read)

    def _write(self) -> None:
        if not self.alive or self._loop is None:
            return
        try:
            written = os.write(self._stdin.fileno(), self._unsent)
        except BlockingIOError:
            written = 0
        except OSError:  # BrokenPipeError: it died
            self._die()
            return
        del self._unsent[:written]
        if self._unsent:
            self._loop.add_writer(self._stdin.fileno(), self._write)
        else:
            self._loop.remove_writer(self._stdin.fileno())

    def _read(self) -> None:
        try:
            data = os.read(self._stdout.fileno(), READ_BYTES)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:  # end of its answers: it died
            self._die()
            return
        self._received += data
        header = HEADER.size
        while len(self._received) >= header:
            (size,) = HEADER.unpack_from(self._received)
            if len(self._received) < header + size:
                break
            wire = self._received[header : header + size]
            del self._received[: header + size]
            answer = self.pending.popleft()
            if not answer.done():
                answer.set_result(_from_wire(pickle.loads(wire)))

    def _die(self) -> None:
        if not self.alive:
            return
        self.stop()
        self._on_death(self)

    def stop(self) -> None:
        """Close its pipes (it exits at the end of its input) and answer every pending
        chunk with ``None``."""
        self.alive = False
        if self._loop is not None:
            self._loop.remove_reader(self._stdout.fileno())
            self._loop.remove_writer(self._stdin.fileno())
        for pipe in (self._stdin, self._stdout):
            with contextlib.suppress(OSError):  # unflushed input to a dead helper
                pipe.close()
        while self.pending:
            answer = self.pending.popleft()
            if not answer.done():
                answer.set_result(None)

    def reap(self) -> None:
        """Wait for it to exit (``STOP_S`` at most, then kill it)."""
        try:
            self.proc.wait(STOP_S)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


class FiringPool:
    """``processes`` helper processes evaluating chunks of at least ``min_chunk`` customers
    (``processes == 0``: none; every chunk is evaluated in place)."""

    def __init__(self, engine: EngineConfig, *, processes: int, min_chunk: int) -> None:
        self._engine = engine
        self.processes = processes
        self.min_chunk = min_chunk
        self._helpers: list[_Helper] = []
        self.failures = 0  # helper failures so far

    def start(self) -> None:
        """Start the helpers; each imports its code now (returns at once)."""
        if self.failures > MAX_RESTARTS:
            return
        while len(self._helpers) < self.processes:
            self._helpers.append(_Helper(self._engine, self._died))

    @property
    def depth(self) -> int:
        """Chunks worth having with the helpers: two queued per helper besides the one it
        evaluates, so it has work while the event loop evaluates a chunk in place or
        writes results (it reads answers only between chunks)."""
        return 3 * self.processes

    def takes(self, chunk_size: int) -> bool:
        """Whether a chunk of ``chunk_size`` customers goes to a helper."""
        return chunk_size >= self.min_chunk and any(h.alive for h in self._helpers)

    def submit(self, values: Sequence[bytes | None], request: FiringRequest) -> Answer | None:
        """Start evaluating one chunk in the least busy helper (call from the event loop).

        Its result is ``None`` if the helper dies first, and the return value is ``None``
        if no helper runs: evaluate the chunk in place then."""
        helpers = [h for h in self._helpers if h.alive]
        if not helpers:
            return None
        helper = min(helpers, key=lambda h: len(h.pending))
        return helper.send(values, request)

    def _died(self, helper: _Helper) -> None:
        """A helper died: its pending chunks were answered ``None``; replace it, at most
        ``MAX_RESTARTS`` times in all, then evaluate everything in place."""
        self.failures += 1
        if helper in self._helpers:
            self._helpers.remove(helper)
        helper.reap()  # it is dead already
        if self.failures > MAX_RESTARTS:
            log.error("firing helpers failed %d times; firing in the worker", self.failures)
            self.close()
        else:
            log.error(
                "firing helper %d died (exit %s); starting a new one",
                helper.proc.pid,
                helper.proc.returncode,
            )
            self.start()

    def close(self) -> None:
        """Stop the helpers; chunks not yet answered are answered ``None``."""
        helpers, self._helpers = self._helpers, []
        for helper in helpers:
            helper.stop()
        for helper in helpers:
            helper.reap()

    def pids(self) -> list[int]:
        """Process ids of the running helpers (for monitoring and benchmarks)."""
        return sorted(h.proc.pid for h in self._helpers if h.alive)
