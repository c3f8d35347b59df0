"""A LangChain conversation whose history is a chat-memory session.

    make dev          # in another terminal: the local stack (it prints the functions' URL)
    CM_FUNCTIONS_URL=http://127.0.0.1:5001/demo-chat-memory/us-central1 \\
    CM_TOKEN=<a backend's ID token, or nothing with make dev's AUTH_DISABLED> \\
    python examples/langchain_chat.py "my cat is Bartholomew" "what is my cat called?"

The model is a small local one of LangChain's own kind (no key, no network); put yours in its
place. Needs `pip install "./clients/python[langchain]"`.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from chat_memory_client import ChatMemoryClient
from chat_memory_client.langchain import ChatMemoryHistory
from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.prompts import ChatPromptTemplate, MessagesPlaceholder
from langchain_core.runnables.history import RunnableWithMessageHistory


class LocalModel(BaseChatModel):
    """Answers from the conversation it is given: the earliest thing the user said."""

    @property
    def _llm_type(self) -> str:
        return "local-example"

    def _generate(
        self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **kw: Any
    ) -> ChatResult:
        said = [m.content for m in messages if isinstance(m, HumanMessage)]
        text = f"You first told me: {said[0]!r}" if len(said) > 1 else "Noted."
        return ChatResult(generations=[ChatGeneration(message=AIMessage(content=text))])


def main(questions: list[str]) -> int:
    url = os.environ.get("CM_FUNCTIONS_URL", "http://127.0.0.1:5001/demo-chat-memory/us-central1")
    with ChatMemoryClient(url, os.environ.get("CM_TOKEN") or None) as client:
        sid = client.create_session({"platform": "langchain-example"})["session_id"]
        prompt = ChatPromptTemplate.from_messages([MessagesPlaceholder("history"), ("human", "{question}")])
        chain = RunnableWithMessageHistory(
            prompt | LocalModel(),
            lambda session_id: ChatMemoryHistory(client=client, session_id=session_id),
            input_messages_key="question",
            history_messages_key="history",
        )
        for q in questions:
            answer = chain.invoke({"question": q}, config={"configurable": {"session_id": sid}})
            print(f"user: {q}\nassistant: {answer.content}")
        print(f"session {sid}: {client.end_session(sid)['message_count']} messages kept")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:] or ["my cat is Bartholomew", "what is my cat called?"]))
