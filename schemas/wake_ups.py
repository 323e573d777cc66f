"""Wake-ups: empty control records the worker's stall check sends to its own
``clock-ticks`` topic, so that the agent re-checks input partitions that stopped short.

A partition whose records Faust fetched and then dropped, with nothing after them,
stalls for good: no later record of it reveals the hole (``streams/input_offsets.py``).
The stall check then sends a wake-up to the same partition of ``clock-ticks``, which is
co-partitioned with the inputs and consumed by the same agent. It names each stalled
topic of that partition and the offset its processing stood at. When it arrives and
such a partition is still there, behind its log end, with nothing more of it on its
way to the agent, the agent reads the missing records back and processes them
(``agents/ingest.py``). The input topics are only read: a wake-up never goes there.

* header ``kizuna.wake_up`` = ``<topic>@<offset>``, space-separated, one per stalled
  topic (Kafka topic names hold neither spaces nor ``@``);
* no key, empty value. Not a clock tick: it moves no clock and fires nothing itself.
"""

from __future__ import annotations

from collections.abc import Iterable

from schemas.headers import Headers, has_header, header_value

WAKE_UP_HEADER = "kizuna.wake_up"


def wake_up_headers(stalled: Iterable[tuple[str, int]]) -> list[tuple[str, bytes]]:
    """The headers of a wake-up for ``(topic, offset processing stood at)`` pairs."""
    value = " ".join(f"{topic}@{offset}" for topic, offset in stalled)
    return [(WAKE_UP_HEADER, value.encode())]


def is_wake_up(headers: Headers) -> bool:
    """Whether a message with these headers is a wake-up."""
    return has_header(headers, WAKE_UP_HEADER)


def decode_wake_up(headers: Headers) -> list[tuple[str, int]]:
    """The ``(topic, offset)`` pairs a wake-up names; malformed entries are left out."""
    value = header_value(headers, WAKE_UP_HEADER)
    pairs: list[tuple[str, int]] = []
    for entry in (value or b"").decode(errors="replace").split():
        topic, _, offset = entry.rpartition("@")
        if topic and offset.isascii() and offset.isdigit():
            pairs.append((topic, int(offset)))
    return pairs


# Earlier versions appended empty "nudges" with this header to the input topics
# themselves; the worker still passes over any left there.
LEGACY_NUDGE_HEADER = "kizuna.nudge"


def is_legacy_nudge(headers: Headers) -> bool:
    """Whether a message with these headers is a nudge an earlier version appended."""
    return has_header(headers, LEGACY_NUDGE_HEADER)
