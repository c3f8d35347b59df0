"""The ADK adapter (chat_memory_client.adk) driven by ADK's own Runner and LlmAgent over a small
local model of ADK's kind (a BaseLlm answering from what it is given: no network), against the
emulated functions: several turns with a function-call turn (its function_call and
function_response events come back as equal Events), the same conversation on ADK's
InMemorySessionService as the reference, a retry of append_event stored once, a second
process reading the session, bad input refused with a typed error and nothing half-written,
the memory service, and examples/adk_agent.py."""

from __future__ import annotations

import asyncio
import json
import os
import uuid
from collections.abc import AsyncGenerator
from pathlib import Path
from typing import Any

import pytest
from chat_memory_client import AsyncChatMemoryClient, InvalidArgument
from chat_memory_client.adk import ChatMemoryMemoryService, ChatMemorySessionService
from google.adk.agents import LlmAgent
from google.adk.errors.already_exists_error import AlreadyExistsError
from google.adk.events.event import Event
from google.adk.events.event_actions import EventActions
from google.adk.models.base_llm import BaseLlm
from google.adk.models.llm_request import LlmRequest
from google.adk.models.llm_response import LlmResponse
from google.adk.runners import Runner
from google.adk.sessions import BaseSessionService, InMemorySessionService
from google.adk.tools.tool_context import ToolContext
from google.genai import types

from tests.adapters.aio import in_second_process, on_own_loop, run_example
from tests.clients import Api, Firestore

ROOT = Path(__file__).resolve().parents[2]
APP = "shop"
QUESTIONS = ["hello", "weather in Paris", "and now?"]


class LocalModel(BaseLlm):
    """Calls get_weather for "weather in <city>", reports a tool's answer, else echoes the last
    user text and how many contents it was given."""

    model: str = "local-test"

    async def generate_content_async(
        self, llm_request: LlmRequest, stream: bool = False
    ) -> AsyncGenerator[LlmResponse, None]:
        contents = llm_request.contents or []
        parts = (contents[-1].parts or []) if contents else []
        answered = next((p.function_response for p in parts if p.function_response), None)
        said = " ".join(p.text for p in parts if p.text)
        if answered is not None:
            text = f"the tool said {answered.response}"
        elif said.startswith("weather in "):
            call = types.FunctionCall(name="get_weather", args={"city": said.removeprefix("weather in ")})
            yield LlmResponse(content=types.Content(role="model", parts=[types.Part(function_call=call)]))
            return
        else:
            text = f"heard {said!r} after {len(contents) - 1} contents"
        yield LlmResponse(content=types.Content(role="model", parts=[types.Part(text=text)]))


def get_weather(city: str, tool_context: ToolContext) -> dict[str, Any]:
    """The weather in a city."""
    tool_context.state["user:last_city"] = city  # the user's, across sessions
    tool_context.state["app:lookups"] = 1  # the app's, across users
    tool_context.state["temp:scratch"] = "gone after the invocation"  # never stored
    tool_context.state["asked"] = city  # the session's own
    return {"city": city, "sky": "clear"}


def shape(events: list[Event]) -> list[tuple[str, str, Any, Any]]:
    out = []
    for e in events:
        parts = e.content.parts if e.content and e.content.parts else []
        text = " ".join(p.text for p in parts if p.text)
        call = next(((p.function_call.name, p.function_call.args) for p in parts if p.function_call), None)
        resp = next(
            ((p.function_response.name, p.function_response.response) for p in parts if p.function_response), None
        )
        out.append((e.author, text, call, resp))
    return out


async def converse(service: BaseSessionService, user: str, sid: str) -> tuple[list[str], list[Event]]:
    agent = LlmAgent(name="helper", model=LocalModel(), instruction="Answer briefly.", tools=[get_weather])
    runner = Runner(app_name=APP, agent=agent, session_service=service)
    await service.create_session(
        app_name=APP, user_id=user, session_id=sid, state={"topic": "weather", "user:tier": "gold"}
    )
    answers, yielded = [], []
    for q in QUESTIONS:
        message = types.Content(role="user", parts=[types.Part(text=q)])
        async for event in runner.run_async(user_id=user, session_id=sid, new_message=message):
            yielded.append(event)
            if event.is_final_response() and event.content and event.content.parts:
                answers.append(event.content.parts[0].text or "")
    return answers, yielded


