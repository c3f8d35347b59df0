"""The chat turn: one call per user message, with the memory built in.

Append the user's message (exactly once per client message id), build the context, ask the
responder, append its answer with its metadata, answer both. The answer is stored under
the turn's own id (the user message's id + ``#a``; no client message id may hold a ``#``),
so a retried turn never asks the responder twice for an answer that was stored, and a turn
whose first attempt died between the two appends is finished, not duplicated. A responder
failure leaves the user's message stored: the retry (same id) finishes the turn.
"""

from __future__ import annotations

import logging
import uuid
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from shared.core.models import AppendResult, Layer, Memory
from shared.errors import FailedPrecondition, StoreError, Unavailable
from shared.store.base import StoredMessage

if TYPE_CHECKING:
    from shared.core.manager import SessionManager
    from shared.features.responders.base import Responder

log = logging.getLogger("chat_memory.chat")
ANSWER_SUFFIX = "#a"


class ChatAnswer(BaseModel):
    content: str
    seq: int
    metadata: dict[str, Any]


class ChatTurn(BaseModel):
    session_id: str
    answer: ChatAnswer
    user_seq: int
    message_count: int
    summary_updated: bool
    storage: Layer
    durable: bool
    memories: list[Memory] = []  # the past sessions the answer's context recalled
    replayed: bool = False  # a retry answered with the turn's stored answer


class Chat:
    def __init__(self, manager: SessionManager, responder: Responder) -> None:
        self.manager = manager
        self.responder = responder

    def turn(
        self, session_id: str, content: object, *, client_message_id: object = None, user_id: str | None
    ) -> ChatTurn:
        m = self.manager
        cmid = client_message_id if client_message_id is not None else "t-" + uuid.uuid4().hex
        user = m.add_message(session_id, "user", content, client_message_id=cmid, user_id=user_id, backend=False)
        sid, answer_id = user.session_id, f"{cmid}{ANSWER_SUFFIX}"
        if user.duplicate:
            stored = self._stored_answer(sid, answer_id, user_id)
            if stored is not None:
                return self._replay(sid, stored, answer_id, user, user_id)
        context = m.get_context_for_llm(sid, user_id=user_id, token_budget=m.settings.chat_token_budget)
        try:
            answer = self.responder.answer(str(content), context)
        except Exception as exc:  # noqa: BLE001 - any responder failure: the user's turn is kept
            log.error("responder failed", extra={"session_id": sid, "error": type(exc).__name__})
            raise Unavailable("the assistant could not answer; retry the turn with the same client_message_id") from exc
        out = m.append_answer(sid, answer.content, answer.metadata(), message_id=answer_id, user_id=user_id)
        if out.duplicate:
            # Another attempt of this turn stored its answer first: answer that one.
            stored = self._stored_answer(sid, answer_id, user_id)
            if stored is None:
                raise _too_old()
            return self._replay(sid, stored, answer_id, user, user_id)
        log.info("chat turn", extra={"session_id": sid, "responder": self.responder.name, "seq": out.seq})
        return _turn(sid, answer.content, answer.metadata(), user, out).model_copy(
            update={"memories": context.memories}
        )

    def _stored_answer(self, sid: str, answer_id: str, user_id: str | None) -> StoredMessage | None:
        try:
            recent = self.manager.recent(sid, user_id=user_id)
        except StoreError:
            return None
        return next((x for x in recent if x.mid == answer_id and x.role == "assistant"), None)

    def _replay(
        self, sid: str, stored: StoredMessage, answer_id: str, user: AppendResult, user_id: str | None
    ) -> ChatTurn:
        # Appending it again under its id stores nothing and answers as the first time did.
        out = self.manager.append_answer(
            sid, stored.content, stored.metadata or {}, message_id=answer_id, user_id=user_id
        )
        return _turn(sid, stored.content, stored.metadata or {}, user, out, replayed=True)


def _turn(
    sid: str, content: str, metadata: dict[str, Any], user: AppendResult, out: AppendResult, *, replayed: bool = False
) -> ChatTurn:
    return ChatTurn(
        session_id=sid,
        answer=ChatAnswer(content=content, seq=out.seq, metadata=metadata),
        user_seq=user.seq,
        message_count=out.message_count,
        # the question or the answer may be the message that made the summary
        summary_updated=user.summary_updated or out.summary_updated,
        storage=out.storage,
        durable=user.durable and out.durable,
        replayed=replayed,
    )


def _too_old() -> FailedPrecondition:
    return FailedPrecondition(
        "this turn's answer is stored but no longer among the session's recent messages; start a new turn"
    )
