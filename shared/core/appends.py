"""Appending one message: through Redis (its Lua script numbers it), else Firestore, else
this instance's memory, exactly once per message id on every layer."""

from __future__ import annotations

import logging
from dataclasses import replace

from shared.core.ending import ended_error
from shared.core.failover import failover
from shared.core.models import AppendResult
from shared.core.recovery import InstanceMemo, Recovery, check_owner
from shared.core.summaries import Summaries
from shared.errors import FailedPrecondition, NotFound, PermissionDenied, StoreError, Unavailable
from shared.store.base import Appended, AppendRequest, CreateRequest, LayerName, SessionState, StoredMessage
from shared.store.layers import Layers, OverLayers

log = logging.getLogger("chat_memory.session")


class Appends(OverLayers):
    def __init__(self, layers: Layers, memo: InstanceMemo, recovery: Recovery, summaries: Summaries) -> None:
        self.layers = layers
        self.memo = memo
        self.recovery = recovery
        self.summaries = summaries

    def append(self, sid: str, msg: StoredMessage, user_id: str | None, cmid: str | None) -> AppendResult:
        """Exactly once per ``cmid`` on every layer (None: a server-made id, never retried)."""
        req = AppendRequest(sid, msg, user_id, cmid, msg.timestamp)
        return failover(
            [
                (self.redis, lambda: self.recovery.run(lambda: self._append_redis(req))),
                (self.firestore, lambda: self._append_firestore(req)),
                (self.memory, lambda: self._append_memory(req)),
            ]
        )

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
            created = self.memory.create(CreateRequest(state))
        else:
            check_owner(state.owner, user_id)
            created = True
        out = self.memory.append(replace(req, seq_hint=self.memo.seq(sid))) if created else Appended("no_room")
        if out.status == "no_room":
            # Refused rather than stored and later dropped: the caller retries once a store is back.
            # (A session past its own bound is 'full': the 409 every layer answers.)
            raise Unavailable("no store is reachable and this instance's memory is full; retry later")
        _raise_for(out)
        self.memo.seq(sid, out.seq)
        self.recovery.held_elsewhere(sid)
        log.warning("message kept in instance memory only", extra={"session_id": sid, "seq": out.seq})
        return _appended(sid, out, "memory", durable=False)


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
        raise FailedPrecondition("the session is full (its answers or bytes); end it and start a new one")
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
