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
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any, TypeVar, cast

from shared.core import context as ctx
from shared.core.ending import Ending, SessionInUse, ended_error
from shared.core.models import (
    AppendResult,
    Context,
    EndResult,
    History,
    Message,
    Role,
    SessionInfo,
    Summary,
    UserStats,
    parse_message,
    parse_user_info,
    validate_session_id,
    validate_user_id,
)
from shared.core.recovery import InstanceMemo, Recovery, check_owner
from shared.core.summaries import Summaries
from shared.core.summarizer import Summarizer, build_summarizer
from shared.errors import (
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    StoreError,
    TooManySessions,
    Unavailable,
)
from shared.settings import Settings, get_settings
from shared.store.base import ERASED, Appended, AppendRequest, LayerName, SessionState, SessionStore, StoredMessage
from shared.store.firestore.layer import FirestoreLayer
from shared.store.firestore.stats import Stats
from shared.store.layers import Layers, OverLayers
from shared.store.memory import MemoryLayer
from shared.store.redis.layer import RedisLayer

__all__ = ["SessionInUse", "SessionManager"]

log = logging.getLogger("chat_memory.session")
T = TypeVar("T")
MAX_TOKEN_BUDGET = 1_000_000
# (messages, summary, layer, durable): what a read gathers
Read = tuple[list[StoredMessage], dict[str, Any] | None, LayerName, bool]


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

    # ------------------------------------------------------------------ failover
    def _failover(self, routes: Sequence[tuple[SessionStore, Callable[[], T]]]) -> T:
        """Redis, then Firestore, then this instance's memory: each route runs if its layer
        is configured, and a layer that is down (StoreError) hands over to the next. The
        memory route is last and answers (or raises the caller's error) itself."""
        for layer, route in routes[:-1]:
            if layer.configured:
                try:
                    return route()
                except StoreError:
                    continue
        return routes[-1][1]()

    # ------------------------------------------------------------------ create / get
    def create_session(self, user_info: dict[str, Any] | None = None, *, user_id: str | None = None) -> SessionInfo:
        info = parse_user_info(user_info)
        uid = validate_user_id(user_id if user_id is not None else info.get("user_id"))
        info.pop("user_id", None)
        now = self._clock()
        sid = uuid.uuid4().hex
        state = SessionState(sid, uid, "active", now, now, 0, info)
        self._claim_session_slot(uid, sid, now)
        # Written to every store that answers (Firestore first: its document is the record
        # the sweep reads), not failed over: a session must exist where its messages go.
        fs_ok = False
        if self.firestore.configured:
            try:
                self.firestore.create_session(state)
                fs_ok = True
            except StoreError:
                pass
        storage: LayerName = "memory"
        if self.redis.configured:
            try:
                self.redis.create(state, fs_doc=fs_ok)
                storage = "redis"
            except StoreError:
                pass
        if storage != "redis" and fs_ok:
            storage = "firestore"
            try:
                self.firestore.set_in_redis(sid, False)  # so Redis not knowing it is no expiry
            except StoreError:
                pass
        if storage == "memory" and not self.memory.create(state, local_only=True):
            raise Unavailable("no store is reachable and this instance's memory is full; retry later")
        self.memo.know_owner(sid, uid)
        log.info("session created", extra={"session_id": sid, "storage": storage, "user_id": uid})
        return _info(state, storage)

    def _claim_session_slot(self, uid: str, sid: str, now: float) -> None:
        # Counted in Redis so every instance sees the same count. Without Redis the cap is
        # not enforced: creating a session must not depend on the layer that may be down.
        if not self.redis.configured or self.settings.max_active_sessions_per_user == 0:
            return
        try:
            claimed = self.redis.claim_session_slot(uid, sid, now)
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
                return _info(st, layer.name)

            return run

        return self._failover([(layer, route(layer)) for layer in (self.redis, self.firestore, self.memory)])

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
    ) -> AppendResult:
        """Append one message; every argument but ``user_id`` is checked here (400 naming
        the field). ``backend`` False, an end user's own token: user turns only (403)."""
        sid = validate_session_id(session_id)
        m = parse_message(role, content, metadata, client_message_id)
        if not backend and m.role != "user":
            raise PermissionDenied(
                "end users append user turns only: assistant and system turns come from the chat backend"
            )
        mid = m.client_message_id or "s-" + os.urandom(10).hex()  # 80 random bits, as before
        msg = StoredMessage(0, mid, m.role, m.content, self._clock(), m.metadata)
        return self._append(sid, msg, user_id, m.client_message_id)

    def append_answer(
        self, session_id: str, content: str, metadata: dict[str, Any], *, message_id: str, user_id: str | None
    ) -> AppendResult:
        """The assistant's answer of a chat turn, stored exactly once under ``message_id``
        (the turn's own id, which no client message id can take)."""
        sid = validate_session_id(session_id)
        m = parse_message("assistant", content, metadata)
        msg = StoredMessage(0, message_id, m.role, m.content, self._clock(), m.metadata)
        return self._append(sid, msg, user_id, message_id)

    def _append(self, sid: str, msg: StoredMessage, user_id: str | None, cmid: str | None) -> AppendResult:
        """Exactly once per ``cmid`` on every layer (None: a server-made id, never retried)."""
        req = AppendRequest(sid, msg, user_id, cmid, msg.timestamp)
        return self._failover(
            [
                (self.redis, lambda: self.recovery.run(lambda: self._append_redis(req))),
                (self.firestore, lambda: self._append_firestore(req)),
                (self.memory, lambda: self._append_memory(req)),
            ]
        )

    def recent(self, session_id: str, *, user_id: str | None) -> list[StoredMessage]:
        """The session's recent window as stored (message ids included), for the chat turn."""
        sid = validate_session_id(session_id)
        return self._read(sid, self.settings.message_window, user_id)[0]

    def _append_redis(self, req: AppendRequest) -> AppendResult:
        sid, user_id = req.session_id, req.owner
        self.recovery.maybe_merge(sid, user_id)
        out = self.redis.append(req)
        if out.status == "missing":
            if self.recovery.hydrate_owned(sid, user_id).status != "active":
                raise ended_error(self.redis, sid)
            self.recovery.maybe_merge(sid, user_id)
            out = self.redis.append(req)
        if out.status == "ended":
            raise ended_error(self.redis, sid)
        _raise_for(out)
        self.memo.seq(sid, out.seq)
        self.memo.know_owner(sid, user_id)
        if out.doc_missing:
            self.recovery.write_missing_doc(sid)
        updated = False
        if out.status == "ok" and out.summary_due:
            updated = self.summaries.roll(sid, out.seq, out.previous_summary, out.unsummarized or [], req.now)
        elif out.status == "dup":
            updated = out.summary_due
        log.info(
            "message appended",
            extra={
                "session_id": sid,
                "storage": "redis",
                "seq": out.seq,
                "role": req.message.role,
                "duplicate": out.status == "dup",
            },
        )
        return _appended(sid, out, "redis", summary_updated=updated)

    def _append_firestore(self, req: AppendRequest) -> AppendResult:
        sid = req.session_id
        local = self.memory.state(sid)
        req = replace(req, seq_hint=self.memo.seq(sid), base=local, base_in_redis=not self.memory.local_only(sid))
        out = self.firestore.append(req)
        if out.status == "missing" and local is None:
            # Unknown to Firestore; Redis may know it but is down: keep it here, not lost.
            raise StoreError("session unknown to firestore", layer="firestore")
        _raise_for(out)
        self.memo.seq(sid, out.seq)
        self.memo.know_owner(sid, req.owner)
        self.recovery.held_elsewhere(sid)
        log.info("message appended", extra={"session_id": sid, "storage": "firestore", "seq": out.seq})
        return _appended(sid, out, "firestore")

    def _append_memory(self, req: AppendRequest) -> AppendResult:
        sid, user_id = req.session_id, req.owner
        state = self.memory.state(sid)
        if state is None:
            # Neither store can say who owns the session: accept it only for the owner a
            # store confirmed to this instance before. Guessing would make the caller its
            # owner here and, once Firestore is back, in its document.
            owner = self.memo.owner(sid)
            if owner is None:
                raise Unavailable("session storage is unavailable; try again shortly")
            check_owner(owner, user_id)
            now = self._clock()
            state = SessionState(sid, owner, "active", now, now, self.memo.seq(sid))
            created = self.memory.create(state, local_only=False)
        else:
            check_owner(state.owner, user_id)
            created = True
        out = self.memory.append(replace(req, seq_hint=self.memo.seq(sid))) if created else Appended("full")
        if out.status == "full":
            # Refused rather than stored and later dropped: the caller retries once a store is back.
            raise Unavailable("no store is reachable and this instance's memory is full; retry later")
        _raise_for(out)
        self.memo.seq(sid, out.seq)
        self.recovery.held_elsewhere(sid)
        log.warning("message kept in instance memory only", extra={"session_id": sid, "seq": out.seq})
        return _appended(sid, out, "memory", durable=False)

    # ------------------------------------------------------------------ reads
    def _read(self, sid: str, n: int, user_id: str | None) -> Read:
        """Last ``n`` messages and the summary, from the first layer that can answer."""
        known_missing = [not self.firestore.configured]

        def redis() -> Read:
            got = self.recovery.run(lambda: self._read_redis(sid, n, user_id))
            if got is None:
                raise StoreError("ended: the document has the final state", layer="redis")
            return got[0], got[1], "redis", True

        def firestore() -> Read:
            doc = self.firestore.get_session(sid)
            if doc is None or doc.get("status") == ERASED:
                known_missing[0] = True  # the durable record says: no such session
                raise StoreError("not in firestore", layer="firestore")
            return self._read_firestore(sid, doc, n, user_id)

        def memory() -> Read:
            state = self.memory.state(sid)
            snap = self.memory.snapshot(sid)
            if state is None or snap is None:
                if known_missing[0]:
                    raise NotFound("no such session")
                raise Unavailable("session storage is unavailable; try again shortly")
            check_owner(state.owner, user_id)
            return snap[0][-n:] if n else [], None, "memory", False

        return self._failover([(self.redis, redis), (self.firestore, firestore), (self.memory, memory)])

    def _read_redis(
        self, sid: str, n: int, user_id: str | None
    ) -> tuple[list[StoredMessage], dict[str, Any] | None] | None:
        """None when Redis cannot answer for this session (ended: see the document)."""
        self.recovery.maybe_merge(sid, user_id)
        out = self.redis.read(sid, user_id, n)
        if out.status == "missing":
            if self.recovery.hydrate_owned(sid, user_id).status != "active":
                return None
            self.recovery.maybe_merge(sid, user_id)
            out = self.redis.read(sid, user_id, n)
        if out.status == "forbidden":
            raise PermissionDenied("this session belongs to another user")
        if out.status == "erased":
            raise NotFound("no such session (its data was erased)")
        self.memo.know_owner(sid, user_id)
        if out.doc_missing and out.session_status == "active":
            self.recovery.write_missing_doc(sid)
        if out.status == "ok" and out.session_status != "ended":
            return out.messages or [], out.summary
        return None  # ended: the final window and summary live on the session document

    def _read_firestore(self, sid: str, doc: dict[str, Any], n: int, user_id: str | None) -> Read:
        check_owner(doc.get("owner", ""), user_id)
        if doc.get("status") == "ended":
            msgs = [StoredMessage.from_dict(m) for m in doc.get("final_messages") or []]
        else:
            pending, _ = self.firestore.read_pending(sid)
            mem = self.memory.snapshot(sid)
            msgs = ctx.merge_messages(pending, mem[0] if mem else [])
        return msgs[-n:] if n else [], doc.get("summary"), "firestore", True

    def get_history(self, session_id: str, limit: int | None = None, *, user_id: str | None = None) -> History:
        sid = validate_session_id(session_id)
        limit = _bounded(limit, "limit", self.settings.history_max_limit, self.settings.history_max_limit)
        msgs, _, layer, durable = self._read(sid, limit, user_id)
        return History(session_id=sid, messages=[_api_message(m) for m in msgs], storage=layer, durable=durable)

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
        n = _bounded(max_messages, "max_messages", w, w)
        if token_budget is not None:
            _bounded(token_budget, "token_budget", MAX_TOKEN_BUDGET, MAX_TOKEN_BUDGET)
        msgs, summary, layer, durable = self._read(sid, n, user_id)
        text = summary.get("text") if summary else None
        msgs = ctx.fit_budget(msgs, text, token_budget)
        formatted = ctx.format_context(msgs, summary)
        return Context(
            session_id=sid,
            messages=[_api_message(m) for m in msgs],
            summary=Summary(**summary) if summary else None,
            formatted_context=formatted,
            storage=layer,
            durable=durable,
            estimated_tokens=ctx.estimate_tokens(formatted),
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
        self.memory.clear_expired()
        mem = self.memory.stats()
        ok = redis["status"] in ("up", "disabled") and fs["status"] in ("up", "disabled")
        return {"status": "ok" if ok else "degraded", "layers": {"redis": redis, "firestore": fs, "memory": mem}}


def _raise_for(out: Appended) -> None:
    """A layer's refusal as the caller's error (a status no layer sends is a defect)."""
    status = out.status
    if status in ("ok", "dup"):
        return
    if status == "missing":
        raise NotFound("no such session")
    if status == "forbidden":
        raise PermissionDenied("this session belongs to another user")
    if status == "ended":
        raise FailedPrecondition("session has ended")
    if status == "full":
        raise FailedPrecondition("the session is full (its answers or bytes in Redis); end it and start a new one")
    if status == "erased":
        raise NotFound("no such session (its data was erased)")
    raise StoreError(f"unexpected store answer {status!r}", layer="redis")


def _appended(
    sid: str, out: Appended, storage: LayerName, *, summary_updated: bool = False, durable: bool = True
) -> AppendResult:
    return AppendResult(
        session_id=sid,
        seq=out.seq,
        message_count=out.seq,
        summary_updated=summary_updated,
        storage=storage,
        durable=durable,
        duplicate=out.status == "dup",
    )


def _info(st: SessionState, storage: LayerName) -> SessionInfo:
    return SessionInfo(
        session_id=st.session_id,
        user_id=st.owner,
        status="ended" if st.status == "ended" else "active",
        created_at=st.created_at,
        last_active_at=st.last_active_at,
        message_count=st.seq,
        user_info=st.user_info,
        storage=storage,
    )


def _bounded(value: Any, name: str, default: int, maximum: int) -> int:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= maximum:
        raise InvalidArgument(f"{name} must be an integer from 1 to {maximum}")
    return value


def _api_message(m: StoredMessage) -> Message:
    return Message(seq=m.seq, role=cast(Role, m.role), content=m.content, timestamp=m.timestamp, metadata=m.metadata)
