"""A Google ADK agent whose sessions, state and memories are chat-memory's.

    make dev          # in another terminal: the local stack (it prints the functions' URL)
    CM_FUNCTIONS_URL=http://127.0.0.1:5001/demo-chat-memory/us-central1 \\
    CM_TOKEN=<a backend's ID token> CM_USER_ID=alice \\
    python examples/adk_agent.py "weather in Paris" "thanks"

The backend token acts for ``CM_USER_ID`` (a product user id). The model is a small local one
of ADK's own kind (a ``BaseLlm``: no key, no network) that calls the ``get_weather`` tool when
asked about the weather; put yours in its place (``model="gemini-2.5-flash"``). At the end the
session is added to memory (the product ends it and makes its digest). Needs
`pip install "./clients/python[adk]"`.
"""

from __future__ import annotations

import asyncio
import os
import sys
import uuid
from collections.abc import AsyncGenerator
from typing import Any

from chat_memory_client import AsyncChatMemoryClient
from chat_memory_client.adk import ChatMemoryMemoryService, ChatMemorySessionService
from google.adk.agents import LlmAgent
from google.adk.models.base_llm import BaseLlm
from google.adk.models.llm_request import LlmRequest
from google.adk.models.llm_response import LlmResponse
from google.adk.runners import Runner
from google.adk.tools.tool_context import ToolContext
from google.genai import types


class LocalModel(BaseLlm):
    """Calls get_weather for "weather in <city>", reports a tool's answer, else counts the turns."""

    model: str = "local-example"

    async def generate_content_async(
        self, llm_request: LlmRequest, stream: bool = False
    ) -> AsyncGenerator[LlmResponse, None]:
        contents = llm_request.contents or []
        parts = (contents[-1].parts or []) if contents else []
        answered = next((p.function_response for p in parts if p.function_response), None)
        said = " ".join(p.text for p in parts if p.text)
        if answered is not None:
            text = f"It is {(answered.response or {}).get('sky')} in {(answered.response or {}).get('city')}."
        elif said.startswith("weather in "):
            call = types.FunctionCall(name="get_weather", args={"city": said.removeprefix("weather in ")})
            yield LlmResponse(content=types.Content(role="model", parts=[types.Part(function_call=call)]))
            return
        else:
            users = sum(1 for c in contents if c.role == "user" and any(p.text for p in c.parts or []))
            text = f"You said {said!r}; that is {users} things you told me."
        yield LlmResponse(content=types.Content(role="model", parts=[types.Part(text=text)]))


def get_weather(city: str, tool_context: ToolContext) -> dict[str, Any]:
    """The weather in a city (and the user's last city, kept in user-scope state)."""
    tool_context.state["user:last_city"] = city
    return {"city": city, "sky": "clear"}


async def main(questions: list[str]) -> int:
    url = os.environ.get("CM_FUNCTIONS_URL", "http://127.0.0.1:5001/demo-chat-memory/us-central1")
    user = os.environ.get("CM_USER_ID", "example-user")
    async with AsyncChatMemoryClient(url, os.environ.get("CM_TOKEN") or None) as client:
        sessions = ChatMemorySessionService(client=client)
        memory = ChatMemoryMemoryService(client=client)
        agent = LlmAgent(name="helper", model=LocalModel(), instruction="Help.", tools=[get_weather])
        runner = Runner(app_name="adk-example", agent=agent, session_service=sessions, memory_service=memory)
        session = await sessions.create_session(app_name="adk-example", user_id=user, session_id=uuid.uuid4().hex)
        for q in questions:
            message = types.Content(role="user", parts=[types.Part(text=q)])
            async for event in runner.run_async(user_id=user, session_id=session.id, new_message=message):
                if event.is_final_response() and event.content and event.content.parts:
                    print(f"user: {q}\nassistant: {event.content.parts[0].text}")
        got = await sessions.get_session(app_name="adk-example", user_id=user, session_id=session.id)
        assert got is not None
        print(f"last city: {got.state.get('user:last_city')}")
        await memory.add_session_to_memory(got)
        print(f"session {session.id}: {len(got.events)} events kept, ended into memory")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv[1:] or ["weather in Paris", "thanks"])))
