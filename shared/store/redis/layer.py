"""The Redis (Memorystore) session layer: a session's log of messages, its rolling summary
and its own state, all under one hash-tagged key prefix per session so a Redis Cluster
keeps them in one slot. Every session operation is one Lua script: one round trip.

``RedisLayer`` is what the core uses for everything Redis does; the per-user sets
(``users``) and the health checks (``health``) are their own modules, composed here over
one ``connection.RedisConnection``.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from dataclasses import replace
from typing import Any, cast

from shared.settings import Settings
from shared.store.base import (
    Appended,
    AppendRequest,
    CreateRequest,
    LayerName,
    QueryRecord,
    SessionState,
    SessionStatus,
    StoredMessage,
    pairs_of,
)
from shared.store.breaker import CircuitBreaker
from shared.store.redis.client import Full as RedisFull
from shared.store.redis.connection import RedisConnection
from shared.store.redis.health import Health
from shared.store.redis.keys import ENDED_FIELDS, META_FIELDS, Meta
from shared.store.redis.protocol import RedisClientProtocol
from shared.store.redis.recall import RecallCache
from shared.store.redis.records import EndSnapshot, ImportOutcome, ReadOutcome
from shared.store.redis.users import UserSets

__all__ = ["EndSnapshot", "ImportOutcome", "ReadOutcome", "RedisFull", "RedisLayer"]

# A read slides the session's TTL (and its last_active_at) only if it has run down by more
# than this: a read just after a write (the usual turn) writes nothing. last_active_at, which
# the sweep's idle bound is minutes long against, may be this much older than the last read.
_READ_SLIDE_SLACK_S = 10
# One import script call (a merge's step) carries at most this much: a merge of a session
# at its byte bound (2 MiB) is some ten calls, none holding Redis for long.
IMPORT_STEP_BYTES = 256 * 1024
IMPORT_STEP_ITEMS = 200


class RedisLayer:
    name: LayerName = "redis"

    def __init__(
        self,
        settings: Settings,
        client: RedisClientProtocol | None = None,
        breaker: CircuitBreaker | None = None,
        *,
        connect: Callable[[], RedisClientProtocol | None] | None = None,
    ) -> None:
        """``client``, or ``connect`` (the instance's shared client, built on first use),
        or neither: this layer builds its own from ``settings`` (tests, benchmarks)."""
        self.conn = RedisConnection(settings, client, breaker, connect=connect)
        self.settings = settings
        self.key_names = self.conn.key_names
        self.breaker = self.conn.breaker
        self.users = UserSets(self.conn)
        self.health = Health(self.conn)
        self.recall = RecallCache(self.conn)

    @staticmethod
    def state_from_meta(sid: str, meta: dict[str, str]) -> SessionState:
        """The session's own fields from its state hash (``meta``)."""
        status = meta.get(Meta.STATUS, "active")
        return SessionState(
            session_id=sid,
            owner=meta.get(Meta.OWNER, ""),
            status=cast(SessionStatus, status if status in ("active", "ending", "ended") else "active"),
            created_at=float(meta.get(Meta.CREATED_AT) or 0),
            last_active_at=float(meta.get(Meta.LAST_ACTIVE_AT) or 0),
            seq=int(meta.get(Meta.SEQ) or 0),
            user_info=json.loads(meta.get(Meta.USER_INFO) or "{}"),
            memory=meta.get(Meta.MEMORY) != "0",
        )

    # -- plumbing -------------------------------------------------------------------
    @property
    def configured(self) -> bool:
        return self.conn.configured

    def client(self) -> RedisClientProtocol | None:
        return self.conn.client()

    def keys(self, sid: str) -> list[str]:
        return self.key_names.session(sid)

    def user_sessions_key(self, uid: str) -> str:
        return self.key_names.user_sessions(uid)

    def _run(self, name: str, sid: str, args: list[Any], nkeys: int = 3, *, merge_first: bool = False) -> Any:
        return self.conn.run(name, self.key_names.with_memory(sid)[:nkeys], args, merge_first=merge_first)

    # -- the per-user sets and the health checks (their own modules; the core asks this
    # one layer for everything Redis does) ----------------------------------------------
    def claim_session_slot(self, uid: str, sid: str, now: float) -> bool:
        return self.users.claim_session_slot(uid, sid, now)

    def user_session_ids(self, uid: str) -> list[str]:
        return self.users.user_session_ids(uid)

    def forget_user(self, uid: str) -> int:
        return self.users.forget_user(uid)

    def ensure_met(self) -> None:
        self.health.ensure_met()

    def eviction_policy(self) -> str | None:
        return self.health.eviction_policy()

    def ping(self) -> dict[str, Any]:
        return self.health.ping()

    # -- operations -------------------------------------------------------------------
    def create(self, req: CreateRequest) -> bool:
        state = req.state
        args = [
            state.owner,
            state.status,
            state.seq,
            repr(state.created_at),
            repr(state.last_active_at),
            json.dumps(state.user_info, separators=(",", ":")),
            self.settings.session_ttl_s,
            "1" if req.in_firestore else "0",
            "1" if state.memory else "0",
        ]
        return bool(self._run("create", state.session_id, args, nkeys=1))

    def state(self, sid: str) -> SessionState | None:
        meta = self.meta(sid)
        return self.state_from_meta(sid, meta) if meta and meta.get(Meta.STATUS) != "erased" else None

    def erase(self, sid: str, owner: str | None, now: float) -> tuple[str, dict[str, int]]:
        """Delete the session's keys and leave a tombstone for its TTL (``lua/erase.lua``)."""
        out = self._run("erase", sid, [owner or "", repr(now), self.settings.session_ttl_s], nkeys=5)
        names = ("messages", "unsummarised", "analytics_entries", "message_ids")
        counts = dict(zip(names, map(int, out[1:5]), strict=True))
        return str(out[0]), counts

    def append(self, req: AppendRequest) -> Appended:
        """Append one message (exactly once per ``msg.mid``, the client message id when given)."""
        s = self.settings
        sid, owner, msg, now = req.session_id, req.owner, req.message, req.now
        args = [
            owner or "",
            msg.role,
            msg.tail_json(),
            msg.mid,
            s.session_ttl_s,
            s.summary_interval,
            s.analytics_buffer_max,
            repr(now),
            s.analytics_buffer_max_bytes,
        ]
        out = self._run("append", sid, args, merge_first=True)
        status = out[0]
        if status == "dup":
            mark = str(out[1])  # the message's number, '!' if its append claimed a summary
            return Appended("dup", seq=int(mark.rstrip("!")), summary_due=mark.endswith("!"))
        if status != "ok":
            return Appended(status)
        res = Appended("ok", seq=int(out[1]), summary_due=bool(int(out[2])), doc_missing=bool(int(out[3])))
        if res.summary_due:
            res.previous_summary = json.loads(out[4]) if out[4] else None
            res.unsummarized = self._newest_within_bound(out[5])
        return res

    def _newest_within_bound(self, raw: list[str]) -> list[StoredMessage]:
        """The summarizer's input: the newest messages no summary covers, up to
        PENDING_MAX_BYTES (a summarizer failing for ever never gets an unbounded input)."""
        return [StoredMessage.from_json(r) for r in raw[len(raw) - self._fitting(raw) :]]

    def _fitting(self, raw: list[str]) -> int:
        """How many of the newest entries fit in PENDING_MAX_BYTES (the newest always)."""
        budget = self.settings.pending_max_bytes
        for n, r in enumerate(reversed(raw)):
            budget -= len(r.encode())
            if budget < 0 and n:
                return n
        return len(raw)

    def read(self, sid: str, owner: str | None, n: int, now: float | None = None) -> ReadOutcome:
        now = time.time() if now is None else now
        s = self.settings
        args = [owner or "", n, s.session_ttl_s, repr(now), s.window_max_bytes, _READ_SLIDE_SLACK_S]
        out = self._run("read", sid, args, nkeys=4, merge_first=True)
        if out[0] != "ok":
            return ReadOutcome(out[0])
        return ReadOutcome(
            "ok",
            session_status=out[1],
            seq=int(out[2]),
            messages=[StoredMessage.from_json(r) for r in out[3]],
            summary=json.loads(out[4]) if out[4] else None,
            end_result=json.loads(out[5]) if out[5] else None,
            doc_missing=out[6] == "0",
            memories=_memories(out[7]),
        )

    def mark_doc(self, sid: str) -> bool:
        """Record that the session's Firestore document exists (no-op if Redis lost it)."""
        return bool(self._run("mark_doc", sid, [], nkeys=1))

    def held_for_export(self, sid: str) -> tuple[list[StoredMessage], list[QueryRecord]]:
        """Everything Redis holds of a session: its messages, and the question/answer pairs
        read from them. Read only."""
        log_key = self.key_names.log(sid)
        held = self.conn.call("export", lambda c: c.lrange(log_key, 0, -1))
        messages = [StoredMessage.from_json(r) for r in held]
        return messages, pairs_of(messages)

    def forget_expiring(self, sid: str) -> None:
        self._run("forget", sid, [], nkeys=1)

    def meta(self, sid: str) -> dict[str, str] | None:
        """The session's own fields (one HMGET of ``META_FIELDS``), or None if Redis does not know it."""
        meta_key = self.key_names.meta(sid)
        values = self.conn.call("meta", lambda c: c.hmget(meta_key, META_FIELDS))
        h = {k: v for k, v in zip(META_FIELDS, values, strict=True) if v is not None}
        return h if Meta.STATUS in h else None

    def message_numbers(self, sid: str, mids: list[str]) -> dict[str, int]:
        """The numbers Redis gave these message ids (those it holds; one HMGET, read only)."""
        if not mids:
            return {}
        meta_key = self.key_names.meta(sid)
        fields = [Meta.MESSAGE_ID + mid for mid in mids]
        values = self.conn.call("message numbers", lambda c: c.hmget(meta_key, fields))
        return {mid: int(v.rstrip("!")) for mid, v in zip(mids, values, strict=True) if v}

    def store_summary(self, sid: str, summary: dict[str, Any]) -> bool:
        """Compare and set; False too once an end took its snapshot (the caches go)."""
        out = self._run(
            "store_summary",
            sid,
            [
                json.dumps(summary, separators=(",", ":"), ensure_ascii=False),
                summary["message_count"],
                self.settings.session_ttl_s,
            ],
        )
        return bool(out)

    def begin_end(
        self, sid: str, owner: str | None, token: str | None = None, idle_before: float | None = None
    ) -> EndSnapshot:
        """Mark the session 'ending' for the attempt ``token`` (a new one if None) and
        snapshot it. 'busy': another attempt owns the end (for at most END_LEASE_S);
        'in_use': used after ``idle_before``. The attempt's own token re-snapshots."""
        token = token or uuid.uuid4().hex
        args = [owner or "", token, repr(time.time()), self.settings.end_lease_s]
        args.append("" if idle_before is None else repr(idle_before))
        out = self._run("begin_end", sid, [*args, *META_FIELDS], merge_first=True)
        if out[0] == "ended":
            return EndSnapshot("ended", end_result=json.loads(out[1]) if out[1] else None)
        if out[0] != "ok":
            return EndSnapshot(out[0])
        meta = {k: v for k, v in zip(META_FIELDS, out[1], strict=True) if v is not None}
        held = [StoredMessage.from_json(r) for r in out[2]]
        covered = int(out[4])
        # the log is in order: what no summary covers is its tail (bounded as the rolling input)
        start = next((i for i, m in enumerate(held) if m.seq > covered), len(held))
        fitting = self._fitting(out[2][start:])
        return EndSnapshot(
            "ok",
            token=token,
            meta=meta,
            unsummarized=held[len(held) - fitting :],
            queries=pairs_of(held),
            summary=json.loads(out[3]) if out[3] else None,
            messages=held[-self.settings.message_window :],
        )

    def finish_end(self, sid: str, end_result: dict[str, Any]) -> str:
        """'cleared' (caches dropped), 'already' (it was ended) or 'reopened' (the session
        took writes after the committed snapshot: marked ended, caches left to the TTL)."""
        args = [json.dumps(end_result, separators=(",", ":")), self.settings.session_ttl_s, *ENDED_FIELDS]
        return ("already", "cleared", "reopened")[int(self._run("finish_end", sid, args, nkeys=5))]

    def abort_end(self, sid: str, token: str, *, reopen: bool) -> bool:
        """Give up the end attempt ``token``: reopen the session, or (when whether its
        Firestore write happened is unknown) keep it 'ending' for any later end to take over."""
        return bool(self._run("abort_end", sid, [token, "1" if reopen else "0"], nkeys=1))

    def import_messages(self, sid: str, messages: list[StoredMessage], *, end_token: str = "") -> ImportOutcome:
        """Append messages accepted elsewhere (during an outage), renumbered, exactly once
        per message id. ``messages`` in acceptance order. Returns the last summary claim.
        Refused (added -2) once an end took its snapshot, except by that end (``end_token``).

        In steps (``import_steps``): no one script call holds Redis for long. Each step is
        exactly once by itself (the 'm:' id fields), so a merge cut between two steps (an
        instance gone, an error) loses nothing, and the next merge, from the top, adds only
        what is missing; two instances merging at once take the same steps in the same
        order. A refusal stops the merge where it is (what is in stays in)."""
        s = self.settings
        # Only messages travel: the end pairs questions and answers from the merged log.
        items = [{"mid": m.mid, "role": m.role, "tail": m.tail_json()} for m in messages]
        res = ImportOutcome(0)
        for step in import_steps(items):
            args = [step, s.session_ttl_s, s.summary_interval, end_token]
            out = self._run("import", sid, args)
            if int(out[0]) < 0:
                return ImportOutcome(int(out[0])) if res.added == 0 else replace(res, added=int(out[0]))
            res.added += int(out[0])
            if int(out[1]):
                res.due_seq = int(out[1])
                res.previous_summary = json.loads(out[2]) if out[2] else None
                res.unsummarized = self._newest_within_bound(out[3])
        return res


def _memories(raw: str) -> list[dict[str, Any]]:
    """The recall's stored result; anything unreadable is no memories (recall never fails a read)."""
    if not raw:
        return []
    try:
        got = json.loads(raw)
    except ValueError:
        return []
    return [m for m in got if isinstance(m, dict)] if isinstance(got, list) else []


def import_steps(items: list[dict[str, str]]) -> list[str]:
    """``items`` as the JSON arrays of the import's steps, in order: each at most
    IMPORT_STEP_BYTES (an item larger than that is a step by itself) and IMPORT_STEP_ITEMS."""
    steps: list[str] = []
    parts: list[str] = []
    size = 0
    for it in items:
        raw = json.dumps(it, ensure_ascii=False, separators=(",", ":"))
        n = len(raw.encode("utf-8", "surrogatepass")) + 1
        if parts and (size + n > IMPORT_STEP_BYTES or len(parts) >= IMPORT_STEP_ITEMS):
            steps.append("[" + ",".join(parts) + "]")
            parts, size = [], 0
        parts.append(raw)
        size += n
    if parts:
        steps.append("[" + ",".join(parts) + "]")
    return steps
