"""Nudges: empty control records the worker appends to one of its own input partitions.

A partition whose records Faust fetched and then dropped, with nothing after them,
stalls for good: no later record reveals the hole. The worker's stall check then
appends a nudge to that partition. When the nudge arrives, the agent sees the hole
before it, reads the dropped records back and processes them (``streams/input_offsets.py``).
A nudge carries no event and is otherwise ignored; consumers of the input topics other
than Kizuna should skip records with this header, as they skip clock ticks.

* header ``kizuna.nudge`` = ``1``
* no key, empty value.
"""

from __future__ import annotations

from schemas.headers import Headers, has_header

NUDGE_HEADER = "kizuna.nudge"
NUDGE_HEADERS = [(NUDGE_HEADER, b"1")]


def is_nudge(headers: Headers) -> bool:
    """Whether a message with these headers is a nudge."""
    return has_header(headers, NUDGE_HEADER)