async def sid_of(service: ChatMemorySessionService, user: str, name: str) -> str:
    if await service.get_session(app_name=APP, user_id=user, session_id=name) is None:
        await service.create_session(app_name=APP, user_id=user, session_id=name)
    sid = await service._store.resolve(APP, user, name)
    assert sid is not None
    return sid


def test_an_adk_runner_keeps_its_turns_state_and_tool_calls_in_chat_memory(api: Api):
    backend = api.new_user(backend=True)
    ns = f"adk{uuid.uuid4().hex[:10]}."
    user = "alice"

    async def run() -> dict[str, Any]:
        async with AsyncChatMemoryClient(api.base_url, backend.token) as client:
            ours = ChatMemorySessionService(client=client, namespace=ns)
            reference = InMemorySessionService()
            answers, yielded = await converse(ours, user, "conv-1")
            ref_answers, ref_yielded = await converse(reference, user, "conv-1")
            got = await ours.get_session(app_name=APP, user_id=user, session_id="conv-1")
            ref = await reference.get_session(app_name=APP, user_id=user, session_id="conv-1")
            assert got is not None and ref is not None
            # the model saw the same conversation, and the same events were kept, in order
            assert (
                answers
                == ref_answers
                == [
                    "heard 'hello' after 0 contents",
                    "the tool said {'city': 'Paris', 'sky': 'clear'}",
                    "heard 'and now?' after 6 contents",
                ]
            )
            assert shape(got.events) == shape(ref.events)
            assert shape(yielded) == shape(ref_yielded)
            assert len(got.events) == 8  # with the header, 9 messages: the 8 events fill the window
            # the agent's events (function_call and function_response among them) come back
            # equal to what the runner yielded (it does not yield the user's own)
            assert [e for e in got.events if e.author != "user"] == yielded
            assert [e.get_function_calls()[0].name for e in got.events if e.get_function_calls()] == ["get_weather"]
            # state scopes as ADK's own service keeps them; temp: never stored
            assert got.state == ref.state
            assert got.state == {
                "topic": "weather",
                "asked": "Paris",
                "user:tier": "gold",
                "user:last_city": "Paris",
                "app:lookups": 1,
            }
            assert await ours.get_user_state(app_name=APP, user_id=user) == {"tier": "gold", "last_city": "Paris"}
            # a caller-chosen id is taken once
            with pytest.raises(AlreadyExistsError):
                await ours.create_session(app_name=APP, user_id=user, session_id="conv-1")
            # another user of the app sees the app's state, not alice's
            bob = await ours.create_session(app_name=APP, user_id="bob")
            assert bob.state == {"app:lookups": 1}

            return {"events": [e.model_dump(mode="json") for e in got.events], "state": got.state}

    seen = on_own_loop(run())

    # a second process, its own (sync) client, reads the same session: the same events and state
    code = (
        "import asyncio, json, sys; from chat_memory_client import ChatMemoryClient; "
        "from chat_memory_client.adk import ChatMemorySessionService; "
        "s = ChatMemorySessionService(client=ChatMemoryClient(sys.argv[1], sys.argv[2]), namespace=sys.argv[3]); "
        "got = asyncio.run(s.get_session(app_name='shop', user_id='alice', session_id='conv-1')); "
        "print(json.dumps({'events': [e.model_dump(mode='json') for e in got.events], 'state': got.state}))"
    )
    second = in_second_process(code, api.base_url, backend.token, ns)
    assert second == json.loads(json.dumps(seen))


