"""The OpenAI Agents adapter (chat_memory_client.openai_agents.ChatMemorySession) driven by the
SDK's own Runner over a small local model of the SDK's kind (an ``agents.models.interface.Model``
answering from the input it is given: no network), against the emulated functions: several
turns, one calling a function tool (function_call and function_call_output items round-trip
whole), a retry stored once, pop_item and clear_session, two writers agreeing on one session, a
second process reading it, bad input refused with nothing of the turn written."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from agents import Agent, Runner, function_tool, set_tracing_disabled
from agents.items import ModelResponse, TResponseInputItem
from agents.models.interface import Model
from agents.usage import Usage
from chat_memory_client import AsyncChatMemoryClient, InvalidArgument, NotFound, TransportError
from chat_memory_client.openai_agents import ChatMemorySession
from openai.types.responses import ResponseFunctionToolCall, ResponseOutputMessage, ResponseOutputText

from tests.adapters.aio import in_second_process, on_own_loop, run_example
from tests.clients import Api

ROOT = Path(__file__).resolve().parents[2]
APP = "oa-test"
T = TypeVar("T")
set_tracing_disabled(True)  # no trace export (it would want an OpenAI key and the network)


def run(make: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a coroutine on a loop of its own thread (Playwright's loop holds this one)."""
    return on_own_loop(make())


def _text(item: Any) -> str:
    content = item.get("content") if isinstance(item, dict) else None
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict))
    return ""


