"""``kizuna worker`` whose input stall check reports a partition after one check without
progress instead of two, so that it runs against partitions that are merely busy (a
backlog queued behind other partitions) as often as possible.

Test-only. Run as ``python -m tests.integration.eager_stall_worker``.
"""

from __future__ import annotations

import sys
from collections.abc import Hashable

from streams.input_offsets import InputOffsets


def install() -> None:
    stalled = InputOffsets.stalled

    def eager_stalled(self: InputOffsets, key: Hashable, end_offset: int) -> int | None:
        # The first call arms the check, the second reports: one check is enough.
        first = stalled(self, key, end_offset)
        return first if first is not None else stalled(self, key, end_offset)

    InputOffsets.stalled = eager_stalled  # type: ignore[method-assign]


if __name__ == "__main__":
    install()
    from streams.cli import main

    sys.exit(main(sys.argv[1:]))
