"""The orchestrator: routes every operation through the layers in the seed's order —
Redis first, Firestore second, this instance's memory last — and says in every answer
which layer served it.

Public API (kept from the seed): create_session, get_session, add_message, get_history,
get_context_for_llm, end_session_with_analytics, plus health(). Synchronous: Cloud
Functions serve Python over WSGI.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
import uuid
from collections import Counter, OrderedDict
from collections.abc import Callable
from dataclasses import replace
from typing import Any, TypeVar

from shared import context as ctx
from shared.errors import (
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    SessionExpired,
    StoreError,
    TooManySessions,
    Unavailable,
)
from shared.models import (
    AGENT_ID_RE,
    AppendResult,
    Context,
    EndResult,
    History,
    Message,
    SessionInfo,
    Summary,
    parse_message,
    parse_user_info,
    validate_session_id,
    validate_user_id,
)
from shared.settings import Settings, get_settings
from shared.store.base import QueryRecord, SessionState, StoredMessage
from shared.store.firestore_store import FirestoreLayer, PendingArrived, UsedSince
from shared.store.memory_store import MemoryLayer
from shared.store.redis_store import RedisLayer
from shared.summarizer import Summarizer, build_summarizer

log = logging.getLogger("chat_memory.session")
T = TypeVar("T")
_REASON_RE = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
_HINTS_MAX = 10_000
MAX_TOKEN_BUDGET = 1_000_000
_END_ROUNDS = 3  # an end re-snapshots at most this often for outage-path messages arriving


class SessionInUse(FailedPrecondition):
    """The sweep's end met a session used after its idle bound (or being ended)."""


