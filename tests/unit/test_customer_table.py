"""The customer table writes the same key bytes Faust writes for its own table keys."""

from __future__ import annotations

import faust
import pytest

from streams.customer_table import customer_key


@pytest.mark.parametrize("customer_id", ["c-1", "顧客-42", 'quote"and\\slash', "tab\there", ""])
def test_customer_key_is_the_key_fausts_json_serializer_writes(customer_id: str) -> None:
    app = faust.App("key-check", autodiscover=False)
    expected = app.serializers.dumps_key(str, customer_id, serializer="json")
    assert customer_key(customer_id) == expected
