"""The ``mcp`` function driven by the official MCP Python SDK's own client (``mcp.Client`` over
its Streamable HTTP transport) against the emulated functions: the handshake, the tools, a
retried append stored once, a tool's error as an error result, a backend acting for a user,
and the bearer's rules."""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from tests.adapters.aio import on_own_loop, run_example
from tests.clients import Api, User


def run_async(coro: Any) -> Any:
    return on_own_loop(coro)


def connect(api: Api, user: User | None) -> Client:
    headers = user.headers if user else {}
    http = httpx2.AsyncClient(headers=headers, timeout=40.0)
    return Client(streamable_http_client(api.url("mcp"), http_client=http))


def text_of(result: Any) -> dict[str, Any]:
    return json.loads(result.content[0].text)


def test_an_mcp_client_holds_a_conversation_through_the_tools(api: Api):
    user = api.new_user(backend=False)

    async def run() -> dict[str, Any]:
        async with connect(api, user) as client:
            names = {t.name for t in (await client.list_tools()).tools}
            assert {
                "get_context",
                "append_message",
                "search_memories",
                "end_session",
                "create_session",
                "list_sessions",
            } <= names
            created = await client.call_tool("create_session", {})
            assert not created.is_error, created
            sid = created.structured_content["session_id"]
            turn = {
                "session_id": sid,
                "role": "user",
                "content": "my parcel to Lisbon is late",
                "client_message_id": "m1",
            }
            first = await client.call_tool("append_message", turn)
            again = await client.call_tool("append_message", turn)  # a retry: stored once
            assert not first.is_error and not again.is_error, (first, again)
            assert again.structured_content["message_count"] == first.structured_content["message_count"] == 1
            ctx = await client.call_tool("get_context", {"session_id": sid})
            assert not ctx.is_error and "Lisbon" in ctx.structured_content["formatted_context"]
            assert text_of(ctx)["session_id"] == sid
            # a tool's failure is an error result naming the product's code, never a half-written turn
            bad = await client.call_tool("append_message", {"session_id": sid, "role": "assistant", "content": "x"})
            assert bad.is_error and bad.structured_content["error"]["code"] == "permission_denied"
            odd = await client.call_tool(
                "append_message", {"session_id": sid, "role": "user", "content": "x", "bogus": 1}
            )
            assert odd.is_error and odd.structured_content["error"]["details"]["field"] == "bogus"
            found = await client.call_tool("search_memories", {"q": "Lisbon"})
            assert not found.is_error and found.structured_content["items"] == []  # a first-time user
            ended = await client.call_tool("end_session", {"session_id": sid})
            assert not ended.is_error and ended.structured_content["status"] == "ended"
            return {"sid": sid}

    sid = run_async(run())["sid"]
    history = api.get("get_history", {"session_id": sid}, user)
    assert [m["content"] for m in history.body["messages"]] == ["my parcel to Lisbon is late"]


def test_a_backend_acts_for_a_user_through_the_tools_and_a_user_cannot(api: Api):
    backend, alice, bob = api.new_user(backend=True), api.new_user(backend=False), api.new_user(backend=False)

    async def as_backend() -> str:
        async with connect(api, backend) as client:
            created = await client.call_tool("create_session", {"user_id": alice.uid})
            sid = created.structured_content["session_id"]
            for role, content in (("user", "hello"), ("assistant", "hi Alice")):
                r = await client.call_tool(
                    "append_message",
                    {
                        "user_id": alice.uid,
                        "session_id": sid,
                        "role": role,
                        "content": content,
                        "client_message_id": role,
                    },
                )
                assert not r.is_error, r
            return str(sid)

    sid = run_async(as_backend())
    assert [m["role"] for m in api.get("get_history", {"session_id": sid}, alice).body["messages"]] == [
        "user",
        "assistant",
    ]

    async def as_bob() -> None:
        async with connect(api, bob) as client:
            named = await client.call_tool("get_context", {"session_id": sid, "user_id": alice.uid})
            assert named.is_error and named.structured_content["error"]["code"] == "permission_denied"
            direct = await client.call_tool("get_context", {"session_id": sid})
            assert direct.is_error and direct.structured_content["error"]["code"] == "permission_denied"
            assert "hi Alice" not in json.dumps(direct.structured_content)

    run_async(as_bob())


def test_the_transport_rules(api: Api):
    # no bearer: 401 before any JSON-RPC; a GET (a server stream) is 405; a notification is 202
    init = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"protocolVersion": "2025-06-18"}}
    assert api.post("mcp", init).status == 401
    user = api.new_user(backend=False)
    assert api.get("mcp", {}, user).status == 405
    r = api.post("mcp", init, user)
    assert r.status == 200 and r.body["result"]["protocolVersion"] == "2025-06-18"
    assert api.post("mcp", {"jsonrpc": "2.0", "method": "notifications/initialized"}, user).status == 202
    unknown = api.post("mcp", {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "drop_all"}}, user)
    assert unknown.status == 200 and unknown.body["error"]["code"] == -32602
    nope = api.post("mcp", {"jsonrpc": "2.0", "id": 3, "method": "resources/list"}, user)
    assert nope.body["error"]["code"] == -32601
    junk = api.post("mcp", {"id": 4, "method": 7}, user)
    assert junk.body["error"]["code"] == -32600
    for bad_id in ({}, [1], 1.5, True, "x" * 300):  # never echoed back
        r = api.post("mcp", {"jsonrpc": "2.0", "id": bad_id, "method": "ping"}, user)
        assert r.status == 200 and r.body["id"] is None and r.body["error"]["code"] == -32600, (bad_id, r.body)
    big = api.post("mcp", {"jsonrpc": "2.0", "id": str(uuid.uuid4()), "method": "tools/call",
                           "params": {"name": "get_context", "arguments": {"session_id": ["x"]}}}, user)  # fmt: skip
    assert big.status == 200 and big.body["result"]["isError"] is True


def test_the_mcp_client_example_runs_against_the_stack(api: Api):
    user = api.new_user(backend=False)
    args = ("my parcel to Lisbon is late", "it was due Monday")
    out = run_example("mcp_client.py", api.base_url, user.token, *args)
    assert "append_message" in out.splitlines()[0] and "search_memories" in out.splitlines()[0]
    assert "stored 'it was due Monday': 2 message(s) in the session" in out  # each retry stored once
    assert "User: my parcel to Lisbon is late" in out
    assert "ended with 2 messages" in out
