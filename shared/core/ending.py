"""Ending a session, once: snapshot, merge every source, write the end and the analytics in
one Firestore transaction, then finish in Redis.

The order holds the promise that nothing accepted is missed. Everything accepted outside
Redis is merged into Redis first; the snapshot marks the session ``ending`` (appends are
refused from then on) under this attempt's token and lease; the transaction re-reads the
outage path's pending messages (one arriving meanwhile makes it take that in and try again)
and writes ``analytics/{id}`` with the session document; only then do the Redis keys go. An
attempt that fails gives the session back only if the document says it did not end; one
whose reply was lost finishes from the document. Concurrent ends wait for the one owning
the lease and answer its result.

A full Redis (``noeviction`` at ``maxmemory``) takes no merge, but still answers the end's
scripts (``allow-oom``: they mark, read and delete) and reads: the end then goes on from what
Redis holds plus what Firestore took meanwhile, numbered after Redis' last as a merge would
have numbered them (``_numbered``). Its keys going frees memory.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections import Counter
from dataclasses import replace
from typing import Any

from shared.core import context as ctx
from shared.core.models import AGENT_ID_RE, EndResult, Summary, validate_session_id
from shared.core.recovery import Held, Recovery, check_owner
from shared.core.summaries import Summaries
from shared.errors import (
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    SessionExpired,
    StoreError,
    Unavailable,
)
from shared.store.base import CLIENT_END_REASONS, END_REASONS, ERASED, QueryRecord, SessionState, pair_queries
from shared.store.firestore.docs import state_from_doc
from shared.store.firestore.layer import Erased, PendingArrived, UsedSince
from shared.store.layers import Layers, OverLayers
from shared.store.redis.layer import EndSnapshot, RedisFull, RedisLayer

log = logging.getLogger("chat_memory.session")
_END_ROUNDS = 3  # an end re-snapshots at most this often for outage-path messages arriving


class SessionInUse(FailedPrecondition):
    """The sweep's end met a session used after its idle bound (or being ended)."""