def test_a_retried_event_is_stored_once_and_bad_input_writes_nothing(api: Api):
    backend = api.new_user(backend=True)
    ns = f"adk{uuid.uuid4().hex[:10]}."
    user = "erin"

    async def run() -> None:
        async with AsyncChatMemoryClient(api.base_url, backend.token) as client:
            ours = ChatMemorySessionService(client=client, namespace=ns)
            # a retry of append_event (ADK calling again with the same event, the first
            # call's answer lost: the session in hand does not hold it) is stored once
            before = len((await client.get_history(await sid_of(ours, user, "conv-2"), user_id=ns + user))["messages"])
            first = await ours.get_session(app_name=APP, user_id=user, session_id="conv-2")
            again = await ours.get_session(app_name=APP, user_id=user, session_id="conv-2")
            assert first is not None and again is not None
            event = Event(
                invocation_id="inv-retry",
                author="user",
                content=types.Content(role="user", parts=[types.Part(text="only once")]),
                actions=EventActions(state_delta={"user:retried": True, "count": 1}),
            )
            await ours.append_event(first, event)
            await ours.append_event(again, event.model_copy(deep=True))
            await ours.append_event(first, event)  # the session in hand holds it: nothing sent
            after = await ours.get_session(app_name=APP, user_id=user, session_id="conv-2")
            assert after is not None
            history = (await client.get_history(await sid_of(ours, user, "conv-2"), user_id=ns + user))["messages"]
            assert len(history) == before + 1
            assert [e.id for e in after.events] == [event.id]
            assert after.state["count"] == 1 and after.state["user:retried"] is True

            # bad input: a typed error, nothing of the event written, the session unchanged
            huge = Event(
                invocation_id="inv-bad",
                author="user",
                content=types.Content(
                    role="user", parts=[types.Part.from_bytes(data=os.urandom(40_000), mime_type="image/png")]
                ),
                actions=EventActions(state_delta={"user:half": "written?", "app:half": 1, "mine": 2}),
            )
            with pytest.raises(InvalidArgument) as refused:
                await ours.append_event(after, huge)
            assert refused.value.field == "item"
            assert [e.id for e in after.events] == [event.id] and "mine" not in after.state
            still = await ours.get_session(app_name=APP, user_id=user, session_id="conv-2")
            assert still is not None and [e.id for e in still.events] == [event.id]
            assert "user:half" not in still.state and "app:half" not in still.state and "mine" not in still.state
            with pytest.raises(InvalidArgument) as refused:  # not a product user id
                await ours.create_session(app_name=APP, user_id="not a user id")
            assert refused.value.field == "user_id"

            # the product session erased behind the adapter's back (another client, the
            # user's erasure): the ADK session is gone, and its id can be created again
            await client.delete_session(await sid_of(ours, user, "conv-2"), user_id=ns + user)
            assert await ours.get_session(app_name=APP, user_id=user, session_id="conv-2") is None
            anew = await ours.create_session(app_name=APP, user_id=user, session_id="conv-2", state={"fresh": 1})
            assert anew.events == [] and anew.state == {"fresh": 1, "user:retried": True}
            got = await ours.get_session(app_name=APP, user_id=user, session_id="conv-2")
            assert got == anew
            # an id too long for a state key (ADK's ids are any string) is mapped by its digest
            long_id = ("conversation about " + "a very long topic " * 20).strip()  # ADK strips ids
            made = await ours.create_session(app_name=APP, user_id=user, session_id=long_id, state={"x": 1})
            assert await ours.get_session(app_name=APP, user_id=user, session_id=long_id) == made
            listed = await ours.list_sessions(app_name=APP, user_id=user)
            assert sorted(s.id for s in listed.sessions) == sorted(["conv-2", long_id])
            with pytest.raises(AlreadyExistsError):
                await ours.create_session(app_name=APP, user_id=user, session_id=long_id)

    on_own_loop(run())


