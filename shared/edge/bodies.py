"""The hot answers' bodies, built from the core's already validated models: exactly what
``shared.edge.wire``'s model of each answer dumps (same fields, same order, same values), without
validating again what the core validated (the same field types) and without importing
``shared.edge.wire``. tests/unit/test_wire_contract.py holds each equal to its model's dump."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from shared.core.models import AppendResult, Context, Message


def message(m: Message) -> dict[str, Any]:
    """``wire.WireMessage``: metadata and item left out when absent."""
    out: dict[str, Any] = {"seq": m.seq, "role": m.role, "content": m.content, "timestamp": m.timestamp}
    if m.metadata is not None:
        out["metadata"] = m.metadata
    if m.item is not None:
        out["item"] = m.item
    return out


def context(ctx: Context) -> dict[str, Any]:
    """``wire.ContextResult``: get_context's answer."""
    summary = ctx.summary
    return {
        "session_id": ctx.session_id,
        "messages": [message(m) for m in ctx.messages],
        "summary": None
        if summary is None
        else {"text": summary.text, "message_count": summary.message_count, "updated_at": summary.updated_at},
        "formatted_context": ctx.formatted_context,
        "storage": ctx.storage,
        "durable": ctx.durable,
        "memories": [
            {"session_id": m.session_id, "text": m.text, "score": m.score, "ended_at": m.ended_at} for m in ctx.memories
        ],
    }


def appended(res: AppendResult) -> dict[str, Any]:
    """``wire.AppendResult``: append_message's answer."""
    return {
        "session_id": res.session_id,
        "message_count": res.message_count,
        "summary_updated": res.summary_updated,
        "storage": res.storage,
        "durable": res.durable,
    }
