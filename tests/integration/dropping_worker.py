"""``kizuna worker`` with Faust's consumer made to lose records, as Faust itself does
in a race at the end of a recovery (docs/benchmarks.md, "a message lost after a
restart"): the first ``KIZUNA_TEST_DROP_FIRST`` records fetched from each partition
of the topic ``KIZUNA_TEST_DROP_TOPIC`` are fetched (the consumer's position moves
past them) but never delivered to the agent.

Test-only fault injection. Run as ``python -m tests.integration.dropping_worker``.
"""

from __future__ import annotations

import os
import sys
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

from faust.transport.consumer import Consumer


def install(topic: str, first: int) -> None:
    fetched: Counter[Any] = Counter()
    getmany = Consumer.getmany

    async def losing_getmany(self: Consumer, timeout: float) -> AsyncIterator[Any]:
        async for tp, message in getmany(self, timeout):
            if tp.topic == topic and fetched[tp] < first:
                fetched[tp] += 1
                continue
            yield tp, message

    Consumer.getmany = losing_getmany  # type: ignore[method-assign]


if __name__ == "__main__":
    install(os.environ["KIZUNA_TEST_DROP_TOPIC"], int(os.environ["KIZUNA_TEST_DROP_FIRST"]))
    from streams.cli import main

    sys.exit(main(sys.argv[1:]))
