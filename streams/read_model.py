"""The Redis read model: one hash per customer, plus a stats hash.

Layout (``P`` is ``[redis] key_prefix``):

* ``P customer:<customer_id>`` — a hash of the fields of
  :func:`agents.domain.customer_view.summarize` (scalars as plain text, empty
  string for none, lists and maps as JSON), plus ``state`` (the whole state as
  JSON). Field ``version`` orders writes: a write whose version is not newer
  than the stored one is dropped by a server-side script, so an older copy
  never overwrites a newer one, whatever order batches arrive in.
* ``P stats`` — counters, e.g. ``dead_letter.total`` and
  ``dead_letter.<code>``.

The worker queues rows with :meth:`RedisReadModel.stage` and writes them in
pipelined batches with :meth:`RedisReadModel.flush`. A row can also be queued
unbuilt (:meth:`RedisReadModel.stage_lazy`): it is built when the flush writes it,
once however many changes its customer had since the last flush (building a row
derives the whole summary; per event it was a sixth of the worker's CPU). Each
row travels as one JSON argument that the script turns into hash fields, instead
of two arguments per field packed by the client.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

import orjson
import redis.asyncio as aioredis
from redis.exceptions import NoScriptError

from schemas.customer_row import encode_row

log = logging.getLogger(__name__)

# KEYS[1] = hash key; ARGV[1] = version; ARGV[2] = the fields, a JSON object of strings.
_WRITE_IF_NEWER = """
local current = redis.call('HGET', KEYS[1], 'version')
if current and tonumber(current) >= tonumber(ARGV[1]) then
  return 0
end
local args = {'version', ARGV[1]}
for name, value in pairs(cjson.decode(ARGV[2])) do
  args[#args + 1] = name
  args[#args + 1] = value
end
redis.call('HSET', KEYS[1], unpack(args))
return 1
"""

Row = dict[str, str]


class RedisReadModel:
    """Batched, version-guarded writes of customer rows to Redis."""

    def __init__(self, url: str, key_prefix: str, max_batch: int) -> None:
        self._redis = aioredis.from_url(url)
        self._prefix = key_prefix
        self._max_batch = max_batch
        self._pending: dict[str, tuple[int, Row | Callable[[], Row]]] = {}
        self._pending_counters: dict[str, int] = {}
        self._script_sha: str | None = None
        self.rows_written = 0
        self.rows_skipped = 0
        self.rows_failed = 0

    def customer_key(self, customer_id: str) -> str:
        return f"{self._prefix}customer:{customer_id}"

    @property
    def stats_key(self) -> str:
        return f"{self._prefix}stats"

    def stage(self, customer_id: str, version: int, fields: Mapping[str, Any]) -> None:
        """Queue a row; a newer staged version of the same customer replaces an older one."""
        queued = self._pending.get(customer_id)
        if queued is None or queued[0] < version:
            self.stage_encoded(customer_id, version, encode_row(fields))

    def count(self, counter: str, amount: int = 1) -> None:
        """Queue an increment of a stats counter."""
        self._pending_counters[counter] = self._pending_counters.get(counter, 0) + amount

    @property
    def pending(self) -> int:
        return len(self._pending)

    async def flush(self) -> None:
        """Write everything staged, ``max_batch`` rows per pipeline round trip (rows
        staged unbuilt are built now)."""
        while self._pending or self._pending_counters:
            batch: list[tuple[str, int, Row]] = []
            for customer_id in list(self._pending)[: self._max_batch]:
                version, row = self._pending.pop(customer_id)
                if callable(row):
                    try:
                        row = row()
                    except Exception:  # a bug in the row, not in Redis: skip it, say so
                        self.rows_failed += 1
                        log.exception("building the read-model row of %r failed", customer_id)
                        continue
                batch.append((customer_id, version, row))
            counters, self._pending_counters = self._pending_counters, {}
            try:
                await self._write(batch, counters)
            except Exception:
                # Put the rows back (unless newer ones were staged meanwhile) and retry later.
                for customer_id, version, fields in batch:
                    self.stage_encoded(customer_id, version, fields)
                for name, amount in counters.items():
                    self.count(name, amount)
                raise

    def stage_encoded(self, customer_id: str, version: int, fields: Row) -> None:
        """:meth:`stage` for a row already encoded (``schemas.customer_row.encode_row``)."""
        queued = self._pending.get(customer_id)
        if queued is None or queued[0] < version:
            self._pending[customer_id] = (version, fields)

    def stage_lazy(self, customer_id: str, version: int, build: Callable[[], Row]) -> None:
        """:meth:`stage_encoded` for a row built (by ``build()``, which must not depend
        on anything that changes before the flush but the time) only when it is written:
        a later stage of the same customer replaces it unbuilt."""
        queued = self._pending.get(customer_id)
        if queued is None or queued[0] < version:
            self._pending[customer_id] = (version, build)

    async def _write(self, batch: list[tuple[str, int, Row]], counters: Mapping[str, int]) -> None:
        if self._script_sha is None:
            self._script_sha = await self._redis.script_load(_WRITE_IF_NEWER)
        pipe = self._redis.pipeline(transaction=False)
        sha = self._script_sha
        for customer_id, version, fields in batch:
            pipe.evalsha(sha, 1, self.customer_key(customer_id), version, orjson.dumps(fields))
        for name, amount in counters.items():
            pipe.hincrby(self.stats_key, name, amount)
        try:
            results = await pipe.execute()
        except NoScriptError:
            self._script_sha = None  # Redis restarted and lost the script: load it again
            raise
        written = sum(1 for r in results[: len(batch)] if r == 1)
        self.rows_written += written
        self.rows_skipped += len(batch) - written

    async def read_customer(self, customer_id: str) -> dict[str, str] | None:
        """The stored hash of one customer, or ``None``."""
        raw = await self._redis.hgetall(self.customer_key(customer_id))
        if not raw:
            return None
        return {_text(k): _text(v) for k, v in raw.items()}

    async def read_stats(self) -> dict[str, int]:
        raw = await self._redis.hgetall(self.stats_key)
        return {_text(k): int(v) for k, v in raw.items()}

    async def ping(self) -> bool:
        return bool(await self._redis.ping())

    async def close(self) -> None:
        await self._redis.aclose()


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
