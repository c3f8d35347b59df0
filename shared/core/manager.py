"""The session manager: the public API, routing every operation through the layers in the
seed's order (Redis, then Firestore, then this instance's memory) and saying in every answer
which layer served it.

Public API (kept from the seed): create_session, get_session, add_message, get_history,
get_context_for_llm, end_session_with_analytics, plus get_user_stats and health().
Synchronous: Cloud Functions serve Python over WSGI. Where the rest lives:

- ``shared.store``: the layers, one protocol (``shared.store.base.SessionStore``);
- ``shared.core.recovery``: Redis back in step after an outage, and what an instance knows;
- ``shared.core.ending``: the end and its analytics;
- ``shared.core.summaries``: when summaries are written.
"""

from __future__ import annotations

import logging
import os
import time
import uuid
from collections.abc import Callable
from typing import Any

from shared.core import context as ctx
from shared.core.appends import Appends
from shared.core.ending import Ending, SessionInUse
from shared.core.failover import failover
from shared.core.models import (
    AppendResult,
    Context,
    EndResult,
    History,
    Memory,
    SessionInfo,
    Summary,
    UserStats,
    api_message,
    bounded_int,
    parse_message,
    parse_user_info,
    session_info,
    validate_session_id,
    validate_user_id,
)
from shared.core.reads import Reads
from shared.core.recovery import InstanceMemo, Recovery, check_owner
from shared.core.summaries import Summaries
from shared.core.summarizer import Summarizer, build_summarizer
from shared.errors import (
    InvalidArgument,
    NotFound,
    PermissionDenied,
    StoreError,
    TooManySessions,
    Unavailable,
)
from shared.settings import Settings, get_settings
from shared.store.base import CreateRequest, LayerName, SessionState, SessionStore, StoredMessage
from shared.store.firestore.layer import FirestoreLayer
from shared.store.firestore.stats import Stats
from shared.store.layers import Layers, OverLayers
from shared.store.memory import MemoryLayer
from shared.store.redis.layer import RedisFull, RedisLayer

__all__ = ["SessionInUse", "SessionManager"]

log = logging.getLogger("chat_memory.session")
MAX_TOKEN_BUDGET = 1_000_000


