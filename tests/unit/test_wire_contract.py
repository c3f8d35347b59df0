"""The answers' models are the contract: each success body in openapi.yaml has the same
fields, the same required ones, and the same layer names as the model that answers with it."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from shared.edge import bodies, wire
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


def test_the_end_reasons_a_client_may_give_are_the_cores():
    from shared.store.base import CLIENT_END_REASONS

    assert COMPONENTS["EndRequest"]["properties"]["reason"]["enum"] == list(CLIENT_END_REASONS)


# -- the hot answers are built without validating twice: they must equal the model's dump -----


def _messages():
    from shared.core.models import Message

    return [
        Message(seq=1, role="user", content="Where is my order? ünïcode ✓", timestamp=1700000000.25),
        Message(
            seq=2,
            role="assistant",
            content="On its way.\nLine two",
            timestamp=1700000001.0,
            metadata={"sources": ["kb_1"], "confidence": 0.82, "nested": {"a": [1, 2.5, None, True]}},
        ),
        Message(seq=3, role="system", content="x", timestamp=1700000002, metadata=None),
    ]


@pytest.mark.parametrize("with_summary", [True, False])
@pytest.mark.parametrize("durable", [True, False])
def test_context_body_is_the_models_dump(with_summary, durable):
    import json

    from shared.core.models import Context, Summary

    ctx = Context(
        session_id="0123456789abcdef0123456789abcdef",
        messages=_messages(),
        summary=Summary(text="They asked about an order.", message_count=5, updated_at=1700000000.5)
        if with_summary
        else None,
        formatted_context="Recent messages:\nUser: Where is my order?",
        storage="redis",
        durable=durable,
        estimated_tokens=12,
    )
    fast, slow = bodies.context(ctx), wire.ContextResult.validated(ctx)
    assert fast == slow
    # the same JSON, key order included
    assert json.dumps(fast) == json.dumps(slow)
    assert set(fast) == set(wire.ContextResult.model_fields)
    assert "metadata" not in fast["messages"][0] and fast["messages"][1]["metadata"]["confidence"] == 0.82


@pytest.mark.parametrize("storage", list(LayerName.__args__))
def test_append_body_is_the_models_dump(storage):
    import json

    from shared.core.models import AppendResult

    res = AppendResult(
        session_id="0123456789abcdef0123456789abcdef",
        seq=7,
        message_count=7,
        summary_updated=True,
        storage=storage,
        durable=storage != "memory",
    )
    fast, slow = bodies.appended(res), wire.AppendResult.validated(res)
    assert json.dumps(fast) == json.dumps(slow)
    assert set(fast) == set(wire.AppendResult.model_fields)


def test_an_instance_serving_get_context_never_defines_the_wire_models():
    """The hot handlers answer through shared.edge.bodies: a cold start of get_context skips
    defining shared.edge.wire's twenty models (several ms)."""
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[2]
    code = (
        "import importlib.util, sys; "
        f"sys.path.insert(0, {str(root)!r}); "
        f"spec = importlib.util.spec_from_file_location('main', {str(root / 'functions' / 'main.py')!r}); "
        "mod = importlib.util.module_from_spec(spec); spec.loader.exec_module(mod); "
        "import shared.core.manager, shared.edge.bodies; "
        "print('shared.edge.wire' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == "False", out.stderr
