"""The HTTP contract's handlers: parsed input -> one call of the core -> the response shape.

Each handler takes a ``shared.http.Call`` and returns ``(status, body)``; validation of
fields is the core's (``shared.models``), except what only exists at the edge (query
parameter ranges, unknown top-level fields). The shapes here are the contract of issue #3
and ``openapi.yaml``: keep the three in step.
"""

from __future__ import annotations

from typing import Any

from shared import ratelimit
from shared.http import Call, Reply, int_param, only_fields
from shared.models import Context, Message, Summary, validate_session_id
from shared.settings import get_settings


def _manager() -> Any:
    # Imported on first use: the module graph of the core stays out of discovery.
    from shared.session_manager import get_manager

    return get_manager()


def create_session(call: Call) -> Reply:
    only_fields(call.body, {"user_info"})
    ratelimit.enforce_session_creation(call.client_ip)
    info = _manager().create_session(call.body.get("user_info"), user_id=call.uid)
    return 201, {
        "session_id": info.session_id,
        "user_id": info.user_id,
        "created_at": info.created_at,
        "storage": info.storage,
    }


def append_message(call: Call) -> Reply:
    body = call.body
    only_fields(body, {"session_id", "role", "content", "metadata", "client_message_id"})
    sid = validate_session_id(body.get("session_id"))
    res = _manager().add_message(
        sid,
        body.get("role"),
        body.get("content"),
        body.get("metadata"),
        client_message_id=body.get("client_message_id"),
        user_id=call.uid,
    )
    return 201, {
        "session_id": res.session_id,
        "message_count": res.message_count,
        "summary_updated": res.summary_updated,
        "storage": res.storage,
        "durable": res.durable,
    }


def get_context(call: Call) -> Reply:
    sid = validate_session_id(call.args.get("session_id"))
    window = get_settings().message_window
    n = int_param(call.args, "max_messages", default=window, lo=1, hi=window)
    ctx: Context = _manager().get_context_for_llm(sid, n, user_id=call.uid)
    return 200, {
        "session_id": ctx.session_id,
        "messages": [_message(m) for m in ctx.messages],
        "summary": _summary(ctx.summary),
        "formatted_context": ctx.formatted_context,
        "storage": ctx.storage,
    }


def get_history(call: Call) -> Reply:
    sid = validate_session_id(call.args.get("session_id"))
    limit = int_param(call.args, "limit", default=None, lo=1, hi=get_settings().history_max_limit)
    hist = _manager().get_history(sid, limit, user_id=call.uid)
    return 200, {
        "session_id": hist.session_id,
        "messages": [_message(m) for m in hist.messages],
        "storage": hist.storage,
    }


def end_session(call: Call) -> Reply:
    body = call.body
    only_fields(body, {"session_id", "agent_id", "reason"})
    sid = validate_session_id(body.get("session_id"))
    # agent_id and reason are validated by the core (one rule, one place)
    reason = body.get("reason", "completed")
    agent_id = body.get("agent_id")
    res = _manager().end_session_with_analytics(sid, agent_id, reason, user_id=call.uid)
    return 200, {
        "session_id": res.session_id,
        "status": res.status,
        "summary": _summary(res.summary),
        "message_count": res.message_count,
        "queries_recorded": res.queries_recorded,
    }


def get_user_stats(call: Call) -> Reply:
    return 200, _manager().get_user_stats(call.uid)


def health(call: Call) -> Reply:
    report = _manager().health()
    return 200, {"status": report["status"], "layers": report["layers"]}


def _message(m: Message) -> dict[str, Any]:
    out: dict[str, Any] = {"seq": m.seq, "role": m.role, "content": m.content, "timestamp": m.timestamp}
    if m.metadata is not None:
        out["metadata"] = m.metadata
    return out


def _summary(s: Summary | None) -> dict[str, Any] | None:
    return None if s is None else {"text": s.text, "message_count": s.message_count, "updated_at": s.updated_at}