class SessionManager:
    def __init__(
        self,
        settings: Settings | None = None,
        *,
        redis: RedisLayer | None = None,
        firestore: FirestoreLayer | None = None,
        memory: MemoryLayer | None = None,
        summarizer: Summarizer | None = None,
        clock: Any = time.time,
    ) -> None:
        self.settings = settings or get_settings()
        self.redis = redis or RedisLayer(self.settings)
        self.firestore = firestore or FirestoreLayer(self.settings)
        self.memory = memory or MemoryLayer(self.settings, clock=clock)
        self.summarizer = summarizer or build_summarizer(self.settings)
        self._clock = clock
        self._lock = threading.Lock()
        # Highest seq this instance has seen per session: lets a message accepted by a
        # fallback layer continue the numbering, so a later merge keeps acceptance order.
        self._seq_hint: OrderedDict[str, int] = OrderedDict()
        # Owner per session as a store last confirmed it: while both stores are down this
        # is the only way to accept a message for a session this instance did not create.
        self._owners: OrderedDict[str, str] = OrderedDict()
        # Sessions for which this instance accepted messages outside Redis; merged back
        # into Redis on this instance's next successful Redis operation on the session.
        self._reconcile: set[str] = set()
        self._recoveries_seen = 0
        # When this instance last saw Redis come back (monotonic seconds; None: never).
        self._recovered_at: float | None = None

    # ------------------------------------------------------------------ helpers
    def _hint(self, sid: str, seq: int | None = None) -> int:
        with self._lock:
            if seq is not None:
                self._seq_hint[sid] = max(seq, self._seq_hint.get(sid, 0))
                self._seq_hint.move_to_end(sid)
                while len(self._seq_hint) > _HINTS_MAX:
                    self._seq_hint.popitem(last=False)
            return self._seq_hint.get(sid, 0)

    def _know_owner(self, sid: str, owner: str | None) -> None:
        if not owner:
            return
        with self._lock:
            self._owners[sid] = owner
            self._owners.move_to_end(sid)
            while len(self._owners) > _HINTS_MAX:
                self._owners.popitem(last=False)

    @staticmethod
    def _check_owner(owner: str, user_id: str | None) -> None:
        if user_id is not None and owner != user_id:
            raise PermissionDenied("this session belongs to another user")

    def _hydrate(self, sid: str, user_id: str | None = None) -> SessionState | None:
        """Redis does not know the session: rebuild its state there from Firestore or from
        this instance's memory, after checking the caller owns it. A session Redis held and
        lost (its keys expired or were evicted, or Redis restarted empty) cannot be rebuilt:
        its messages are gone, so it is ended as ``expired`` with what the other layers hold
        rather than restarted with an empty context. Returns the state (``ended`` then), or
        None if no layer knows the session."""
        doc = None
        if self.firestore.configured:
            try:
                doc = self.firestore.get_session(sid)
            except StoreError:
                # A session created here while both stores were down is known from memory;
                # any other needs Firestore's word: the caller falls back.
                if not self.memory.local_only(sid):
                    raise
        if doc is not None:
            state = FirestoreLayer.state_from_doc(doc)
            self._check_owner(state.owner, user_id)
            self._know_owner(sid, state.owner)
            if state.status != "active":
                return state
            if doc.get("in_redis", True):
                return self._expire(sid, state)
            if self.redis.create(state, fs_doc=True):
                try:
                    self.firestore.set_in_redis(sid, True)
                except StoreError:
                    pass  # stays False: a later loss is then taken for a first hydrate
            if int(doc.get("pending_count") or 0) > 0:
                self._reconcile.add(sid)
            return state
        local = self.memory.state(sid)
        if local is not None:
            self._check_owner(local.owner, user_id)
            held = self.memory.snapshot(sid)
            # Redis numbers the held messages when they are merged: it starts before them.
            base = min(m.seq for m in held[0]) - 1 if held and held[0] else local.seq
            self.redis.create(replace(local, seq=base), fs_doc=False)
            self._reconcile.add(sid)
            return local
        return None

    def _expire(self, sid: str, state: SessionState) -> SessionState:
        """End a session whose Redis keys are gone, with what Firestore and this instance's
        memory hold (reason ``expired``); appends to it then answer 409 ``session_expired``."""
        # A placeholder (status 'expiring', which appends refuse) keeps the owner in Redis
        # for the ended state and tells other instances the session is being ended.
        if not self.redis.create(replace(state, status="expiring", seq=0), fs_doc=True):
            meta = self.redis.meta(sid) or {}
            return state if meta.get("status") == "active" else replace(state, status="ended")
        log.warning("session memory expired: ending it", extra={"session_id": sid})
        try:
            self._end(sid, None, "expired", None, None, None)
        except StoreError:
            try:
                self.redis.forget_expiring(sid)
            except StoreError:
                pass  # the placeholder expires with the session TTL
            raise
        return replace(state, status="ended")

    def _ended_error(self, sid: str) -> FailedPrecondition:
        try:
            meta = self.redis.meta(sid) or {}
            reason = json.loads(meta.get("end_result") or "{}").get("end_reason")
        except (StoreError, ValueError, AttributeError):
            reason = None
        if reason == "expired":
            return SessionExpired("the session expired (its memory was lost) and was ended; start a new session")
        return FailedPrecondition("session has ended")

    def _write_missing_doc(self, sid: str) -> None:
        """A session created while Firestore was down gets its document on a later
        operation, so the sweep sees it. Never fails the operation: the next one retries
        (the write has a short deadline, so a hung Firestore costs an append at most that,
        once per breaker cool-down)."""
        if not self.firestore.configured or self.firestore.breaker.state() == "open":
            return
        try:
            meta = self.redis.meta(sid)
            if not meta or meta.get("fs_doc") != "0" or meta.get("status") != "active":
                return
            self.firestore.ensure_session(RedisLayer.state_from_meta(sid, meta))
            self.redis.mark_doc(sid)
            log.info("session document written after a firestore outage", extra={"session_id": sid})
        except StoreError:
            pass

    @staticmethod
    def _redis_op(fn: Callable[[], T]) -> T:
        """Run a Redis-path operation; after a connection error that may only mean Redis
        restarted, run it once more (it begins by merging what other layers accepted)."""
        try:
            return fn()
        except StoreError as exc:
            if not exc.retryable:
                raise
            return fn()

    def _check_recovery(self) -> None:
        """After a Redis outage, learn which sessions hold messages accepted elsewhere.

        Any instance may have accepted messages in Firestore while Redis was down, and the
        next read may land on another one. So when this instance's breaker is due to probe,
        it probes before serving; when it sees Redis come back, it scans Firestore once for
        sessions with outage-held messages and merges each before serving it.
        """
        br = self.redis.breaker
        if br.state() == "half_open":
            self.redis.ping()  # the probe; records success or failure on the breaker
        if br.recoveries == self._recoveries_seen:
            return
        self._recoveries_seen = br.recoveries
        self._recovered_at = br.recovered_at if br.recovered_at is not None else time.monotonic()
        self._reconcile.update(self.memory.sessions_with_messages())
        if self.firestore.configured:
            try:
                found = self.firestore.sessions_with_pending()
            except StoreError:
                return
            self._reconcile.update(found)
            log.info("redis is back: sessions to merge", extra={"count": len(found)})

    def _hydrate_owned(self, sid: str, user_id: str | None) -> SessionState:
        """_hydrate, for a caller who must own the session (NotFound / PermissionDenied)."""
        state = self._hydrate(sid, user_id)
        if state is None:
            raise NotFound("no such session")
        return state

    def _in_recovery_window(self) -> bool:
        """Right after Redis came back, other instances may still be inside their breaker's
        cool-down and accept messages in Firestore after our one-time scan: for that long
        (and a margin), every operation on a session merges its Firestore-held messages."""
        if self._recovered_at is None:
            return False
        return time.monotonic() - self._recovered_at < 2 * self.settings.redis_breaker_cooldown_s + 1.0

    def _maybe_reconcile(self, sid: str, user_id: str | None = None) -> None:
        """Merge what was accepted outside Redis back into Redis, if anything may be."""
        self._check_recovery()
        if sid in self._reconcile or self._in_recovery_window():
            try:
                self._merge_into_redis(sid, user_id)
            except StoreError as exc:
                if exc.layer == "redis":
                    raise
                # Firestore is down: Redis still serves; merge on a later operation.

    def _merge_into_redis(self, sid: str, user_id: str | None = None) -> tuple[list[StoredMessage], list[QueryRecord]]:
        """Append to Redis, renumbered and exactly once, the messages of ``sid`` held by
        Firestore (outage path) and by this instance's memory; if Redis does not know the
        session, hydrate it first. Memory forgets only what was merged. Returns what
        Firestore held. Raises StoreError (with its layer) if a backend is down."""
        msgs: list[StoredMessage] = []
        queries: list[QueryRecord] = []
        if self.firestore.configured:
            msgs, queries = self.firestore.read_pending(sid)
        pending = (list(msgs), list(queries))
        snap = self.memory.snapshot(sid)
        mem_state = self.memory.state(sid)
        held = snap[0] if snap is not None and mem_state is not None else []
        merged_mem: set[str] = set()
        if msgs or held:
            meta = self.redis.meta(sid)
            if meta is None:
                state = self._hydrate(sid, user_id)
                if state is None or state.status != "active":
                    # unknown everywhere, or ended (an expiry's end took what was held)
                    self._reconcile.discard(sid)
                    return pending
                meta = self.redis.meta(sid)
                if meta is None:
                    return pending  # lost again meanwhile: a later operation merges
            # A caller who does not own the session merges nothing into it.
            self._check_owner(meta.get("owner", ""), user_id)
            # Memory holds messages only for an owner a store confirmed; merge them into
            # that owner's session only.
            if held and mem_state is not None and meta.get("owner") == mem_state.owner:
                have = {x.mid for x in msgs}
                msgs = msgs + [m for m in held if m.mid not in have]
                assert snap is not None
                queries = queries + snap[1]
                merged_mem = {m.mid for m in held}
        if msgs:
            out = self.redis.import_messages(sid, msgs, queries)
            if out.added < 0:
                return pending  # Redis lost the session meanwhile: nothing merged
            if out.due_seq:
                self._roll_summary(sid, out.due_seq, out.previous_summary, out.unsummarized or [], self._clock())
            log.info("merged messages back into redis", extra={"session_id": sid, "count": out.added})
        self._reconcile.discard(sid)
        if merged_mem:
            self.memory.drop_messages(sid, merged_mem)
        return pending

    # ------------------------------------------------------------------ create / get
    def create_session(self, user_info: dict[str, Any] | None = None, *, user_id: str | None = None) -> SessionInfo:
        info = parse_user_info(user_info)
        uid = validate_user_id(user_id if user_id is not None else info.get("user_id"))
        info.pop("user_id", None)
        now = self._clock()
        sid = uuid.uuid4().hex
        state = SessionState(sid, uid, "active", now, now, 0, info)
        self._claim_session_slot(uid, sid, now)
        fs_ok = False
        if self.firestore.configured:
            try:
                self.firestore.create_session(state)
                fs_ok = True
            except StoreError:
                pass
        storage = "memory"
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
        self._know_owner(sid, uid)
        log.info("session created", extra={"session_id": sid, "storage": storage, "user_id": uid})
        return SessionInfo(
            session_id=sid,
            user_id=uid,
            status="active",
            created_at=now,
            last_active_at=now,
            message_count=0,
            user_info=info,
            storage=storage,  # type: ignore[arg-type]
        )

    def _claim_session_slot(self, uid: str, sid: str, now: float) -> None:
        # Counted in Redis so every instance sees the same count. Without Redis the cap is
        # not enforced: creating a session must not depend on the layer that may be down.
        if not self.redis.configured:
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
        if self.redis.configured:
            try:
                meta = self.redis.meta(sid)
                if meta:
                    self._check_owner(meta.get("owner", ""), user_id)
                    return self._info(RedisLayer.state_from_meta(sid, meta), "redis")
            except StoreError:
                pass
        if self.firestore.configured:
            try:
                doc = self.firestore.get_session(sid)
                if doc:
                    st = FirestoreLayer.state_from_doc(doc)
                    self._check_owner(st.owner, user_id)
                    return self._info(st, "firestore")
            except StoreError:
                pass
        local = self.memory.state(sid)
        if local is None:
            raise NotFound("no such session")
        self._check_owner(local.owner, user_id)
        return self._info(local, "memory")

    @staticmethod
    def _info(st: SessionState, storage: str) -> SessionInfo:
        return SessionInfo(
            session_id=st.session_id,
            user_id=st.owner,
            status="ended" if st.status == "ended" else "active",
            created_at=st.created_at,
            last_active_at=st.last_active_at,
            message_count=st.seq,
            user_info=st.user_info,
            storage=storage,  # type: ignore[arg-type]
        )

    # ------------------------------------------------------------------ append
    def add_message(
        self,
        session_id: str,
        role: str,
        content: str,
        metadata: dict[str, Any] | None = None,
        *,
        client_message_id: str | None = None,
        user_id: str | None = None,
    ) -> AppendResult:
        sid = validate_session_id(session_id)
        m = parse_message(role, content, metadata, client_message_id)
        cmid = m.client_message_id
        now = self._clock()
        msg = StoredMessage(0, cmid or "s-" + uuid.uuid4().hex[:20], m.role, m.content, now, m.metadata)

        if self.redis.configured:
            try:
                return self._redis_op(lambda: self._append_redis(sid, msg, cmid, user_id, now))
            except StoreError:
                pass
        if self.firestore.configured:
            try:
                return self._append_firestore(sid, msg, cmid, user_id)
            except StoreError:
                pass
        return self._append_memory(sid, msg, cmid, user_id)

    def _append_redis(
        self, sid: str, msg: StoredMessage, cmid: str | None, user_id: str | None, now: float
    ) -> AppendResult:
        self._maybe_reconcile(sid, user_id)
        out = self.redis.append(sid, user_id, msg, now)
        if out.status == "missing":
            if self._hydrate_owned(sid, user_id).status != "active":
                raise self._ended_error(sid)
            self._maybe_reconcile(sid, user_id)
            out = self.redis.append(sid, user_id, msg, now)
        if out.status == "ended":
            raise self._ended_error(sid)
        self._raise_for(out.status)
        self._hint(sid, out.seq)
        self._know_owner(sid, user_id)
        if out.doc_missing:
            self._write_missing_doc(sid)
        updated = False
        if out.status == "ok" and out.summary_due:
            updated = self._roll_summary(sid, out.seq, out.previous_summary, out.unsummarized or [], now)
        elif out.status == "dup":
            updated = out.summary_due
        log.info(
            "message appended",
            extra={
                "session_id": sid,
                "storage": "redis",
                "seq": out.seq,
                "role": msg.role,
                "duplicate": out.status == "dup",
            },
        )
        return _appended(sid, out.seq, "redis", summary_updated=updated, duplicate=out.status == "dup")

    @staticmethod
    def _raise_for(status: str) -> None:
        if status in ("ok", "dup"):
            return
        if status == "missing":
            raise NotFound("no such session")
        if status == "forbidden":
            raise PermissionDenied("this session belongs to another user")
        if status == "ended":
            raise FailedPrecondition("session has ended")
        if status == "full":
            raise FailedPrecondition("the session's analytics buffer is full; end the session and start a new one")
        raise StoreError(f"unexpected store answer {status!r}", layer="redis")

    def _roll_summary(
        self, sid: str, seq: int, previous: dict[str, Any] | None, unsummarized: list[StoredMessage], now: float
    ) -> bool:
        """Summarise the messages not yet covered, up to ``seq``. Never raises: a failing
        summary must not fail the append (the next claim covers this window too)."""
        try:
            window = [m for m in unsummarized if m.seq <= seq]
            if previous and int(previous.get("message_count", 0)) >= seq:
                return False
            text = self.summarizer.summarize(previous.get("text") if previous else None, window)
            stored = self.redis.store_summary(sid, {"text": text, "message_count": seq, "updated_at": now})
            log.info("rolling summary", extra={"session_id": sid, "covers": seq, "stored": stored})
            return stored
        except Exception as exc:  # noqa: BLE001 - see docstring
            log.warning("rolling summary failed", extra={"session_id": sid, "error": type(exc).__name__})
            return False

    def _append_firestore(self, sid: str, msg: StoredMessage, cmid: str | None, user_id: str | None) -> AppendResult:
        local = self.memory.state(sid)
        out = self.firestore.append(
            sid, user_id, msg, cmid, self._hint(sid), base=local, base_in_redis=not self.memory.local_only(sid)
        )
        if out.status == "missing" and local is None:
            # Unknown to Firestore; Redis may know it but is down: keep it here, not lost.
            raise StoreError("session unknown to firestore", layer="firestore")
        self._raise_for(out.status)
        self._hint(sid, out.seq)
        self._know_owner(sid, user_id)
        self._reconcile.add(sid)
        log.info("message appended", extra={"session_id": sid, "storage": "firestore", "seq": out.seq})
        return _appended(sid, out.seq, "firestore", duplicate=out.status == "dup")

    def _append_memory(self, sid: str, msg: StoredMessage, cmid: str | None, user_id: str | None) -> AppendResult:
        state = self.memory.state(sid)
        if state is None:
            # Neither store can say who owns the session: accept it only for the owner a
            # store confirmed to this instance before. Guessing would make the caller its
            # owner here and, once Firestore is back, in its document.
            with self._lock:
                owner = self._owners.get(sid)
            if owner is None:
                raise Unavailable("session storage is unavailable; try again shortly")
            self._check_owner(owner, user_id)
            now = self._clock()
            state = SessionState(sid, owner, "active", now, now, self._hint(sid))
            created = self.memory.create(state, local_only=False)
        else:
            self._check_owner(state.owner, user_id)
            created = True
        status, seq = self.memory.append(sid, msg, cmid, self._hint(sid)) if created else ("full", 0)
        if status == "full":
            # Refused rather than stored and later dropped: the caller retries once a store is back.
            raise Unavailable("no store is reachable and this instance's memory is full; retry later")
        self._raise_for(status)
        self._hint(sid, seq)
        self._reconcile.add(sid)
        log.warning("message kept in instance memory only", extra={"session_id": sid, "seq": seq})
        return _appended(sid, seq, "memory", durable=False, duplicate=status == "dup")

    # ------------------------------------------------------------------ reads
    def _read(
        self, sid: str, n: int, user_id: str | None
    ) -> tuple[list[StoredMessage], dict[str, Any] | None, str, bool]:
        """Last ``n`` messages and the summary: (messages, summary, layer, durable)."""
        if self.redis.configured:
            try:
                got = self._redis_op(lambda: self._read_redis(sid, n, user_id))
                if got is not None:
                    return got[0], got[1], "redis", True
            except StoreError:
                pass
        known_missing = not self.firestore.configured
        if self.firestore.configured:
            try:
                doc = self.firestore.get_session(sid)
                if doc is not None:
                    return self._read_firestore(sid, doc, n, user_id)
                known_missing = True  # the durable record says: no such session
            except StoreError:
                pass
        state = self.memory.state(sid)
        snap = self.memory.snapshot(sid)
        if state is None or snap is None:
            if known_missing:
                raise NotFound("no such session")
            raise Unavailable("session storage is unavailable; try again shortly")
        self._check_owner(state.owner, user_id)
        return snap[0][-n:] if n else [], None, "memory", False

    def _read_redis(
        self, sid: str, n: int, user_id: str | None
    ) -> tuple[list[StoredMessage], dict[str, Any] | None] | None:
        """None when Redis cannot answer for this session (ended: see the document)."""
        self._maybe_reconcile(sid, user_id)
        out = self.redis.read(sid, user_id, n)
        if out.status == "missing":
            if self._hydrate_owned(sid, user_id).status != "active":
                return None
            self._maybe_reconcile(sid, user_id)
            out = self.redis.read(sid, user_id, n)
        if out.status == "forbidden":
            raise PermissionDenied("this session belongs to another user")
        self._know_owner(sid, user_id)
        if out.doc_missing and out.session_status == "active":
            self._write_missing_doc(sid)
        if out.status == "ok" and out.session_status != "ended":
            return out.messages or [], out.summary
        return None  # ended: the final window and summary live on the session document

    def _read_firestore(
        self, sid: str, doc: dict[str, Any], n: int, user_id: str | None
    ) -> tuple[list[StoredMessage], dict[str, Any] | None, str, bool]:
        self._check_owner(doc.get("owner", ""), user_id)
        if doc.get("status") == "ended":
            msgs = [StoredMessage(**m) for m in doc.get("final_messages") or []]
        else:
            pending, _ = self.firestore.read_pending(sid)
            mem = self.memory.snapshot(sid)
            msgs = ctx.merge_messages(pending, mem[0] if mem else [])
        return msgs[-n:] if n else [], doc.get("summary"), "firestore", True

    def get_history(self, session_id: str, limit: int | None = None, *, user_id: str | None = None) -> History:
        sid = validate_session_id(session_id)
        limit = self._bounded(limit, "limit", self.settings.history_max_limit, self.settings.history_max_limit)
        msgs, _, layer, durable = self._read(sid, limit, user_id)
        return History(
            session_id=sid,
            messages=[_api_message(m) for m in msgs],
            storage=layer,  # type: ignore[arg-type]
            durable=durable,
        )

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
        n = self._bounded(max_messages, "max_messages", w, w)
        if token_budget is not None:
            self._bounded(token_budget, "token_budget", MAX_TOKEN_BUDGET, MAX_TOKEN_BUDGET)
        msgs, summary, layer, durable = self._read(sid, n, user_id)
        text = summary.get("text") if summary else None
        msgs = ctx.fit_budget(msgs, text, token_budget)
        formatted = ctx.format_context(msgs, summary)
        return Context(
            session_id=sid,
            messages=[_api_message(m) for m in msgs],
            summary=Summary(**summary) if summary else None,
            formatted_context=formatted,
            storage=layer,  # type: ignore[arg-type]
            durable=durable,
            estimated_tokens=ctx.estimate_tokens(formatted),
        )

    @staticmethod
    def _bounded(value: Any, name: str, default: int, maximum: int) -> int:
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= maximum:
            raise InvalidArgument(f"{name} must be an integer from 1 to {maximum}")
        return value

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
        """End the session once. ``idle_before`` (the sweep): only if the session was not
        used after it, checked atomically with the snapshot; else SessionInUse, nothing
        changed (nor does the sweep wait for another end of the session)."""
        sid = _validate_end_args(session_id, agent_id, reason)
        if not self.firestore.configured:
            raise Unavailable("session end needs Firestore, which is not configured")

        # Everything accepted outside Redis goes into Redis first (renumbered, exactly
        # once), so the snapshot below holds every message. The end needs Firestore anyway:
        # if it is down, answer 503 before touching anything.
        snap = None
        pending: tuple[list[StoredMessage], list[QueryRecord]] | None = None
        try:
            if self.redis.configured:

                def merge() -> tuple[list[StoredMessage], list[QueryRecord]]:
                    self._check_recovery()
                    return self._merge_into_redis(sid, user_id)

                pending = self._redis_op(merge)
                snap = self._begin_end(sid, user_id, idle_before)
        except StoreError as exc:
            if exc.layer != "redis":
                log.warning("session end deferred: firestore unavailable", extra={"session_id": sid})
                raise Unavailable("Firestore is unavailable; the session is kept, retry the end later") from exc
            return self._end_while_redis_is_down(sid, user_id, exc)
        if snap is not None:
            if snap.status == "ended" and snap.end_result:
                return EndResult(**(snap.end_result | {"already_ended": True}))
            _raise_for_snapshot(snap.status, idle_before)
            if snap.status != "ok":
                snap = None
        return self._end_rounds(sid, agent_id, reason, user_id, snap, pending, idle_before=idle_before)

    def _end_rounds(
        self,
        sid: str,
        agent_id: str | None,
        reason: str,
        user_id: str | None,
        snap: Any,
        pending: tuple[list[StoredMessage], list[QueryRecord]] | None,
        *,
        idle_before: float | None,
    ) -> EndResult:
        """Write the end; an outage-path message arriving meanwhile is taken in and the
        write tried again. On failure, give the attempt up without reopening an end that
        happened."""
        token = snap.token if snap is not None else ""
        try:
            if snap is not None and pending and pending[0]:
                # The merge above is refused while another attempt's snapshot stands (one
                # this end has just taken over): bring the outage messages in under this one.
                if self.redis.import_messages(sid, *pending, end_token=token).added > 0:
                    snap = self._own_snapshot(sid, user_id, token)
            for _ in range(_END_ROUNDS):
                try:
                    return self._end(sid, agent_id, reason, user_id, snap, pending, idle_before=idle_before)
                except PendingArrived:
                    # Another instance accepted a message on the outage path after this
                    # snapshot (and before the end's write): take it in, snapshot again.
                    pending = self.firestore.read_pending(sid)
                    if snap is not None:
                        self.redis.import_messages(sid, *pending, end_token=token)
                        snap = self._own_snapshot(sid, user_id, token)
                except UsedSince:
                    if snap is not None:
                        self.redis.abort_end(sid, token, reopen=True)
                    raise SessionInUse("the session was used after the idle bound") from None
            raise StoreError("outage-path messages kept arriving during the end", layer="firestore")
        except StoreError as exc:
            if snap is not None:
                done = self._give_up_end(sid, token)
                if done is not None:
                    return done
            log.warning("session end deferred: firestore unavailable", extra={"session_id": sid})
            raise Unavailable("Firestore is unavailable; the session is kept, retry the end later") from exc

    def _own_snapshot(self, sid: str, user_id: str | None, token: str) -> Any:
        """A fresh snapshot for this attempt, which still owns the end."""
        snap = self.redis.begin_end(sid, user_id, token)
        if snap.status != "ok":
            raise StoreError("the end lost its attempt", layer="redis")
        return snap

    def _begin_end(self, sid: str, user_id: str | None, idle_before: float | None) -> Any:
        """This attempt's snapshot. While another attempt owns the end, wait for it: every
        concurrent end then answers the one committed result (one Firestore transaction per
        end, not several contending on one document). Bounded by the lease, after which
        begin_end takes the end over."""
        token = uuid.uuid4().hex
        deadline = time.monotonic() + self.settings.end_lease_s + 1.0
        pause = 0.01
        while True:
            snap = self._redis_op(lambda: self.redis.begin_end(sid, user_id, token, idle_before))
            if snap.status != "busy" or idle_before is not None or time.monotonic() > deadline:
                return snap
            time.sleep(pause)
            pause = min(2 * pause, 0.2)

    def _give_up_end(self, sid: str, token: str) -> EndResult | None:
        """This attempt's Firestore write failed, or its reply was lost. If the document
        says ended, the write landed: finish. Reopen the session only if it says not; if it
        cannot be read, keep the session 'ending' (nothing accepted that the write, if it
        landed, would miss) and let any later end take over at once."""
        try:
            doc = self.firestore.reread_session(sid)
        except StoreError:
            doc, known = None, False
        else:
            known = True
            if doc is not None and doc.get("status") == "ended":
                return self._finish(sid, doc, already=False)
        try:
            self.redis.abort_end(sid, token, reopen=known)
        except StoreError:
            pass  # stays 'ending' under this attempt: a later end takes over after the lease
        return None

    def _end_while_redis_is_down(self, sid: str, user_id: str | None, exc: StoreError) -> EndResult:
        """Redis holds this session's buffered analytics and recent messages: ending without
        them would lose them silently. Keep the session (503); a retried end, or the sweep,
        completes once Redis answers. (A Redis that answers but lost the session is another
        case: the end then goes on from Firestore.) Ownership and an earlier end are still
        answered from the session document."""
        try:
            doc = self.firestore.get_session(sid)
        except StoreError:
            doc = None
        if doc is not None:
            self._check_owner(doc.get("owner", ""), user_id)
            if doc.get("status") == "ended":
                return self._finish(sid, doc, already=True)
        log.warning("session end deferred: redis unavailable", extra={"session_id": sid})
        raise Unavailable("Redis is unavailable; the session is kept, retry the end later") from exc

    def _end(
        self,
        sid: str,
        agent_id: str | None,
        reason: str,
        user_id: str | None,
        snap: Any,
        held: tuple[list[StoredMessage], list[QueryRecord]] | None,
        *,
        idle_before: float | None = None,
    ) -> EndResult:
        doc = self.firestore.get_session(sid)
        if doc is not None:
            self._check_owner(doc.get("owner", ""), user_id)
            if doc.get("status") == "ended":
                return self._finish(sid, doc, already=True)
        if held is None:
            pending, pq = self.firestore.read_pending(sid) if doc is not None else ([], [])
        else:
            pending, pq = held
        mem = self.memory.snapshot(sid)
        mem_state = self.memory.state(sid)
        if snap is None and doc is None and mem_state is None:
            raise NotFound("no such session")

        if snap is not None:
            base = RedisLayer.state_from_meta(sid, snap.meta)
        elif doc is not None:
            base = FirestoreLayer.state_from_doc(doc)
        else:
            assert mem_state is not None
            base = mem_state
        self._check_owner(base.owner, user_id)

        mem_msgs, mem_q = (mem[0], mem[1]) if mem and mem_state and mem_state.owner == base.owner else ([], [])
        previous = (snap.summary if snap else None) or (doc or {}).get("summary")
        covered = int(previous.get("message_count", 0)) if previous else 0
        unsummarized = [
            m for m in ctx.merge_messages(snap.unsummarized if snap else [], pending, mem_msgs) if m.seq > covered
        ]
        queries_by_mid: dict[str, QueryRecord] = {}
        for q in [*(snap.queries if snap else []), *pq, *mem_q]:
            queries_by_mid.setdefault(q.mid, q)
        queries = sorted(queries_by_mid.values(), key=lambda q: q.seq)
        everything = ctx.merge_messages(
            snap.messages if snap else [], snap.unsummarized if snap else [], pending, mem_msgs
        )
        _pair_queries(queries, everything)
        all_seqs = [base.seq, *(m.seq for m in unsummarized), *(q.seq for q in queries)]
        if snap is None:
            # Redis is down: the outage path's high-water mark is the best count there is.
            # With a snapshot, Redis' count (after the merge above) is the true one.
            all_seqs.append(int((doc or {}).get("seq_hwm") or 0))
        message_count = max(all_seqs)
        now = self._clock()

        summary = previous
        if unsummarized:
            try:
                text = self.summarizer.summarize(previous.get("text") if previous else None, unsummarized)
            except Exception:  # noqa: BLE001 - the end must not fail on a summary
                text = (previous or {}).get("text") or ""
            summary = {"text": text, "message_count": message_count, "updated_at": now}
        # answers that cited each entry, for kb_usage.use_count
        kb_uses = Counter(s for q in queries for s in set(q.sources))
        kb_sources = sorted(kb_uses)
        fields = {
            "pending_count": 0,
            "status": "ended",
            "ended_at": now,
            "end_reason": reason,
            "agent_id": agent_id,
            "message_count": message_count,
            "queries_recorded": len(queries),
            "summary": summary,
            "kb_sources": kb_sources,
            "kb_source_uses": [kb_uses[s] for s in kb_sources],
            # the last window, so history and context still answer after the caches go
            "final_messages": [m.to_dict() for m in everything[-self.settings.message_window :]],
            "last_active_at": max(base.last_active_at, *(m.timestamp for m in unsummarized))
            if unsummarized
            else base.last_active_at,
        }
        already, after = self.firestore.end_session(
            sid, base, fields, queries, {m.mid for m in pending}, idle_before=idle_before
        )
        log.info(
            "session ended",
            extra={"session_id": sid, "queries": len(queries), "reason": reason, "already_ended": already},
        )
        return self._finish(sid, after, already=already)

    def _finish(self, sid: str, doc: dict[str, Any], *, already: bool) -> EndResult:
        result = EndResult(
            session_id=sid,
            summary=Summary(**doc["summary"]) if doc.get("summary") else None,
            message_count=int(doc.get("message_count") or 0),
            queries_recorded=int(doc.get("queries_recorded") or 0),
            end_reason=doc.get("end_reason") or "completed",
            already_ended=already,
        )
        if self.redis.configured:
            try:
                if self.redis.finish_end(sid, result.model_dump(exclude={"already_ended"})) == "reopened":
                    # Reopened after the committed snapshot (an attempt that outlived its
                    # lease): what Redis took since is not in the final state. Say so.
                    log.error("session ended with messages accepted after its snapshot", extra={"session_id": sid})
            except StoreError:
                pass  # Firestore is the record; the Redis keys expire on their own
        self.memory.drop(sid)
        self._reconcile.discard(sid)
        return result

    # ------------------------------------------------------------------ user stats
    def get_user_stats(self, user_id: str) -> dict[str, Any]:
        """The caller's own totals and recent sessions, as the trigger wrote them."""
        uid = validate_user_id(user_id)
        try:
            doc = self.firestore.get_user(uid)
        except StoreError as exc:
            raise Unavailable("user stats are unavailable; try again shortly") from exc
        doc = doc or {}
        return {
            "user_id": uid,
            "total_sessions": int(doc.get("total_sessions") or 0),
            "total_messages": int(doc.get("total_messages") or 0),
            "total_queries": int(doc.get("total_queries") or 0),
            "last_active_at": doc.get("last_active_at"),
            "recent_sessions": list(doc.get("recent_sessions") or []),
        }

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


