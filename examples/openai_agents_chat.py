"""An OpenAI Agents SDK conversation whose session is kept in chat-memory.

    make dev          # in another terminal: the local stack (it prints the functions' URL)
    CM_FUNCTIONS_URL=http://127.0.0.1:5001/demo-chat-memory/us-central1 \\
    CM_TOKEN=<a backend's ID token, or nothing with make dev's AUTH_DISABLED> \\
    python examples/openai_agents_chat.py "my cat is Bartholomew" "weather in Porto"

The model is a small local one of the SDK's own kind (an ``agents.models.interface.Model``: no
key, no network) that calls the ``get_weather`` tool when asked about the weather; put yours
(``model="gpt-..."``) in its place. Needs `pip install "./clients/python[openai-agents]"`.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import uuid
from typing import Any

from agents import Agent, Runner, function_tool, set_tracing_disabled
from agents.items import ModelResponse
from agents.models.interface import Model
from agents.usage import Usage
from chat_memory_client import AsyncChatMemoryClient
from chat_memory_client.openai_agents import ChatMemorySession
from openai.types.responses import ResponseFunctionToolCall, ResponseOutputMessage, ResponseOutputText
from typing_extensions import override


def _said(item: Any) -> str:
    content = item.get("content")
    if isinstance(content, str):
        return content
    return "".join(p.get("text", "") for p in content or [] if isinstance(p, dict))


class LocalModel(Model):
    """Answers from the conversation it is given: a tool call for the weather, then the tool's
    answer with the first thing the user said; "Noted." otherwise."""

    @override
    async def get_response(
        self,
        system_instructions: str | None,
        input: str | list[Any],
        model_settings: Any,
        tools: list[Any],
        output_schema: Any,
        handoffs: list[Any],
        tracing: Any,
        *,
        previous_response_id: str | None = None,
        conversation_id: str | None = None,
        prompt: Any = None,
    ) -> ModelResponse:
        items = [{"role": "user", "content": input}] if isinstance(input, str) else list(input)
        said = [_said(i) for i in items if i.get("role") == "user"]
        last = items[-1]
        out: Any
        if last.get("type") == "function_call_output":
            text = f"It is {last['output']} (you first told me: {said[0]!r})"
            out = self._message(text)
        elif "weather" in said[-1] and tools:
            args = json.dumps({"city": said[-1].rsplit(" ", 1)[-1]})
            out = ResponseFunctionToolCall(
                type="function_call", id=f"fc_{uuid.uuid4().hex}", call_id=f"call_{uuid.uuid4().hex}",
                name=tools[0].name, arguments=args, status="completed",
            )  # fmt: skip
        else:
            out = self._message("Noted.")
        return ModelResponse(output=[out], usage=Usage(), response_id=None)

    @staticmethod
    def _message(text: str) -> ResponseOutputMessage:
        part = ResponseOutputText(type="output_text", text=text, annotations=[])
        return ResponseOutputMessage(
            type="message", id=f"msg_{uuid.uuid4().hex}", role="assistant", status="completed", content=[part]
        )

    @override
    def stream_response(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError("the local model does not stream")


@function_tool
def get_weather(city: str) -> str:
    """The weather in a city."""
    return f"sunny in {city}"


async def main(questions: list[str]) -> int:
    set_tracing_disabled(True)  # the SDK's trace export wants an OpenAI key
    url = os.environ.get("CM_FUNCTIONS_URL", "http://127.0.0.1:5001/demo-chat-memory/us-central1")
    agent = Agent(name="assistant", instructions="Be brief.", model=LocalModel(), tools=[get_weather])
    async with AsyncChatMemoryClient(url, os.environ.get("CM_TOKEN") or None) as client:
        session = ChatMemorySession(f"example-{uuid.uuid4().hex[:8]}", client=client, app="openai-agents-example")
        for q in questions:
            result = await Runner.run(agent, q, session=session)
            print(f"user: {q}\nassistant: {result.final_output}")
        items = await session.get_items()
        print(f"session {session.session_id} -> {await session.product_session_id()}: {len(items)} items kept")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv[1:] or ["my cat is Bartholomew", "weather in Porto"])))
