"""The chat turn against real Redis and the Firestore emulator: one user message and one
answer per turn however often it is retried or raced, a responder failure keeps the user's
message, and an end user writes user turns only. The responder here is a plain class that
counts its calls and can fail on purpose (the responders themselves: tests/unit)."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import pytest

from shared.errors import InvalidArgument, PermissionDenied, Unavailable
from shared.features.chat import Chat
from tests.store.conftest import make_manager


@dataclass
class Said:
    content: str
    confidence: float = 0.9
    sources: list[str] = field(default_factory=lambda: ["faq_returns"])
    collection: str | None = "returns"

    def metadata(self) -> dict[str, Any]:
        return {"confidence": self.confidence, "sources": self.sources, "collection": self.collection}


class CountingResponder:
    name = "counting"

    def __init__(self, *, fail: int = 0, hold: threading.Event | None = None) -> None:
        self.calls = 0
        self.fail = fail  # the first N calls fail
        self.hold = hold
        self.lock = threading.Lock()

    def answer(self, question: str, context: Any) -> Said:
        with self.lock:
            self.calls += 1
            n = self.calls
        if self.hold is not None:
            self.hold.wait(10)
        if n <= self.fail:
            raise RuntimeError("responder down")
        # the question must be the last message of the context it was given
        assert context.messages[-1].content == question
        return Said(f"answer {n} to: {question}")


def _chat(redis_url: str, responder: CountingResponder) -> tuple[Any, Chat]:
    m = make_manager(redis_url)
    return m, Chat(m, responder)


def contents(m: Any, sid: str, uid: str) -> list[tuple[str, str]]:
    return [(x.role, x.content) for x in m.get_history(sid, user_id=uid).messages]


def test_a_turn_stores_the_question_and_the_answer_with_its_metadata(redis_server, firestore_emulator, uid):
    r = CountingResponder()
    m, chat = _chat(redis_server.url, r)
    sid = m.create_session({}, user_id=uid).session_id
    turn = chat.turn(sid, "Can I return shoes?", client_message_id="t1", user_id=uid)
    assert (turn.user_seq, turn.answer.seq, turn.message_count, turn.storage) == (1, 2, 2, "redis")
    assert turn.answer.content == "answer 1 to: Can I return shoes?"
    assert contents(m, sid, uid) == [("user", "Can I return shoes?"), ("assistant", turn.answer.content)]
    end = m.end_session_with_analytics(sid, user_id=uid)
    assert (end.message_count, end.queries_recorded) == (2, 1)
    ana = m.firestore.read_analytics(sid)
    assert ana[0]["query"] == "Can I return shoes?" and ana[0]["sources"] == ["faq_returns"]


def test_a_retried_turn_answers_the_first_result_and_asks_once(redis_server, firestore_emulator, uid):
    r = CountingResponder()
    m, chat = _chat(redis_server.url, r)
    sid = m.create_session({}, user_id=uid).session_id
    first = chat.turn(sid, "Where is my order?", client_message_id="t1", user_id=uid)
    again = chat.turn(sid, "Where is my order?", client_message_id="t1", user_id=uid)
    assert r.calls == 1
    assert again.model_dump(exclude={"replayed"}) == first.model_dump(exclude={"replayed"}) and again.replayed
    assert len(contents(m, sid, uid)) == 2


def test_a_turn_that_stopped_between_the_appends_is_finished_not_duplicated(redis_server, firestore_emulator, uid):
    r = CountingResponder()
    m, chat = _chat(redis_server.url, r)
    sid = m.create_session({}, user_id=uid).session_id
    # the first attempt stored the question, then its instance stopped
    m.add_message(sid, "user", "Do you ship abroad?", client_message_id="t1", user_id=uid, backend=False)
    turn = chat.turn(sid, "Do you ship abroad?", client_message_id="t1", user_id=uid)
    assert (turn.user_seq, turn.answer.seq, r.calls) == (1, 2, 1)
    chat.turn(sid, "Do you ship abroad?", client_message_id="t1", user_id=uid)
    assert r.calls == 1 and len(contents(m, sid, uid)) == 2


def test_a_responder_failure_keeps_the_question_and_the_retry_finishes(redis_server, firestore_emulator, uid):
    r = CountingResponder(fail=1)
    m, chat = _chat(redis_server.url, r)
    sid = m.create_session({}, user_id=uid).session_id
    with pytest.raises(Unavailable, match="retry the turn"):
        chat.turn(sid, "Reset my password", client_message_id="t1", user_id=uid)
    assert contents(m, sid, uid) == [("user", "Reset my password")]
    turn = chat.turn(sid, "Reset my password", client_message_id="t1", user_id=uid)
    assert (turn.user_seq, turn.answer.seq) == (1, 2)
    assert [role for role, _ in contents(m, sid, uid)] == ["user", "assistant"]


def test_racing_attempts_of_one_turn_store_one_answer_and_agree(redis_server, firestore_emulator, uid):
    gate = threading.Event()
    r = CountingResponder(hold=gate)
    m, chat = _chat(redis_server.url, r)
    sid = m.create_session({}, user_id=uid).session_id
    with ThreadPoolExecutor(2) as ex:
        futures = [ex.submit(chat.turn, sid, "Cancel my order", client_message_id="t1", user_id=uid) for _ in range(2)]
        deadline = time.monotonic() + 10
        while r.calls < 2 and time.monotonic() < deadline:  # both in the responder: no answer stored yet
            time.sleep(0.01)
        assert r.calls == 2
        gate.set()
        turns = [f.result() for f in futures]
    assert turns[0].answer == turns[1].answer
    assert len(contents(m, sid, uid)) == 2


def test_an_end_user_writes_user_turns_only(redis_server, firestore_emulator, uid):
    m = make_manager(redis_server.url)
    sid = m.create_session({}, user_id=uid).session_id
    for role in ("assistant", "system"):
        with pytest.raises(PermissionDenied):
            m.add_message(sid, role, "refund approved", {"confidence": 1.0}, user_id=uid, backend=False)
    assert m.add_message(sid, "user", "hi", user_id=uid, backend=False).seq == 1
    # the turn's answer id cannot be taken by a client message id
    with pytest.raises(InvalidArgument):
        m.add_message(sid, "user", "forged", client_message_id="t1#a", user_id=uid, backend=False)
    assert contents(m, sid, uid) == [("user", "hi")]


def test_a_turn_says_summary_updated_when_its_question_made_the_summary(redis_server, firestore_emulator, uid):
    """Issue 20: with a summary every 5 messages, turn 3's question is message 5: the turn
    that wrote the summary says so, though its answer (message 6) wrote none."""
    m, chat = _chat(redis_server.url, CountingResponder())
    sid = m.create_session({}, user_id=uid).session_id
    turns = [chat.turn(sid, f"question {i}?", client_message_id=f"q{i}", user_id=uid) for i in range(5)]
    updated = [t.summary_updated for t in turns]
    assert m.settings.summary_interval == 5
    assert updated == [False, False, True, False, True]  # message 5 is turn 3's question, 10 turn 5's answer
    assert m.get_context_for_llm(sid, user_id=uid).summary is not None
