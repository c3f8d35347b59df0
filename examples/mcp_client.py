"""An MCP client (the official `mcp` SDK) using chat-memory's `mcp` function as its memory.

    make dev          # in another terminal: the local stack (it prints the functions' URL)
    CM_FUNCTIONS_URL=http://127.0.0.1:5001/demo-chat-memory/us-central1 \\
    CM_TOKEN=<a Firebase ID token, or nothing with make dev's AUTH_DISABLED> \\
    python examples/mcp_client.py "my parcel to Lisbon is late"

Lists the tools, then holds a short conversation through them: create_session,
append_message (retried once: stored once), get_context, end_session, search_memories.
An assistant such as Claude Desktop or an ADK MCPToolset connects the same way: the URL
`<functions URL>/mcp` and the bearer token. Needs `pip install mcp`.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from typing import Any

import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client


async def main(said: list[str]) -> int:
    url = os.environ.get("CM_FUNCTIONS_URL", "http://127.0.0.1:5001/demo-chat-memory/us-central1")
    token = os.environ.get("CM_TOKEN")
    http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"} if token else {}, timeout=40.0)
    async with Client(streamable_http_client(f"{url}/mcp", http_client=http)) as client:
        tools = sorted(t.name for t in (await client.list_tools()).tools)
        print("tools:", ", ".join(tools))

        async def call(name: str, args: dict[str, Any]) -> dict[str, Any]:
            result = await client.call_tool(name, args)
            if result.is_error:
                raise SystemExit(f"{name} failed: {result.content[0].text}")
            return dict(result.structured_content or json.loads(result.content[0].text))

        sid = (await call("create_session", {}))["session_id"]
        for n, text in enumerate(said):
            turn = {"session_id": sid, "role": "user", "content": text, "client_message_id": f"turn-{n}"}
            await call("append_message", turn)
            stored = await call("append_message", turn)  # a retry after a lost answer: stored once
            print(f"stored {text!r}: {stored['message_count']} message(s) in the session")
        context = await call("get_context", {"session_id": sid})
        print("context for the model:\n" + context["formatted_context"])
        ended = await call("end_session", {"session_id": sid})
        print(f"session {sid} ended with {ended['message_count']} messages")
        found = await call("search_memories", {"q": said[0]})
        print(f"memories matching {said[0]!r}: {len(found['items'])}")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv[1:] or ["my parcel to Lisbon is late"])))
