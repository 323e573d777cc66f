"""A firing helper process: ``python -m streams.firing_helper``, started by
:class:`streams.firing_pool.FiringPool`, never by hand.

It reads frames from stdin and answers on stdout, one answer per request, in
order. A frame is a 4-byte big-endian length and that many bytes of pickle.
The first frame is the worker's :class:`~agents.domain.engine.EngineConfig`;
every later one a chunk ``(values, request)``, answered with
:func:`agents.domain.firing.fire_stored`'s results (without the co-purchase
model) as plain tuples. End of input means the worker closed the pool or
died (even by SIGKILL: the kernel closes its end of the pipe), and the
helper exits. It ignores SIGINT and SIGTERM: Ctrl-C or a SIGTERM to the
worker's process group stops the worker, and the worker stops its helpers.
"""

from __future__ import annotations

import contextlib
import pickle
import signal
import struct
import sys
from typing import Any, BinaryIO

from agents.domain.engine import EngineConfig
from agents.domain.firing import FiredCustomer, fire_stored

HEADER = struct.Struct("!I")  # frame length, bytes

# Results cross back as plain tuples: a NamedTuple pickles and unpickles by class
# reference, 4.1 against 1.5 us per customer, and the worker unpickles them.
Wire = list[tuple[Any, ...] | str | None]


def frame(payload: Any) -> bytes:
    """``payload`` pickled, behind its length."""
    data = pickle.dumps(payload, protocol=pickle.HIGHEST_PROTOCOL)
    return HEADER.pack(len(data)) + data


def _read_frame(stream: BinaryIO) -> Any | None:
    """The next frame's payload, or ``None`` at end of input."""
    header = stream.read(HEADER.size)
    if len(header) < HEADER.size:
        return None
    (size,) = HEADER.unpack(header)
    data = stream.read(size)
    if len(data) < size:
        return None
    return pickle.loads(data)


def serve(requests: BinaryIO, answers: BinaryIO) -> None:
    """Answer every chunk of ``requests`` on ``answers`` until end of input."""
    engine = _read_frame(requests)
    if engine is None:
        return
    if not isinstance(engine, EngineConfig):
        raise TypeError(f"expected the engine configuration first, got {type(engine).__name__}")
    while (chunk := _read_frame(requests)) is not None:
        values, request = chunk
        results = fire_stored(values, request, engine, co_purchases=None)
        wire: Wire = [tuple(r) if isinstance(r, FiredCustomer) else r for r in results]
        answers.write(frame(wire))
        answers.flush()


def main() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    answers = sys.stdout.buffer
    sys.stdout = sys.stderr  # a stray print must not corrupt the answers
    with contextlib.suppress(BrokenPipeError):  # the worker died while we answered
        serve(sys.stdin.buffer, answers)


if __name__ == "__main__":
    main()
