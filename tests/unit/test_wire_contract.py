"""The answers' models are the contract: each success body in openapi.yaml has the same
fields, the same required ones, and the same layer names as the model that answers with it."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from shared import wire
from shared.store.base import LayerName

SPEC = yaml.safe_load((Path(__file__).resolve().parents[2] / "openapi.yaml").read_text())
COMPONENTS = SPEC["components"]["schemas"]


@pytest.mark.parametrize("name", sorted(wire.SCHEMAS))
def test_each_answer_model_matches_its_schema(name):
    model = wire.SCHEMAS[name]
    schema = COMPONENTS[name]
    fields = model.model_fields
    assert set(schema["properties"]) == set(fields), name
    assert set(schema.get("required", [])) == {f for f, info in fields.items() if info.is_required()}, name
    assert schema.get("additionalProperties") is False, f"{name}: an answer carries only its fields"


def test_every_success_body_in_the_spec_has_a_model():
    bodies = set()
    for path in SPEC["paths"].values():
        for op in path.values():
            for code, resp in op.get("responses", {}).items():
                ref = resp.get("content", {}).get("application/json", {}).get("schema", {}).get("$ref", "")
                if code.startswith("2") and ref:
                    bodies.add(ref.rsplit("/", 1)[1])
    assert bodies - {"Health"} <= set(wire.SCHEMAS)


def test_storage_names_are_the_layers():
    assert COMPONENTS["Storage"]["enum"] == list(LayerName.__args__)