def _appended(
    sid: str, seq: int, storage: str, *, summary_updated: bool = False, durable: bool = True, duplicate: bool = False
) -> AppendResult:
    return AppendResult(
        session_id=sid,
        seq=seq,
        message_count=seq,
        summary_updated=summary_updated,
        storage=storage,  # type: ignore[arg-type]
        durable=durable,
        duplicate=duplicate,
    )


def _validate_end_args(session_id: object, agent_id: object, reason: object) -> str:
    sid = validate_session_id(session_id)
    if agent_id is not None and (not isinstance(agent_id, str) or not AGENT_ID_RE.fullmatch(agent_id)):
        raise InvalidArgument("agent_id must be 1-128 characters of [A-Za-z0-9_.:@-]")
    if not isinstance(reason, str) or not _REASON_RE.fullmatch(reason):
        raise InvalidArgument("reason must be 1-32 characters of [a-z0-9_], starting with a letter")
    return sid


def _raise_for_snapshot(status: str, idle_before: float | None) -> None:
    if status == "forbidden":
        raise PermissionDenied("this session belongs to another user")
    if status == "in_use" or (status == "busy" and idle_before is not None):
        raise SessionInUse("the session was used after the idle bound, or is being ended")
    if status == "busy":
        raise Unavailable("another end of this session is in progress; retry the end later")


