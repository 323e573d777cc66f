"""``kizuna worker`` whose engine step raises for events with an ``event_id`` starting
``poison-``: a stand-in for a bug, or an input the validator let through that the
engine cannot fold. The worker must dead-letter such a record (``processing_error``)
and carry on.

Test-only fault injection. Run as ``python -m tests.integration.poison_worker``.
"""

from __future__ import annotations

import sys
from typing import Any

import agents.ingest
from agents.domain.engine import process_event

POISON_PREFIX = "poison-"


def poisoned_process_event(state: Any, event: Any, config: Any, **kwargs: Any) -> Any:
    if event.event_id.startswith(POISON_PREFIX):
        raise ZeroDivisionError(f"injected failure for {event.event_id}")
    return process_event(state, event, config, **kwargs)


if __name__ == "__main__":
    agents.ingest.process_event = poisoned_process_event  # type: ignore[attr-defined]
    from streams.cli import main

    sys.exit(main(sys.argv[1:]))