def test_two_processes_creating_one_session_id_agree_and_older_events_keep_their_state(api: Api):
    backend = api.new_user(backend=True)
    ns = f"adk{uuid.uuid4().hex[:10]}."

    async def run() -> None:
        async with (
            AsyncChatMemoryClient(api.base_url, backend.token) as one,
            AsyncChatMemoryClient(api.base_url, backend.token) as two,
        ):
            first = ChatMemorySessionService(client=one, namespace=ns)
            second = ChatMemorySessionService(client=two, namespace=ns)
            for race in range(3):
                name = f"race-{race}"
                got = await asyncio.gather(
                    first.create_session(app_name=APP, user_id="frank", session_id=name, state={"by": "first"}),
                    second.create_session(app_name=APP, user_id="frank", session_id=name, state={"by": "second"}),
                    return_exceptions=True,
                )
                won = [s for s in got if not isinstance(s, BaseException)]
                lost = [s for s in got if isinstance(s, BaseException)]
                assert len(won) == 1 and len(lost) == 1 and isinstance(lost[0], AlreadyExistsError), got
                # both processes now read the winner's session
                for service in (first, second):
                    read = await service.get_session(app_name=APP, user_id="frank", session_id=name)
                    assert read == won[0]
            listed = await first.list_sessions(app_name=APP, user_id="frank")
            assert [s.id for s in listed.sessions] == ["race-0", "race-1", "race-2"]

            # an active session returns every event (the last HISTORY_MAX_LIMIT messages, 100);
            # ended, the product keeps its last MESSAGE_WINDOW (8): those events are returned and
            # the state all of them set is kept, as ADK's own service folds it
            reference = InMemorySessionService()
            ours = await first.create_session(app_name=APP, user_id="frank", session_id="long", state={"n": 0})
            ref = await reference.create_session(app_name=APP, user_id="frank", session_id="long", state={"n": 0})
            for i in range(1, 13):
                delta = {f"k{i}": i, "n": i} | ({"user:every3": i} if i % 3 == 0 else {})
                event = Event(invocation_id=f"inv{i}", author="user", actions=EventActions(state_delta=delta))
                await first.append_event(ours, event)
                await reference.append_event(ref, event.model_copy(deep=True))
            want = await reference.get_session(app_name=APP, user_id="frank", session_id="long")
            got = await second.get_session(app_name=APP, user_id="frank", session_id="long")
            assert got is not None and want is not None
            assert got.state == want.state == ours.state
            assert got.events == want.events
            await ChatMemoryMemoryService(client=two, namespace=ns).add_session_to_memory(got)  # ends it
            ended = await first.get_session(app_name=APP, user_id="frank", session_id="long")
            assert ended is not None and ended.state == want.state
            assert [e.invocation_id for e in ended.events] == [f"inv{i}" for i in range(5, 13)]
            assert ended.events == want.events[-8:]

    on_own_loop(run())


def test_the_memory_service_remembers_an_ended_session(api: Api, firestore: Firestore):
    backend = api.new_user(backend=True)
    ns = f"adk{uuid.uuid4().hex[:10]}."

    async def run() -> None:
        async with AsyncChatMemoryClient(api.base_url, backend.token) as client:
            sessions = ChatMemorySessionService(client=client, namespace=ns)
            memory = ChatMemoryMemoryService(client=client, namespace=ns)
            await converse(sessions, "carol", "trip")
            other = await sessions.create_session(app_name="elsewhere", user_id="carol")  # another app
            got = await sessions.get_session(app_name=APP, user_id="carol", session_id="trip")
            assert got is not None
            await memory.add_session_to_memory(got)
            await memory.add_session_to_memory(got)  # again: the first end's answer
            sid = await sessions._store.resolve(APP, "carol", "trip")
            await asyncio.to_thread(
                firestore.wait_for, f"users/{ns}carol/memories/{sid}", lambda d: bool(d.get("search"))
            )
            found = await memory.search_memory(app_name=APP, user_id="carol", query="weather Paris")
            assert [m.custom_metadata["session_id"] for m in found.memories] == ["trip"]
            assert "Paris" in (found.memories[0].content.parts or [types.Part(text="")])[0].text
            assert (
                await memory.search_memory(app_name="elsewhere", user_id="carol", query="weather Paris")
            ).memories == []
            assert (await memory.search_memory(app_name=APP, user_id="dave", query="weather Paris")).memories == []
            del other

    on_own_loop(run())


def test_the_adk_example_runs_against_the_stack(api: Api):
    backend = api.new_user(backend=True)
    out = run_example(
        "adk_agent.py",
        api.base_url,
        backend.token,
        "weather in Paris",
        "thanks",
        CM_USER_ID=f"example-{uuid.uuid4().hex[:8]}",
    )
    assert "user: weather in Paris\nassistant: It is clear in Paris." in out
    assert "assistant: You said 'thanks'; that is 2 things you told me." in out
    assert "last city: Paris" in out
    assert out.strip().endswith("6 events kept, ended into memory")