def _pair_queries(queries: list[QueryRecord], messages: list[StoredMessage]) -> None:
    """An answer accepted by one layer may answer a question another layer holds (an
    outage between the two): pair it with the user message just before it."""
    by_seq = {m.seq: m for m in messages}
    for q in queries:
        if q.query is None:
            prev = by_seq.get(q.seq - 1)
            if prev is not None and prev.role == "user":
                q.query = prev.content


def _api_message(m: StoredMessage) -> Message:
    return Message(
        seq=m.seq,
        role=m.role,
        content=m.content,
        timestamp=m.timestamp,  # type: ignore[arg-type]
        metadata=m.metadata,
    )


_manager: SessionManager | None = None
_manager_lock = threading.Lock()


def get_manager() -> SessionManager:
    """The instance's manager, built on first use and reused across invocations."""
    global _manager
    if _manager is None:
        with _manager_lock:
            if _manager is None:
                _manager = SessionManager()
                if _manager.redis.configured:
                    # Logs a warning at start-up if Redis may evict single session keys; in
                    # the background, so that a Redis down at start-up delays no request.
                    threading.Thread(target=_manager.redis.eviction_policy, daemon=True).start()
    return _manager


def reset_manager() -> None:
    global _manager
    with _manager_lock:
        _manager = None