class Ending(OverLayers):
    def __init__(self, layers: Layers, recovery: Recovery, summaries: Summaries) -> None:
        self.layers = layers
        self.recovery = recovery
        self.summaries = summaries

    def end(
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
        sid = validate_end_args(session_id, agent_id, reason, system=user_id is None)
        if not self.firestore.configured:
            raise Unavailable("session end needs Firestore, which is not configured")

        # The end needs Firestore anyway: if it is down, answer 503 before touching anything.
        snap = None
        pending: Held | None = None
        try:
            if self.redis.configured:
                pending = self._merge(sid, user_id)
                snap = self._begin(sid, user_id, idle_before)
        except StoreError as exc:
            if exc.layer != "redis":
                log.warning("session end deferred: firestore unavailable", extra={"session_id": sid})
                raise Unavailable("Firestore is unavailable; the session is kept, retry the end later") from exc
            return self._while_redis_is_down(sid, user_id, exc)
        if snap is not None:
            if snap.status == "ended" and snap.end_result:
                return EndResult(**(snap.end_result | {"already_ended": True}))
            _raise_for_snapshot(snap.status, idle_before)
            if snap.status != "ok":
                snap = None
        return self._rounds(sid, agent_id, reason, user_id, snap, pending, idle_before=idle_before)

    def _merge(self, sid: str, user_id: str | None) -> Held:
        """Merge what other layers took into Redis first; what Firestore holds. A full Redis
        takes none of it: the end takes it in from Firestore itself (``_write``)."""

        def merge() -> Held:
            self.recovery.check()
            return self.recovery.merge(sid, user_id)

        try:
            return self.recovery.run(merge)
        except RedisFull:
            log.warning("session end on a full redis: ending from what it holds", extra={"session_id": sid})
            return self.firestore.read_pending(sid)

    def end_expired(self, sid: str) -> None:
        """End a session whose Redis keys are gone, with what the other layers hold."""
        self._write(sid, None, "expired", None, None, None)

    def _rounds(
        self,
        sid: str,
        agent_id: str | None,
        reason: str,
        user_id: str | None,
        snap: EndSnapshot | None,
        pending: Held | None,
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
                snap = self._take_in(sid, user_id, snap, pending, again=False)
            for _ in range(_END_ROUNDS):
                try:
                    return self._write(sid, agent_id, reason, user_id, snap, pending, idle_before=idle_before)
                except PendingArrived:
                    # Another instance accepted a message on the outage path after this
                    # snapshot (and before the end's write): take it in, snapshot again.
                    pending = self.firestore.read_pending(sid)
                    if snap is not None:
                        snap = self._take_in(sid, user_id, snap, pending, again=True)
                except UsedSince:
                    if snap is not None:
                        self.redis.abort_end(sid, token, reopen=True)
                    raise SessionInUse("the session was used after the idle bound") from None
                except Erased:
                    raise NotFound("no such session (its data was erased)") from None
            raise StoreError("outage-path messages kept arriving during the end", layer="firestore")
        except StoreError as exc:
            if snap is not None:
                done = self._give_up(sid, token)
                if done is not None:
                    return done
            log.warning("session end deferred: firestore unavailable", extra={"session_id": sid})
            raise Unavailable("Firestore is unavailable; the session is kept, retry the end later") from exc

    def _take_in(self, sid: str, user_id: str | None, snap: EndSnapshot, held: Held, *, again: bool) -> EndSnapshot:
        """Bring outage messages into Redis under this attempt and snapshot again (``again``:
        whatever the import added). A full Redis takes none: ``_write`` numbers them after
        what Redis holds."""
        try:
            added = self.redis.import_messages(sid, held[0], end_token=snap.token).added
        except RedisFull:
            return snap
        return self._own_snapshot(sid, user_id, snap.token) if added > 0 or again else snap

    def _own_snapshot(self, sid: str, user_id: str | None, token: str) -> EndSnapshot:
        """A fresh snapshot for this attempt, which still owns the end."""
        snap = self.redis.begin_end(sid, user_id, token)
        if snap.status != "ok":
            raise StoreError("the end lost its attempt", layer="redis")
        return snap

    def _begin(self, sid: str, user_id: str | None, idle_before: float | None) -> EndSnapshot:
        """This attempt's snapshot. While another attempt owns the end, wait for it: every
        concurrent end then answers the one committed result (one Firestore transaction per
        end, not several contending on one document). Bounded by the lease, after which
        begin_end takes the end over."""
        token = uuid.uuid4().hex
        deadline = time.monotonic() + self.settings.end_lease_s + 1.0
        pause = 0.01
        while True:
            snap = self.recovery.run(lambda: self.redis.begin_end(sid, user_id, token, idle_before))
            if snap.status != "busy" or idle_before is not None or time.monotonic() > deadline:
                return snap
            time.sleep(pause)
            pause = min(2 * pause, 0.2)

    def _give_up(self, sid: str, token: str) -> EndResult | None:
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
                return self.finish(sid, doc, already=False)
        try:
            self.redis.abort_end(sid, token, reopen=known)
        except StoreError:
            pass  # stays 'ending' under this attempt: a later end takes over after the lease
        return None

    def _while_redis_is_down(self, sid: str, user_id: str | None, exc: StoreError) -> EndResult:
        """Redis holds this session's buffered analytics and recent messages: ending without
        them would lose them silently. Keep the session (503); a retried end, or the sweep,
        completes once Redis answers. (A Redis that answers but lost the session is another
        case: the end then goes on from Firestore.) Ownership and an earlier end are still
        answered from the session document."""
        try:
            doc = self.firestore.get_session(sid)
        except StoreError:
            doc = None
        if doc is not None and doc.get("status") == ERASED:
            raise NotFound("no such session (its data was erased)")
        if doc is not None:
            check_owner(doc.get("owner", ""), user_id)
            if doc.get("status") == "ended":
                return self.finish(sid, doc, already=True)
        log.warning("session end deferred: redis unavailable", extra={"session_id": sid})
        raise Unavailable("Redis is unavailable; the session is kept, retry the end later") from exc

    def _write(
        self,
        sid: str,
        agent_id: str | None,
        reason: str,
        user_id: str | None,
        snap: EndSnapshot | None,
        held: Held | None,
        *,
        idle_before: float | None = None,
    ) -> EndResult:
        """Gather every layer's part of the session and write the end (one transaction)."""
        doc = self.firestore.get_session(sid)
        if doc is not None and doc.get("status") == ERASED:
            raise NotFound("no such session (its data was erased)")
        if doc is not None:
            check_owner(doc.get("owner", ""), user_id)
            if doc.get("status") == "ended":
                return self.finish(sid, doc, already=True)
        if held is None:
            pending, pq = self.firestore.read_pending(sid) if doc is not None else ([], [])
        else:
            pending, pq = held
        mem = self.memory.snapshot(sid)
        mem_state = self.memory.state(sid)
        if snap is None and doc is None and mem_state is None:
            raise NotFound("no such session")

        base: SessionState
        if snap is not None:
            base = RedisLayer.state_from_meta(sid, snap.meta or {})
        elif doc is not None:
            base = state_from_doc(doc)
        else:
            assert mem_state is not None
            base = mem_state
        check_owner(base.owner, user_id)

        mem_msgs, mem_q = (mem[0], mem[1]) if mem and mem_state and mem_state.owner == base.owner else ([], [])
        if snap is not None and (pending or mem_msgs):
            (pending, pq), (mem_msgs, mem_q) = self._numbered(sid, base.seq, (pending, pq), (mem_msgs, mem_q))
        window = (snap.messages or []) if snap else []
        unsummarized_redis = (snap.unsummarized or []) if snap else []
        previous = (snap.summary if snap else None) or (doc or {}).get("summary")
        covered = int(previous.get("message_count", 0)) if previous else 0
        unsummarized = [m for m in ctx.merge_messages(unsummarized_redis, pending, mem_msgs) if m.seq > covered]
        queries_by_mid: dict[str, QueryRecord] = {}
        for q in [*((snap.queries or []) if snap else []), *pq, *mem_q]:
            queries_by_mid.setdefault(q.mid, q)
        queries = sorted(queries_by_mid.values(), key=lambda q: q.seq)
        everything = ctx.merge_messages(window, unsummarized_redis, pending, mem_msgs)
        pair_queries(queries, everything)
        all_seqs = [base.seq, *(m.seq for m in unsummarized), *(q.seq for q in queries)]
        if snap is None:
            # Redis is down: the outage path's high-water mark is the best count there is.
            # With a snapshot, Redis' count (after the merge above) is the true one.
            all_seqs.append(int((doc or {}).get("seq_hwm") or 0))
        message_count = max(all_seqs)
        now = self._clock()
        summary = self.summaries.final(previous, unsummarized, message_count, now)
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
        return self.finish(sid, after, already=already)

    def _numbered(self, sid: str, last: int, *held: Held) -> list[Held]:
        """Messages held outside Redis, with the numbers the merge gave them in Redis, or,
        for those it could not merge (a full Redis), the numbers it would have: after Redis'
        ``last``, in acceptance order. Their provisional numbers may repeat Redis' own (an
        instance that never saw the session numbers from what Firestore knows)."""
        outside = ctx.merge_messages(*(msgs for msgs, _ in held))
        number = self.redis.message_numbers(sid, [m.mid for m in outside])
        for m in outside:
            if m.mid not in number:
                last += 1
                number[m.mid] = last
        return [
            ([replace(m, seq=number[m.mid]) for m in msgs], [replace(q, seq=number.get(q.mid, q.seq)) for q in qs])
            for msgs, qs in held
        ]

    def finish(self, sid: str, doc: dict[str, Any], *, already: bool) -> EndResult:
        """The end is on record in Firestore: record it in Redis and forget the rest."""
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
        self.recovery.settled(sid)
        return result


def ended_error(redis: RedisLayer, sid: str) -> FailedPrecondition:
    """The 409 for an append or read of an ended session: ``session_expired`` if it ended
    because its memory was lost."""
    try:
        meta = redis.meta(sid) or {}
        reason = json.loads(meta.get("end_result") or "{}").get("end_reason")
    except (StoreError, ValueError, AttributeError):
        reason = None
    if reason == "expired":
        return SessionExpired("the session expired (its memory was lost) and was ended; start a new session")
    return FailedPrecondition("session has ended")


def validate_end_args(session_id: object, agent_id: object, reason: object, *, system: bool = False) -> str:
    """``system``: the sweep or the recovery, which may also give a reason of their own."""
    sid = validate_session_id(session_id)
    if agent_id is not None and (not isinstance(agent_id, str) or not AGENT_ID_RE.fullmatch(agent_id)):
        raise InvalidArgument("agent_id must be 1-128 characters of [A-Za-z0-9_.:@-]", details={"field": "agent_id"})
    allowed = END_REASONS if system else CLIENT_END_REASONS
    if not isinstance(reason, str) or reason not in allowed:
        raise InvalidArgument(f"reason must be one of {', '.join(CLIENT_END_REASONS)}", details={"field": "reason"})
    return sid


def _raise_for_snapshot(status: str, idle_before: float | None) -> None:
    if status == "erased":
        raise NotFound("no such session (its data was erased)")
    if status == "forbidden":
        raise PermissionDenied("this session belongs to another user")
    if status == "in_use" or (status == "busy" and idle_before is not None):
        raise SessionInUse("the session was used after the idle bound, or is being ended")
    if status == "busy":
        raise Unavailable("another end of this session is in progress; retry the end later")
