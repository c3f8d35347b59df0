"""The ``mcp`` function: a remote MCP server (Streamable HTTP, stateless, JSON answers).

Functions Framework serves WSGI and the MCP SDK's server is ASGI (Starlette); a bridge
(a2wsgi) would bring Starlette, anyio and the SDK's session manager into every instance for
five methods of JSON-RPC. They are written here instead, on the edge's own request handling
(``shared.edge.http.handle``: auth, limits, CORS, the log line) and its handlers: each tool is
one of the HTTP functions, called with the tool's arguments, so it has the same validation,
ownership and errors. Tested with the official ``mcp`` SDK's client (``tests/e2e/test_mcp.py``).

What the server speaks (MCP 2025-03-26 to 2025-11-25, the initialize handshake):
``initialize``, ``notifications/initialized`` (and any notification: 202, no body), ``ping``,
``tools/list`` and ``tools/call``. No session (no ``Mcp-Session-Id``): every request stands
alone, as Cloud Functions instances do; GET (a server-to-client stream) is 405, as the
transport allows. A tool's failure is a result with ``isError`` (the product's error code and
message), a protocol error (an unknown method or tool) a JSON-RPC error.

The bearer is the caller's Firebase ID token, or a backend's (the ``chat_backend`` claim, or a
listed service account's Google ID token); a backend acts for a user with ``user_id`` in a
tool's arguments, under the HTTP functions' rules (``shared.edge.acting``).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from shared.edge import api, ratelimit
from shared.edge.acting import acting_for
from shared.edge.http import Call, Reply, Text
from shared.errors import ChatMemoryError, InvalidArgument

PROTOCOL_VERSIONS = ("2025-11-25", "2025-06-18", "2025-03-26")  # newest first
SERVER_INFO = {"name": "chat-memory", "version": "1.0.0"}
_INVALID_REQUEST, _METHOD_NOT_FOUND, _INVALID_PARAMS = -32600, -32601, -32602

_SESSION_ID = {"type": "string", "pattern": "^[0-9a-f]{32}$", "description": "The session's id"}
_USER_ID = {
    "type": "string",
    "description": "A backend acting for this user (backend identities only; an end user omits it)",
}


@dataclass(frozen=True)
class Tool:
    handler: Callable[[Call], Reply]
    method: str  # how the HTTP function takes its input: GET (query strings) or POST (JSON)
    description: str
    properties: dict[str, Any]
    required: tuple[str, ...]

    def schema(self) -> dict[str, Any]:
        return {
            "type": "object",
            "properties": self.properties | {"user_id": _USER_ID},
            "required": list(self.required),
            "additionalProperties": False,
        }


TOOLS: dict[str, Tool] = {
    "get_context": Tool(
        api.get_context,
        "GET",
        "The session's recent messages, rolling summary and recalled memories, formatted for an LLM "
        "prompt (formatted_context)",
        {"session_id": _SESSION_ID, "max_messages": {"type": "integer", "minimum": 1}},
        ("session_id",),
    ),
    "append_message": Tool(
        api.append_message,
        "POST",
        "Append a message to the session; a retry with the same client_message_id is stored once",
        {
            "session_id": _SESSION_ID,
            "role": {"type": "string", "enum": ["user", "assistant", "system"]},
            "content": {"type": "string", "minLength": 1},
            "metadata": {"type": "object"},
            "client_message_id": {"type": "string", "pattern": "^[A-Za-z0-9_.:-]{1,128}$"},
        },
        ("session_id", "role", "content"),
    ),
    "search_memories": Tool(
        api.search_memories,
        "GET",
        "Search the user's memories of their past sessions, best first",
        {"q": {"type": "string", "minLength": 1}, "limit": {"type": "integer", "minimum": 1, "maximum": 50}},
        ("q",),
    ),
    "end_session": Tool(
        api.end_session,
        "POST",
        "End the session: its analytics are written and its memory made",
        {
            "session_id": _SESSION_ID,
            "reason": {"type": "string", "enum": ["completed", "user_left", "abandoned", "handoff", "error", "other"]},
            "agent_id": {"type": "string"},
        },
        ("session_id",),
    ),
    "list_sessions": Tool(
        api.list_sessions,
        "GET",
        "The user's sessions, oldest first (status, times, message count), a page at a time",
        {"limit": {"type": "integer", "minimum": 1, "maximum": 50}, "cursor": {"type": "string"}},
        (),
    ),
    "create_session": Tool(
        api.create_session,
        "POST",
        "Start a session (memory: false for one that leaves no memory)",
        {"memory": {"type": "boolean"}, "user_info": {"type": "object"}},
        (),
    ),
}


def mcp(call: Call) -> Reply:  # noqa: PLR0911 - one answer per JSON-RPC method
    """One JSON-RPC message of the Streamable HTTP transport (``http.handle`` has parsed it)."""
    msg = call.body
    rid = msg.get("id")
    if not _valid_id(rid):  # never echoed back: an object, a float, a megabyte of text
        return 200, _error(None, _INVALID_REQUEST, "id must be a string of at most 256 characters or an integer")
    if not isinstance(msg.get("method"), str) or msg.get("jsonrpc") != "2.0":
        return 200, _error(rid, _INVALID_REQUEST, "a JSON-RPC 2.0 request object is expected")
    if "id" not in msg:  # a notification (notifications/initialized, cancelled, ...): nothing to answer
        return 202, Text("", "text/plain")
    method, params = msg["method"], msg.get("params") or {}
    if not isinstance(params, dict):
        return 200, _error(rid, _INVALID_PARAMS, "params must be an object")
    if method == "initialize":
        asked = params.get("protocolVersion")
        version = asked if asked in PROTOCOL_VERSIONS else PROTOCOL_VERSIONS[0]
        return 200, _result(
            rid,
            {
                "protocolVersion": version,
                "capabilities": {"tools": {"listChanged": False}},
                "serverInfo": SERVER_INFO,
                "instructions": "chat-memory: the sessions and memories of the signed-in user (or, for a "
                "backend, of the user_id it names). Read get_context before answering; append each turn.",
            },
        )
    if method == "ping":
        return 200, _result(rid, {})
    if method == "tools/list":
        tools = [{"name": n, "description": t.description, "inputSchema": t.schema()} for n, t in TOOLS.items()]
        return 200, _result(rid, {"tools": tools})
    if method == "tools/call":
        return 200, _call_tool(call, rid, params)
    return 200, _error(rid, _METHOD_NOT_FOUND, f"method not found: {method[:100]}")


def _call_tool(call: Call, rid: Any, params: dict[str, Any]) -> dict[str, Any]:
    name, arguments = params.get("name"), params.get("arguments") or {}
    tool = TOOLS.get(name) if isinstance(name, str) else None
    if tool is None:
        return _error(rid, _INVALID_PARAMS, f"unknown tool: {str(name)[:100]}")
    if not isinstance(arguments, dict):
        return _error(rid, _INVALID_PARAMS, "arguments must be an object")
    try:
        args = dict(arguments)
        uid, actor = call.uid, call.actor
        if call.caller is not None:
            target = acting_for(call.caller, args, acts_for=True, method="POST")
            if target is not None:
                uid, actor = target, call.caller.service_account or call.caller.uid
                ratelimit.enforce(uid)
        if tool.method == "GET":
            inner = Call(uid=uid, body={}, args=_query(args), backend=call.backend, actor=actor)
        else:
            inner = Call(uid=uid, body=args, args={}, backend=call.backend, actor=actor)
        _, payload = tool.handler(inner)
    except ChatMemoryError as exc:
        error: dict[str, Any] = {"code": exc.code, "message": exc.message}
        if exc.details:
            error["details"] = exc.details
        return _result(
            rid,
            {
                "content": [{"type": "text", "text": f"{exc.code}: {exc.message}"}],
                "structuredContent": {"error": error},
                "isError": True,
            },
        )
    if actor is not None:
        call.log_fields["acting_backend"] = actor
        call.log_fields["acting_for"] = uid
    body = payload if isinstance(payload, dict) else {"text": payload.body}
    return _result(
        rid,
        {
            "content": [{"type": "text", "text": json.dumps(body, ensure_ascii=False)}],
            "structuredContent": body,
            "isError": False,
        },
    )


def _valid_id(rid: object) -> bool:
    if rid is None or (isinstance(rid, str) and len(rid) <= 256):  # noqa: PLR2004 - an id, not a payload
        return True
    return isinstance(rid, int) and not isinstance(rid, bool) and abs(rid) < 2**63


def _query(args: dict[str, Any]) -> dict[str, str]:
    """A GET function's arguments as its query strings (what int_param and the rest parse)."""
    out: dict[str, str] = {}
    for k, v in args.items():
        if isinstance(v, bool) or not isinstance(v, str | int):
            raise InvalidArgument(f"{k} must be a string or an integer", details={"field": str(k)[:64]})
        out[str(k)] = str(v)
    return out


def _result(rid: Any, result: dict[str, Any]) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": rid, "result": result}


def _error(rid: Any, code: int, message: str) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": rid, "error": {"code": code, "message": message}}
