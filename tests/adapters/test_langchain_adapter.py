"""The LangChain adapter (chat_memory_client.langchain.ChatMemoryHistory) driven by
LangChain's own RunnableWithMessageHistory over a small local chat model of LangChain's kind
(a BaseChatModel answering from what it is given: no network), against the emulated functions:
several turns, a retry stored once, a second process reading the same session, bad input."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from chat_memory_client import ChatMemoryClient, InvalidArgument, NotFound
from chat_memory_client.langchain import ChatMemoryHistory
from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.prompts import ChatPromptTemplate, MessagesPlaceholder
from langchain_core.runnables.history import RunnableWithMessageHistory

from tests.adapters.aio import in_second_process, run_example
from tests.clients import Api

ROOT = Path(__file__).resolve().parents[2]


class EchoModel(BaseChatModel):
    """Answers with what it was given: the last human text and how many messages came before."""

    @property
    def _llm_type(self) -> str:
        return "echo"

    def _generate(
        self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **kw: Any
    ) -> ChatResult:
        last = next(m.content for m in reversed(messages) if isinstance(m, HumanMessage))
        text = f"heard {last!r} after {len(messages) - 1} messages"
        return ChatResult(generations=[ChatGeneration(message=AIMessage(content=text))])


def chain_for(client: ChatMemoryClient) -> RunnableWithMessageHistory:
    prompt = ChatPromptTemplate.from_messages([MessagesPlaceholder("history"), ("human", "{question}")])
    return RunnableWithMessageHistory(
        prompt | EchoModel(),
        lambda session_id: ChatMemoryHistory(client=client, session_id=session_id),
        input_messages_key="question",
        history_messages_key="history",
    )


def test_runnable_with_message_history_keeps_its_turns_in_a_session(api: Api):
    user = api.new_user(backend=True)  # the assistant's turns are written by a backend identity
    with ChatMemoryClient(api.base_url, user.token) as client:
        sid = client.create_session()["session_id"]
        chain = chain_for(client)
        cfg = {"configurable": {"session_id": sid}}
        answers = [
            chain.invoke({"question": q}, config=cfg).content for q in ("hello", "my cat is Bartholomew", "and?")
        ]
        assert answers == [
            "heard 'hello' after 0 messages",
            "heard 'my cat is Bartholomew' after 2 messages",
            "heard 'and?' after 4 messages",
        ]
        history = ChatMemoryHistory(client=client, session_id=sid)
        # a retry of the same messages (their ids kept): stored once
        again = [HumanMessage(content="retried", id="lc-1"), AIMessage(content="once", id="lc-2")]
        history.add_messages(again)
        history.add_messages(again)
        got = [(type(m).__name__, m.content) for m in history.messages]
        assert got[-2:] == [("HumanMessage", "retried"), ("AIMessage", "once")] and len(got) == 8
        assert len(client.get_history(sid)["messages"]) == 8
        expected = [m.content for m in history.messages]
        # another session: ids that are no client_message_id (spaces, too long) stay apart
        # and stay retry-safe; bad input; clear()
        history = ChatMemoryHistory(client=client, session_id=client.create_session()["session_id"])
        odd = [
            HumanMessage(content="a b", id="a b"),
            HumanMessage(content="a_b", id="a_b"),
            AIMessage(content="long", id="x" * 200),
        ]
        history.add_messages(odd)
        history.add_messages(odd)
        assert [m.content for m in history.messages][-3:] == ["a b", "a_b", "long"]
        # bad input: a typed error before anything is sent, and nothing of the batch written
        for bad, field in (
            ([HumanMessage(content="first of a bad batch"), ToolMessage(content="x", tool_call_id="t")], "role"),
            (
                [HumanMessage(content="first"), HumanMessage(content=[{"type": "image_url", "image_url": "http://x"}])],
                "content",
            ),
            ([HumanMessage(content="first"), AIMessage(content="x" * 40_000)], "content"),
            ([HumanMessage(content="first"), AIMessage(content="   ")], "content"),
        ):
            with pytest.raises(InvalidArgument) as refused:
                history.add_messages(bad)
            assert refused.value.status == 0 and refused.value.field == field
        assert [m.content for m in history.messages] == ["a b", "a_b", "long"]  # nothing of a bad batch
        history.clear()  # erases the session: no history to read or add to any more
        with pytest.raises(NotFound):
            _ = history.messages
        with pytest.raises(NotFound):
            history.add_messages([HumanMessage(content="after clear")])
    # a second process, its own client, reads the same session in order
    code = (
        "import json, sys; from chat_memory_client import ChatMemoryClient; "
        "from chat_memory_client.langchain import ChatMemoryHistory; "
        "c = ChatMemoryClient(sys.argv[1], sys.argv[2]); "
        "print(json.dumps([m.content for m in ChatMemoryHistory(client=c, session_id=sys.argv[3]).messages]))"
    )
    second = in_second_process(code, api.base_url, user.token, sid)
    assert second == expected  # every turn, in order
    assert expected[:3] == ["hello", "heard 'hello' after 0 messages", "my cat is Bartholomew"]


def test_the_langchain_example_runs_against_the_stack(api: Api):
    user = api.new_user(backend=True)
    out = run_example("langchain_chat.py", api.base_url, user.token, "my cat is Bartholomew", "what is my cat called?")
    assert "assistant: You first told me: 'my cat is Bartholomew'" in out
    assert out.strip().endswith("4 messages kept")