class LocalModel(Model):
    """Answers from its input: after a tool's output, with the output; asked about the weather
    with tools at hand, with a call of the first tool; else with the last user text and how many
    items came before it."""

    async def get_response(
        self,
        system_instructions: str | None,
        input: str | list[TResponseInputItem],
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
        items: list[Any] = [{"role": "user", "content": input}] if isinstance(input, str) else list(input)
        last = items[-1]
        out: Any
        if last.get("type") == "function_call_output":
            out = self._message(f"the tool said {last['output']}")
        else:
            said = _text(last)
            if "weather" in said and tools:
                city = said.rsplit(" ", 1)[-1].strip("?")
                out = ResponseFunctionToolCall(
                    type="function_call",
                    id=f"fc_{uuid.uuid4().hex}",
                    call_id=f"call_{uuid.uuid4().hex}",
                    name=tools[0].name,
                    arguments=json.dumps({"city": city}),
                    status="completed",
                )
            else:
                out = self._message(f"heard {said!r} after {len(items) - 1} items")
        return ModelResponse(output=[out], usage=Usage(), response_id=None)

    @staticmethod
    def _message(text: str) -> ResponseOutputMessage:
        return ResponseOutputMessage(
            type="message",
            id=f"msg_{uuid.uuid4().hex}",
            role="assistant",
            status="completed",
            content=[ResponseOutputText(type="output_text", text=text, annotations=[])],
        )

    def stream_response(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError("the local model does not stream")


@function_tool
def get_weather(city: str) -> str:
    """The weather in a city."""
    return f"sunny in {city}"


def agent() -> Agent[Any]:
    return Agent(name="assistant", instructions="Be brief.", model=LocalModel(), tools=[get_weather])


def kinds(items: list[Any]) -> list[str]:
    return [str(i.get("type") or "message") + (f":{i['role']}" if "role" in i else "") for i in items]


class DropBeforeSending(httpx.AsyncHTTPTransport):
    """A real transport that refuses to send the ``nth`` append_message (a connection that
    could not be made): what came before it reached the functions."""

    def __init__(self, nth: int) -> None:
        super().__init__()
        self.nth = nth
        self.appends = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/append_message"):
            self.appends += 1
            if self.appends == self.nth:
                raise httpx.ConnectError("no connection", request=request)
        return await super().handle_async_request(request)


def test_runner_turns_with_a_tool_call_round_trip_through_a_session(api: Api):
    user = api.new_user(backend=True)  # the assistant's items are written by a backend identity
    name = f"conv-{uuid.uuid4().hex[:8]}"

    async def scenario() -> dict[str, Any]:
        async with AsyncChatMemoryClient(api.base_url, user.token) as client:
            session = ChatMemorySession(name, client=client, app=APP)
            assert await session.get_items() == []  # a name never written: nothing, nothing created
            assert await session.product_session_id() is None
            answers = []
            for q in ("hello", "what is the weather in Lisbon?", "thanks"):
                result = await Runner.run(agent(), q, session=session)
                answers.append(result.final_output)
            items = await session.get_items()
            # a second object (no cache) on the same name reads the same items, whole
            again = await ChatMemorySession(name, client=client, app=APP).get_items()
            sid = await session.product_session_id()
            assert sid is not None
            history = (await client.get_history(sid, limit=100))["messages"]
            state = (await client.get_state("user", APP))["state"]
            return {"answers": answers, "items": items, "again": again, "sid": sid, "history": history, "state": state}

    got = run(scenario)
    assert got["answers"] == [
        "heard 'hello' after 0 items",
        "the tool said sunny in Lisbon",
        "heard 'thanks' after 6 items",
    ]
    items = got["items"]
    assert kinds(items) == [
        "message:user",
        "message:assistant",
        "message:user",
        "function_call",
        "function_call_output",
        "message:assistant",
        "message:user",
        "message:assistant",
    ]
    call, output = items[3], items[4]
    assert call["name"] == "get_weather" and json.loads(call["arguments"]) == {"city": "Lisbon"}
    assert output["call_id"] == call["call_id"] and output["output"] == "sunny in Lisbon"
    assert got["again"] == items
    assert got["state"][f"openai-agents:session:{name}"] == got["sid"]
    # each item one product message: its item whole, its role and text
    history = got["history"]
    assert [m["item"] for m in history] == items
    assert [m["role"] for m in history] == ["user", "assistant", "user", "assistant", "assistant", "assistant"] + [
        "user",
        "assistant",
    ]
    assert [m["content"] for m in history][:4] == ["hello", "heard 'hello' after 0 items", items[2]["content"], ""]

    # a second process, its own client, reads the same session in order
    code = (
        "import asyncio, json, sys\n"
        "from chat_memory_client import AsyncChatMemoryClient\n"
        "from chat_memory_client.openai_agents import ChatMemorySession\n"
        "async def main():\n"
        "    async with AsyncChatMemoryClient(sys.argv[1], sys.argv[2]) as c:\n"
        "        s = ChatMemorySession(sys.argv[3], client=c, app=sys.argv[4])\n"
        "        print(json.dumps({'all': await s.get_items(), 'last2': await s.get_items(limit=2)}))\n"
        "asyncio.run(main())\n"
    )
    seen = in_second_process(code, api.base_url, user.token, name, APP)
    assert seen["all"] == items and seen["last2"] == items[-2:]


def test_a_retry_is_stored_once_and_half_a_batch_is_never_seen(api: Api):
    user = api.new_user(backend=True)
    name = f"retry-{uuid.uuid4().hex[:8]}"
    batch: list[Any] = [  # items of every kind, whole
        {"role": "user", "content": "one"},
        {"role": "developer", "content": [{"type": "input_text", "text": "be brief"}]},
        {"type": "reasoning", "id": "rs_1", "summary": [{"type": "summary_text", "text": "think"}]},
        {"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}", "id": "fc_1"},
        {"type": "function_call_output", "call_id": "c1", "output": "three", "extra": {"deep": [1, [2.5, None]]}},
    ]

    async def scenario() -> dict[str, Any]:
        # the third append is never sent (no retries): the call raises with two of five stored
        drop = DropBeforeSending(3)
        async with AsyncChatMemoryClient(api.base_url, user.token, retries=0, transport=drop) as client:
            session = ChatMemorySession(name, client=client, app=APP)
            with pytest.raises(TransportError):
                await session.add_items(batch)
            sid = await session.product_session_id()
            assert sid is not None
            stored_half = len((await client.get_history(sid))["messages"])
            seen_half = await session.get_items()
            await session.add_items(batch)  # the caller's retry: the same items, the same batch
            await session.add_items([{"role": "user", "content": "one"}])  # a new call: a new item
            items = await session.get_items()
            history = (await client.get_history(sid))["messages"]
        return {"stored_half": stored_half, "seen_half": seen_half, "items": items, "history": history}

    got = run(scenario)
    assert got["stored_half"] == 2 and got["seen_half"] == []  # stored, not shown: half a turn
    assert got["items"] == [*batch, {"role": "user", "content": "one"}]
    history = got["history"]  # the retried batch's first two were not stored again
    assert [(m["role"], m["content"]) for m in history] == [
        ("user", "one"),
        ("system", "be brief"),
        ("assistant", ""),
        ("assistant", ""),
        ("assistant", ""),
        ("user", "one"),
    ]


class Gate(httpx.AsyncHTTPTransport):
    """A real transport that sets ``announce[call]`` when it sends ``call`` ("POST
    create_session") and holds ``call`` until ``wait_for[call]`` is set: an order of two
    writers' requests, awaited, not slept for."""

    def __init__(self, *, announce: dict[str, asyncio.Event], wait_for: dict[str, asyncio.Event]) -> None:
        super().__init__()
        self.announce, self.wait_for = announce, wait_for
        self.sent: list[str] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        call = f"{request.method} {request.url.path.rsplit('/', 1)[-1]}"
        self.sent.append(call)
        if call in self.announce:
            self.announce[call].set()
        if call in self.wait_for:
            await self.wait_for[call].wait()
        return await super().handle_async_request(request)


def test_two_writers_agree_on_one_product_session(api: Api):
    """The second writer reads no mapping, makes a session of its own, and writes its mapping
    only after the first writer's: if_absent answers the first one's, and the second erases its
    own session and appends to the first's."""
    user = api.new_user(backend=True)
    name = f"race-{uuid.uuid4().hex[:8]}"

    async def scenario() -> dict[str, Any]:
        second_read, first_done = asyncio.Event(), asyncio.Event()
        g1 = Gate(announce={}, wait_for={"POST update_state": second_read})
        g2 = Gate(announce={"POST create_session": second_read}, wait_for={"POST update_state": first_done})
        async with (
            AsyncChatMemoryClient(api.base_url, user.token, transport=g1) as c1,
            AsyncChatMemoryClient(api.base_url, user.token, transport=g2) as c2,
        ):
            s1 = ChatMemorySession(name, client=c1, app=APP)
            s2 = ChatMemorySession(name, client=c2, app=APP)

            async def first() -> None:
                await s1.add_items([{"role": "user", "content": "from one"}])
                first_done.set()

            await asyncio.gather(first(), s2.add_items([{"role": "user", "content": "from two"}]))
            sessions = (await c1.list_sessions(limit=50))["items"]
            return {
                "sids": (await s1.product_session_id(), await s2.product_session_id()),
                "second_sent": g2.sent,
                "items": await ChatMemorySession(name, client=c1, app=APP).get_items(),
                "sessions": [x["session_id"] for x in sessions],
            }

    got = run(scenario)
    sid1, sid2 = got["sids"]
    assert sid1 == sid2
    assert got["second_sent"][:4] == [
        "GET get_state",
        "POST create_session",
        "POST update_state",
        "POST delete_session",
    ]
    assert [i["content"] for i in got["items"]] == ["from one", "from two"]
    assert got["sessions"] == [sid1]  # the loser's session erased: one session under the name


def test_pop_item_and_clear_session(api: Api):
    user = api.new_user(backend=True)
    name = f"pop-{uuid.uuid4().hex[:8]}"

    async def scenario() -> dict[str, Any]:
        async with AsyncChatMemoryClient(api.base_url, user.token) as client:
            session = ChatMemorySession(name, client=client, app=APP)
            await Runner.run(agent(), "first", session=session)
            await Runner.run(agent(), "second", session=session)
            popped = [await session.pop_item(), await session.pop_item()]
            after_pop = await session.get_items()
            other = await ChatMemorySession(name, client=client, app=APP).get_items()
            # the next turn sees the history without what was popped
            third = (await Runner.run(agent(), "third", session=session)).final_output
            old = await session.product_session_id()
            assert old is not None
            await session.clear_session()
            cleared = await session.get_items()
            popped_empty = await session.pop_item()
            with pytest.raises(NotFound):
                await client.get_history(old)  # the product session is erased
            state = (await client.get_state("user", APP))["state"]
            await session.add_items([{"role": "user", "content": "anew"}])
            new = await session.product_session_id()
            return {
                "popped": popped,
                "after_pop": after_pop,
                "other": other,
                "third": third,
                "cleared": cleared,
                "popped_empty": popped_empty,
                "state": state,
                "old": old,
                "new": new,
                "final": await session.get_items(),
            }

    got = run(scenario)
    assert [_text(p) for p in got["popped"]] == ["heard 'second' after 2 items", "second"]
    assert [_text(i) for i in got["after_pop"]] == ["first", "heard 'first' after 0 items"]
    assert got["other"] == got["after_pop"]
    assert got["third"] == "heard 'third' after 2 items"
    assert got["cleared"] == [] and got["popped_empty"] is None
    assert f"openai-agents:session:{name}" not in got["state"]
    assert got["new"] not in (None, got["old"])
    assert got["final"] == [{"role": "user", "content": "anew"}]


def test_bad_input_is_refused_whole_with_a_typed_error(api: Api):
    user = api.new_user(backend=True)
    name = f"bad-{uuid.uuid4().hex[:8]}"
    good = {"role": "user", "content": "fine"}

    async def scenario() -> dict[str, Any]:
        async with AsyncChatMemoryClient(api.base_url, user.token) as client:
            session = ChatMemorySession(name, client=client, app=APP)
            await Runner.run(agent(), "hello", session=session)
            before = await session.get_items()
            sid = await session.product_session_id()
            assert sid is not None
            errors = []
            bad_batches: list[Any] = [
                [good, "not an object"],
                [good, {"role": "user", "content": float("nan")}],
                [good, {"type": "x", "blob": object()}],
                [good, {"role": "user", "content": "\ud800"}],  # a lone surrogate: not Unicode
                [good, {"type": "function_call_output", "call_id": "c", "output": "x" * 40_000}],
            ]
            for bad in bad_batches:
                with pytest.raises(InvalidArgument) as refused:
                    await session.add_items(bad)
                errors.append((refused.value.status, refused.value.field))
            # through the Runner: a turn whose input cannot be stored runs nothing, writes nothing
            with pytest.raises(InvalidArgument) as refused:
                await Runner.run(agent(), "y" * 40_000, session=session)
            errors.append((refused.value.status, refused.value.field))
            after = await session.get_items()
            count = len((await client.get_history(sid))["messages"])
        return {"errors": errors, "before": before, "after": after, "count": count}

    got = run(scenario)
    assert got["errors"] == [(0, "item")] * 6
    assert got["after"] == got["before"] and got["count"] == 2  # nothing of any bad turn


def test_the_openai_agents_example_runs_against_the_stack(api: Api):
    user = api.new_user(backend=True)
    out = run_example("openai_agents_chat.py", api.base_url, user.token, "my cat is Bartholomew", "weather in Porto")
    assert "assistant: Noted." in out
    assert "assistant: It is sunny in Porto (you first told me: 'my cat is Bartholomew')" in out
    assert out.strip().endswith("6 items kept")