class SessionManager(OverLayers):
    def __init__(
        self,
        settings: Settings | None = None,
        *,
        redis: RedisLayer | None = None,
        firestore: FirestoreLayer | None = None,
        stats: Stats | None = None,
        memory: MemoryLayer | None = None,
        summarizer: Summarizer | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        s = settings or get_settings()
        self.layers = Layers(
            s,
            redis or RedisLayer(s),
            firestore or FirestoreLayer(s),
            memory or MemoryLayer(s, clock=clock),
            clock,
        )
        # The user's totals (get_user_stats) over the Firestore layer's client and breaker,
        # unless the caller hands the instance's own.
        self.stats = stats or Stats(self.firestore.fs)
        self.memo = InstanceMemo()
        self.summaries = Summaries(summarizer or build_summarizer(s), self.layers)
        self.recovery = Recovery(self.layers, self.memo, self.summaries)
        self.ending = Ending(self.layers, self.recovery, self.summaries)
        self.recovery.end_expired = self.ending.end_expired
        self.appends = Appends(self.layers, self.memo, self.recovery, self.summaries)
        self.reads = Reads(self.layers, self.memo, self.recovery)
        # Called once per user message taken (not a duplicate): the recall of past sessions
        # (``shared.features.memories``, wired by the instance). Never fails the append.
        self.on_user_message: Callable[[str, str | None], None] | None = None

    # ------------------------------------------------------------------ create / get
    def create_session(
        self, user_info: dict[str, Any] | None = None, *, user_id: str | None = None, memory: object = True
    ) -> SessionInfo:
        """``memory`` False: a memory-off session (no digest at its end, nothing recalled)."""
        if not isinstance(memory, bool):
            raise InvalidArgument("memory must be true or false", details={"field": "memory"})
        info = parse_user_info(user_info)
        uid = validate_user_id(user_id if user_id is not None else info.get("user_id"))
        info.pop("user_id", None)
        now = self._clock()
        sid = uuid.uuid4().hex
        state = SessionState(sid, uid, "active", now, now, 0, info, memory=memory)
        self._claim_session_slot(uid, sid, now)
        # Written to every store that answers (Firestore first: its document is the record
        # the sweep reads), not failed over: a session must exist where its messages go.
        fs_ok = False
        if self.firestore.configured:
            try:
                self.firestore.create(CreateRequest(state))
                fs_ok = True
            except StoreError:
                pass
        storage: LayerName = "memory"
        if self.redis.configured:
            try:
                self.redis.create(CreateRequest(state, in_firestore=fs_ok))
                storage = "redis"
            except StoreError:
                pass
        if storage != "redis" and fs_ok:
            storage = "firestore"
            try:
                self.firestore.set_in_redis(sid, False)  # so Redis not knowing it is no expiry
            except StoreError:
                pass
        if storage == "memory" and not self.memory.create(CreateRequest(state, in_firestore=False, local_only=True)):
            raise Unavailable("no store is reachable and this instance's memory is full; retry later")
        self.memo.know_owner(sid, uid)
        log.info("session created", extra={"session_id": sid, "storage": storage, "user_id": uid})
        return session_info(state, storage)

    def _claim_session_slot(self, uid: str, sid: str, now: float) -> None:
        # Counted in Redis so every instance sees the same count. Without Redis the cap is
        # not enforced: creating a session must not depend on the layer that may be down.
        # A full Redis answers but cannot count one more: refused (fail closed), or a
        # long fill would lift the cap for every session created meanwhile.
        if not self.redis.configured or self.settings.max_active_sessions_per_user == 0:
            return
        try:
            claimed = self.redis.claim_session_slot(uid, sid, now)
        except RedisFull as exc:
            raise Unavailable("Redis is full: new sessions are refused until it has room; retry later") from exc
        except StoreError:
            return
        if not claimed:
            raise TooManySessions(
                f"this user already has {self.settings.max_active_sessions_per_user} active sessions; end one first"
            )

    def get_session(self, session_id: str, *, user_id: str | None = None) -> SessionInfo:
        sid = validate_session_id(session_id)

        def route(layer: SessionStore) -> Callable[[], SessionInfo]:
            def run() -> SessionInfo:
                st = layer.state(sid)
                if st is None:
                    if layer is self.memory:
                        raise NotFound("no such session")
                    raise StoreError("not here", layer=layer.name)  # ask the next layer
                check_owner(st.owner, user_id)
                return session_info(st, layer.name)

            return run

        return failover([(layer, route(layer)) for layer in (self.redis, self.firestore, self.memory)])

    # ------------------------------------------------------------------ append
    def add_message(
        self,
        session_id: str,
        role: object,
        content: object,
        metadata: object = None,
        *,
        client_message_id: object = None,
        user_id: str | None = None,
        backend: bool = True,
        item: object = None,
    ) -> AppendResult:
        """Append one message; every argument but ``user_id`` is checked here (400 naming
        the field). ``backend`` False, an end user's own token: user turns only (403)."""
        sid = validate_session_id(session_id)
        m = parse_message(role, content, metadata, client_message_id, item)
        if not backend and m.role != "user":
            raise PermissionDenied(
                "end users append user turns only: assistant and system turns come from the chat backend"
            )
        mid = m.client_message_id or "s-" + os.urandom(10).hex()  # 80 random bits, as before
        msg = StoredMessage(0, mid, m.role, m.content, self._clock(), m.metadata, m.item)
        res = self.appends.append(sid, msg, user_id, m.client_message_id)
        if (
            m.role == "user"
            and m.content
            and not res.duplicate
            and res.storage == "redis"
            and self.on_user_message is not None
        ):
            try:
                self.on_user_message(sid, user_id)
            except Exception:  # noqa: BLE001 - recall never fails a turn
                log.exception("recall failed", extra={"session_id": sid})
        return res

    def append_answer(
        self, session_id: str, content: str, metadata: dict[str, Any], *, message_id: str, user_id: str | None
    ) -> AppendResult:
        """The assistant's answer of a chat turn, stored exactly once under ``message_id``
        (the turn's own id, which no client message id can take)."""
        sid = validate_session_id(session_id)
        m = parse_message("assistant", content, metadata)
        msg = StoredMessage(0, message_id, m.role, m.content, self._clock(), m.metadata)
        return self.appends.append(sid, msg, user_id, message_id)

    def recent(self, session_id: str, *, user_id: str | None) -> list[StoredMessage]:
        """The session's recent window as stored (message ids included), for the chat turn."""
        sid = validate_session_id(session_id)
        return self.reads.read(sid, self.settings.message_window, user_id)[0]

    # ------------------------------------------------------------------ reads
    def get_history(self, session_id: str, limit: int | None = None, *, user_id: str | None = None) -> History:
        sid = validate_session_id(session_id)
        limit = bounded_int(limit, "limit", self.settings.history_max_limit, self.settings.history_max_limit)
        msgs, _, layer, durable, _ = self.reads.read(sid, limit, user_id)
        return History(session_id=sid, messages=[api_message(m) for m in msgs], storage=layer, durable=durable)

    def get_context_for_llm(
        self,
        session_id: str,
        max_messages: int | None = None,
        *,
        token_budget: int | None = None,
        user_id: str | None = None,
    ) -> Context:
        sid = validate_session_id(session_id)
        w = self.settings.message_window
        n = bounded_int(max_messages, "max_messages", w, w)
        if token_budget is not None:
            bounded_int(token_budget, "token_budget", MAX_TOKEN_BUDGET, MAX_TOKEN_BUDGET)
        msgs, summary, layer, durable, recalled = self.reads.read(sid, n, user_id)
        text = summary.get("text") if summary else None
        memories = ctx.fit_memories([Memory.from_stored(x) for x in recalled], token_budget)
        left = None if token_budget is None else token_budget - ctx.memories_tokens(memories)
        msgs = ctx.fit_budget(msgs, text, left)
        formatted = ctx.format_context(msgs, summary, memories)
        return Context(
            session_id=sid,
            messages=[api_message(m) for m in msgs],
            summary=Summary(**summary) if summary else None,
            formatted_context=formatted,
            storage=layer,
            durable=durable,
            estimated_tokens=ctx.estimate_tokens(formatted),
            memories=memories,
        )

    # ------------------------------------------------------------------ end
    def end_session_with_analytics(
        self,
        session_id: str,
        agent_id: str | None = None,
        reason: str = "completed",
        *,
        user_id: str | None = None,
        idle_before: float | None = None,
    ) -> EndResult:
        """End the session once (``shared.core.ending``)."""
        return self.ending.end(session_id, agent_id, reason, user_id=user_id, idle_before=idle_before)

    # ------------------------------------------------------------------ user stats
    def get_user_stats(self, user_id: str | None) -> UserStats:
        """The caller's own totals and recent sessions, as the trigger wrote them."""
        uid = validate_user_id(user_id)
        try:
            doc = self.stats.get_user(uid) or {}
        except StoreError as exc:
            raise Unavailable("user stats are unavailable; try again shortly") from exc
        return UserStats(
            user_id=uid,
            total_sessions=int(doc.get("total_sessions") or 0),
            total_messages=int(doc.get("total_messages") or 0),
            total_queries=int(doc.get("total_queries") or 0),
            last_active_at=doc.get("last_active_at"),
            recent_sessions=list(doc.get("recent_sessions") or []),
        )

    # ------------------------------------------------------------------ sweep support
    def last_activity(self, sid: str) -> float | None:
        """When the session was last used, from Redis (None if Redis does not know)."""
        meta = self.redis.meta(sid) if self.redis.configured else None
        if not meta:
            return None
        return float(meta.get("last_active_at") or 0)

    # ------------------------------------------------------------------ health
    def health(self) -> dict[str, Any]:
        redis = self.redis.ping() if self.redis.configured else {"status": "disabled"}
        fs = self.firestore.ping()
        mem = self.memory.ping()
        ok = redis["status"] in ("up", "disabled") and fs["status"] in ("up", "disabled")
        return {"status": "ok" if ok else "degraded", "layers": {"redis": redis, "firestore": fs, "memory": mem}}
