"""The Redis read model against the real Redis: rows travel as one JSON argument that
the server-side script turns into hash fields, newer versions win whatever order the
writes come in, and rows staged unbuilt are built once, at the flush."""

from __future__ import annotations

import uuid

from streams.read_model import RedisReadModel


async def test_rows_round_trip_and_only_newer_versions_overwrite(
    stack_env: dict[str, str],
) -> None:
    model = RedisReadModel(stack_env["KIZUNA_REDIS_URL"], f"t{uuid.uuid4().hex[:8]}:", 2)
    try:
        fields = {
            "stage": "loyal",
            "note": 'quotes " and \\ and 日本語 and \u0001',
            "empty": "",
            "big": "9" * 40,
            "list": '[{"at":"2026-01-01T00:00:00.000Z"}]',
        }
        model.stage_encoded("c-1", 5, fields)
        model.stage_encoded("c-2", 1, {"stage": "prospect"})
        model.stage_encoded("c-3", 1, {"stage": "prospect"})  # 3 rows, 2 per round trip
        model.count("dead_letter.total", 2)
        await model.flush()
        assert await model.read_customer("c-1") == {"version": "5", **fields}
        assert await model.read_stats() == {"dead_letter.total": 2}

        model.stage_encoded("c-1", 4, {"stage": "at_risk"})  # older: dropped by Redis
        model.stage_encoded("c-2", 2, {"stage": "new"})
        await model.flush()
        assert (await model.read_customer("c-1"))["stage"] == "loyal"
        assert (await model.read_customer("c-2")) == {"version": "2", "stage": "new"}
        assert (model.rows_written, model.rows_skipped) == (4, 1)
    finally:
        await model.close()


async def test_lazy_rows_are_built_once_at_the_flush_and_a_newer_stage_replaces_them(
    stack_env: dict[str, str],
) -> None:
    model = RedisReadModel(stack_env["KIZUNA_REDIS_URL"], f"t{uuid.uuid4().hex[:8]}:", 100)
    built: list[str] = []

    def row(label: str) -> dict[str, str]:
        built.append(label)
        return {"stage": label}

    def failing() -> dict[str, str]:
        raise ValueError("broken row")

    try:
        model.stage_lazy("c-1", 1, lambda: row("v1"))
        model.stage_lazy("c-1", 2, lambda: row("v2"))
        model.stage_lazy("c-1", 1, lambda: row("stale"))  # older than what is queued
        model.stage_lazy("c-2", 1, failing)
        assert built == []  # nothing is built before the flush
        await model.flush()
        assert built == ["v2"]
        assert await model.read_customer("c-1") == {"version": "2", "stage": "v2"}
        assert await model.read_customer("c-2") is None
        assert model.rows_failed == 1 and model.pending == 0
    finally:
        await model.close()
