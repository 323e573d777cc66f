"""The wire contract, the Faust records and the exported JSON Schema agree."""

from __future__ import annotations

import random
import uuid
from pathlib import Path

import orjson
import pytest

from schemas.contract import EVENT_TYPES, LINE_ITEM_FIELDS, EventType
from schemas.events import DERIVED_FIELDS, RECORD_BY_TYPE, LineItem, record_fields, required_fields
from schemas.jsonschema import DEFAULT_DIRECTORY, event_schema, render, write_schemas
from schemas.triggers import _NAMESPACE, Trigger, trigger_id


@pytest.mark.parametrize("etype", EVENT_TYPES, ids=lambda t: t.name)
def test_record_fields_match_the_contract(etype: EventType) -> None:
    record = RECORD_BY_TYPE[etype.name]
    assert record_fields(record) == (*[f.name for f in etype.all_fields], *DERIVED_FIELDS)
    required = {f.name for f in etype.all_fields if f.required}
    assert required == required_fields(record)


def test_line_item_record_matches_the_contract() -> None:
    assert list(record_fields(LineItem)) == [f.name for f in LINE_ITEM_FIELDS]


@pytest.mark.parametrize("etype", EVENT_TYPES, ids=lambda t: t.name)
def test_committed_schema_files_are_up_to_date(etype: EventType) -> None:
    committed = DEFAULT_DIRECTORY / f"{etype.name}.schema.json"
    assert committed.read_bytes() == render(etype), "run: kizuna export-schemas"


@pytest.mark.parametrize("etype", EVENT_TYPES, ids=lambda t: t.name)
def test_exported_schema_describes_the_record(etype: EventType) -> None:
    schema = event_schema(etype)
    record = RECORD_BY_TYPE[etype.name]
    assert set(schema["properties"]) == set(record_fields(record)) - set(DERIVED_FIELDS) | {"type"}
    assert set(schema["required"]) == required_fields(record)
    assert schema["additionalProperties"] is True  # forward compatible
    assert schema["x-kizuna-topic"] == etype.topic


def test_write_schemas_writes_one_file_per_type(tmp_path: Path) -> None:
    paths = write_schemas(tmp_path)
    expected = [f"{t.name}.schema.json" for t in EVENT_TYPES] + ["trigger.schema.json"]
    assert sorted(p.name for p in paths) == sorted(expected)
    assert orjson.loads(paths[0].read_bytes())["title"] == EVENT_TYPES[0].name


def test_committed_trigger_schema_is_up_to_date_and_lists_every_field() -> None:
    committed = DEFAULT_DIRECTORY / "trigger.schema.json"
    assert committed.read_bytes() == render(None), "run: kizuna export-schemas"
    schema = orjson.loads(committed.read_bytes())
    assert set(schema["properties"]) == set(Trigger.__dataclass_fields__)


def test_trigger_id_is_uuid5_of_customer_rule_and_episode() -> None:
    rng = random.Random(5)
    customers = ["c1", "顧客-42", "", *[f"c{rng.random()}" for _ in range(500)]]
    for customer in customers:
        for rule, episode in [("lapse_90d", "2025-01-01T00:00:00.000Z"), ("cross_sell", "x")]:
            expected = str(uuid.uuid5(_NAMESPACE, f"{customer}\x1f{rule}\x1f{episode}"))
            assert trigger_id(customer, rule, episode) == expected
