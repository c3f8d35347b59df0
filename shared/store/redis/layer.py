"""The Redis (Memorystore) layer: last N messages, rolling summary, analytics buffer and
the session's own state, all under one hash-tagged key prefix per session so a Redis
Cluster keeps them in one slot. Every operation is one Lua script: one round trip.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from typing import Any, cast

from shared.errors import StoreError
from shared.settings import Settings
from shared.store.base import (
    Appended,
    AppendRequest,
    LayerName,
    QueryRecord,
    ReadStatus,
    SessionState,
    SessionStatus,
    SnapshotStatus,
    StoredMessage,
    pairs_of,
)
from shared.store.breaker import CircuitBreaker
from shared.store.redis import client as redis_client
from shared.store.redis.keys import Keys

log = logging.getLogger("chat_memory.redis")

_SCRIPT_NAMES = (
    "append",
    "read",
    "erase",
    "store_summary",
    "begin_end",
    "finish_end",
    "abort_end",
    "import",
    "create",
    "mark_doc",
    "forget",
    "claim",
)


def _load_sources() -> dict[str, str]:
    pkg = resources.files("shared.store.redis") / "lua"
    return {n: (pkg / f"{n}.lua").read_text() for n in _SCRIPT_NAMES}


_SOURCES = _load_sources()

# The session's own fields in its state hash (``meta``); the hash also holds the last
# message the stored summary covers ('sc'), the session's byte ledger ('lb') and answer
# count ('an'), and the id of every message ('m:<id>' -> its number), which makes appends
# exactly once for the session's whole life.
META_FIELDS = (
    "owner",
    "status",
    "seq",
    "created_at",
    "last_active_at",
    "user_info",
    "fs_doc",
    "end_result",
    "end_token",
    "ending_since",
    "erased_at",
)
# What an ended session's state hash keeps (finish_end.lua): enough to answer its owner.
_ENDED_FIELDS = ("owner", "seq", "created_at", "last_active_at", "user_info", "fs_doc", "v")

# A read slides the session's TTL (and its last_active_at) only if it has run down by more
# than this: a read just after a write (the usual turn) writes nothing. last_active_at, which
# the sweep's idle bound is minutes long against, may be this much older than the last read.
_READ_SLIDE_SLACK_S = 10

# maxmemory-policy is re-read this often (seconds): it changes only by reconfiguration.
_POLICY_TTL_S = 300.0


@dataclass(slots=True)
class ImportOutcome:
    added: int  # -1: Redis does not know the session; -2: it is ending or ended
    due_seq: int = 0  # the last rolling-summary claim the merge made, if any
    previous_summary: dict[str, Any] | None = None
    unsummarized: list[StoredMessage] | None = None


@dataclass(slots=True)
class ReadOutcome:
    status: ReadStatus
    session_status: str = ""
    seq: int = 0
    messages: list[StoredMessage] | None = None
    summary: dict[str, Any] | None = None
    end_result: dict[str, Any] | None = None
    doc_missing: bool = False


@dataclass(slots=True)
class EndSnapshot:
    status: SnapshotStatus
    token: str = ""  # this end attempt's: only it may abort
    meta: dict[str, str] | None = None
    unsummarized: list[StoredMessage] | None = None
    queries: list[QueryRecord] | None = None
    summary: dict[str, Any] | None = None
    messages: list[StoredMessage] | None = None
    end_result: dict[str, Any] | None = None


class RedisLayer:
    name: LayerName = "redis"

    def __init__(
        self,
        settings: Settings,
        client: Any = None,
        breaker: CircuitBreaker | None = None,
        *,
        connect: Callable[[], Any] | None = None,
    ) -> None:
        """``client``, or ``connect`` (the instance's shared client, built on first use),
        or neither: this layer builds its own from ``settings`` (tests, benchmarks)."""
        self.settings = settings
        self.key_names = Keys(settings.redis_key_prefix)
        self._client = client
        self._connect = connect
        self.breaker = breaker or CircuitBreaker(settings.redis_breaker_cooldown_s)
        self._scripts: dict[str, Any] = {}
        self._policy: str | None = None
        self._policy_read_at = -_POLICY_TTL_S

    @staticmethod
    def state_from_meta(sid: str, meta: dict[str, str]) -> SessionState:
        """The session's own fields from its state hash (``meta``)."""
        status = meta.get("status", "active")
        return SessionState(
            session_id=sid,
            owner=meta.get("owner", ""),
            status=cast(SessionStatus, status if status in ("active", "ending", "ended") else "active"),
            created_at=float(meta.get("created_at") or 0),
            last_active_at=float(meta.get("last_active_at") or 0),
            seq=int(meta.get("seq") or 0),
            user_info=json.loads(meta.get("user_info") or "{}"),
        )

    # -- plumbing -------------------------------------------------------------------
    @property
    def configured(self) -> bool:
        return self._client is not None or bool(self.settings.redis_url)

    def client(self) -> Any:
        if self._client is None:
            if self._connect is not None:
                return self._connect()
            if self.settings.redis_url:
                self._client = redis_client.build(self.settings, on_restart=self.breaker.note_recovery)
        return self._client

    def ensure_met(self) -> None:
        """Make sure this client has reached Redis once (one PING, on its first use), so
        that a Redis that may have been away is known before anything is served."""
        watch = redis_client.watch_of(self.client())
        if watch is not None and not watch.met:
            self.ping()

    def keys(self, sid: str) -> list[str]:
        return self.key_names.session(sid)

    def user_sessions_key(self, uid: str) -> str:
        return self.key_names.user_sessions(uid)

    def _run(
        self,
        name: str,
        sid: str,
        args: list[Any],
        nkeys: int = 3,
        keys: list[str] | None = None,
        *,
        merge_first: bool = False,
    ) -> Any:
        """Run one script (``merge_first``: see ``redis_client.once_more_if_reconnected``)."""
        from redis import exceptions as rexc
        from redis.exceptions import RedisError, ResponseError

        client = self.client()
        if client is None:
            raise StoreError("redis not configured", layer="redis")
        breaker = self.breaker
        if not breaker.allow():
            raise StoreError("redis circuit open", layer="redis")
        script = self._scripts.get(name)
        if script is None:
            # register_script: EVALSHA, and SCRIPT LOAD only on the first NOSCRIPT.
            script = self._scripts[name] = client.register_script(_SOURCES[name])
        try:
            out = redis_client.once_more_if_reconnected(
                lambda: script(keys=keys or self.keys(sid)[:nkeys], args=args),
                breaker,
                client,
                merge_first=merge_first,
            )
        except StoreError:
            raise
        except ResponseError as exc:
            # The server answered: it is up. A script error is a bug, not an outage; a
            # full Redis (noeviction at maxmemory) refuses the write whole, and the caller
            # falls back to Firestore as for an outage, without opening the breaker.
            breaker.record_success()
            if isinstance(exc, rexc.OutOfMemoryError):
                log.error("redis is full (maxmemory reached): writes go to Firestore", extra={"op": name})
            raise StoreError(f"redis script {name} failed: {exc}", layer="redis") from exc
        except (RedisError, OSError) as exc:
            redis_client.record_outage(breaker, client, exc)
            log.warning("redis unavailable", extra={"op": name, "error": type(exc).__name__, "detail": str(exc)[:200]})
            raise StoreError(f"redis {name}: {type(exc).__name__}", layer="redis") from exc
        breaker.record_success()
        return out

    def _once_more_if_reconnected(self, fn: Any) -> Any:
        return redis_client.once_more_if_reconnected(fn, self.breaker, self.client())

    # -- operations -------------------------------------------------------------------
    def create(self, state: SessionState, *, fs_doc: bool) -> bool:
        args = [
            state.owner,
            state.status,
            state.seq,
            repr(state.created_at),
            repr(state.last_active_at),
            json.dumps(state.user_info, separators=(",", ":")),
            self.settings.session_ttl_s,
            "1" if fs_doc else "0",
        ]
        return bool(self._run("create", state.session_id, args, nkeys=1))

    def claim_session_slot(self, uid: str, sid: str, now: float) -> bool:
        """Count a new session against its user's cap of active sessions. A full set is
        checked once against the sessions' own keys: ended or expired ones free their slot
        (the end path need not know about the set), live ones keep theirs until their keys
        would expire."""
        s = self.settings
        key = self.user_sessions_key(uid)
        ttl = s.session_ttl_s

        def claim() -> list[Any]:
            args = [sid, repr(now), repr(now + ttl), s.max_active_sessions_per_user, ttl]
            return list(self._run("claim", sid, args, keys=[key]))

        out = claim()
        if int(out[0]):
            return True
        from redis.exceptions import RedisError

        stale, live = [], {}
        client = self.client()
        try:
            for other in out[1]:
                meta = self.keys(other)[0]
                status, left = client.hget(meta, "status"), client.ttl(meta)
                if status in (None, "ended") or left < 0:
                    stale.append(other)
                else:
                    live[other] = now + left
            if not stale:
                if live:
                    client.zadd(key, live, xx=True)
                return False
            client.zrem(key, *stale)
        except (RedisError, OSError) as exc:
            raise StoreError(f"redis claim: {type(exc).__name__}", layer="redis") from exc
        return bool(int(claim()[0]))

    def state(self, sid: str) -> SessionState | None:
        meta = self.meta(sid)
        return self.state_from_meta(sid, meta) if meta and meta.get("status") != "erased" else None

    def erase(self, sid: str, owner: str | None, now: float) -> tuple[str, dict[str, int]]:
        """Delete the session's keys and leave a tombstone for its TTL (``lua/erase.lua``)."""
        out = self._run("erase", sid, [owner or "", repr(now), self.settings.session_ttl_s])
        names = ("messages", "unsummarised", "analytics_entries", "message_ids")
        counts = dict(zip(names, map(int, out[1:5]), strict=True))
        return str(out[0]), counts

    def forget_user(self, uid: str) -> int:
        """Delete the user's own keys (the session-cap set, the rate-limit log): keys named by
        the user id. Returns how many session-cap sets existed (0 or 1)."""
        from redis.exceptions import RedisError

        client = self.client()
        if client is None:
            return 0
        try:
            # The rate-limit log goes too but is not counted: the request asking for the
            # erasure has just written it, so a repeated request would count it again.
            n, _ = self._once_more_if_reconnected(
                lambda: (client.delete(self.user_sessions_key(uid)), client.delete(self.key_names.rate_limit(uid)))
            )
            return int(n)
        except (RedisError, OSError) as exc:
            redis_client.record_outage(self.breaker, client, exc)
            raise StoreError(f"redis forget user: {type(exc).__name__}", layer="redis") from exc

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
        out = self._run("read", sid, args, merge_first=True)
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
        )

    def mark_doc(self, sid: str) -> bool:
        """Record that the session's Firestore document exists (no-op if Redis lost it)."""
        return bool(self._run("mark_doc", sid, [], nkeys=1))

    def held_for_export(self, sid: str) -> tuple[list[StoredMessage], list[QueryRecord]]:
        """Everything Redis holds of a session: its messages, and the question/answer pairs
        read from them. Read only."""
        from redis.exceptions import RedisError

        client = self.client()
        if client is None or not self.breaker.allow():
            raise StoreError("redis unavailable", layer="redis")
        log_key = self.keys(sid)[1]
        try:
            held = self._once_more_if_reconnected(lambda: client.lrange(log_key, 0, -1))
        except (RedisError, OSError) as exc:
            redis_client.record_outage(self.breaker, client, exc)
            raise StoreError(f"redis export: {type(exc).__name__}", layer="redis") from exc
        self.breaker.record_success()
        messages = [StoredMessage.from_json(r) for r in held]
        return messages, pairs_of(messages)

    def user_session_ids(self, uid: str) -> list[str]:
        """The user's sessions Redis counts against the cap (active ones, some maybe ended)."""
        from redis.exceptions import RedisError

        client = self.client()
        if client is None or not self.breaker.allow():
            return []
        try:
            return list(self._once_more_if_reconnected(lambda: client.zrange(self.user_sessions_key(uid), 0, -1)))
        except (RedisError, OSError) as exc:
            redis_client.record_outage(self.breaker, client, exc)
            raise StoreError(f"redis user sessions: {type(exc).__name__}", layer="redis") from exc

    def forget_expiring(self, sid: str) -> None:
        self._run("forget", sid, [], nkeys=1)

    def meta(self, sid: str) -> dict[str, str] | None:
        """The session's own fields (one HMGET of ``META_FIELDS``), or None if Redis does not know it."""
        from redis.exceptions import RedisError

        client = self.client()
        if client is None:
            raise StoreError("redis not configured", layer="redis")
        if not self.breaker.allow():
            raise StoreError("redis circuit open", layer="redis")
        try:
            values = self._once_more_if_reconnected(lambda: client.hmget(self.keys(sid)[0], META_FIELDS))
        except (RedisError, OSError) as exc:
            redis_client.record_outage(self.breaker, client, exc)
            raise StoreError(f"redis meta: {type(exc).__name__}", layer="redis") from exc
        self.breaker.record_success()
        h = {k: v for k, v in zip(META_FIELDS, values, strict=True) if v is not None}
        return h if "status" in h else None

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
        args = [json.dumps(end_result, separators=(",", ":")), self.settings.session_ttl_s, *_ENDED_FIELDS]
        return ("already", "cleared", "reopened")[int(self._run("finish_end", sid, args))]

    def abort_end(self, sid: str, token: str, *, reopen: bool) -> bool:
        """Give up the end attempt ``token``: reopen the session, or (when whether its
        Firestore write happened is unknown) keep it 'ending' for any later end to take over."""
        return bool(self._run("abort_end", sid, [token, "1" if reopen else "0"], nkeys=1))

    def import_messages(self, sid: str, messages: list[StoredMessage], *, end_token: str = "") -> ImportOutcome:
        """Append messages accepted elsewhere (during an outage), renumbered, exactly once
        per message id. ``messages`` in acceptance order. Returns the last summary claim.
        Refused (added -2) once an end took its snapshot, except by that end (``end_token``)."""
        s = self.settings
        # Only messages travel: the end pairs questions and answers from the merged log.
        items = [{"mid": m.mid, "role": m.role, "tail": m.tail_json()} for m in messages]
        if not items:
            return ImportOutcome(0)
        args = [json.dumps(items, ensure_ascii=False), s.session_ttl_s, s.summary_interval, end_token]
        out = self._run("import", sid, args)
        if int(out[0]) < 0:
            return ImportOutcome(int(out[0]))
        res = ImportOutcome(int(out[0]), due_seq=int(out[1]))
        if res.due_seq:
            res.previous_summary = json.loads(out[2]) if out[2] else None
            res.unsummarized = self._newest_within_bound(out[3])
        return res

    def eviction_policy(self) -> str | None:
        """Redis's maxmemory-policy (None: unknown). Any policy but ``noeviction`` can evict
        single keys of live sessions under memory pressure: Memorystore's default,
        volatile-lru, evicts keys with a TTL, and every session key has one. CONFIG GET
        first; INFO where CONFIG is refused (managed Redis may rename or block it)."""
        import time

        from redis.exceptions import RedisError

        now = time.monotonic()
        if now - self._policy_read_at < _POLICY_TTL_S:
            return self._policy
        client = self.client()
        if client is None or not self.breaker.allow():
            return self._policy
        policy: str | None = None
        try:
            try:
                policy = _find_policy(
                    self._once_more_if_reconnected(lambda: client.config_get("maxmemory-policy")), "maxmemory-policy"
                )
            except RedisError:
                policy = None
            if policy is None:
                policy = _find_policy(self._once_more_if_reconnected(lambda: client.info("memory")), "maxmemory_policy")
        except (RedisError, OSError) as exc:
            redis_client.record_outage(self.breaker, client, exc)
            return self._policy
        self._policy_read_at = now
        if policy != self._policy and policy not in (None, "noeviction"):
            log.warning(
                "redis can evict single session keys: configure maxmemory-policy noeviction",
                extra={"policy": policy},
            )
        self._policy = policy
        return policy

    def ping(self) -> dict[str, Any]:
        from redis.exceptions import RedisError

        client = self.client()
        if client is None:
            return {"status": "disabled"}
        breaker = self.breaker
        if not breaker.allow():
            return {"status": "down", "breaker": "open", "last_error": breaker.last_error}
        t0 = time.perf_counter()
        try:
            self._once_more_if_reconnected(client.ping)
        except (RedisError, OSError) as exc:
            redis_client.record_outage(breaker, client, exc)
            return {"status": "down", "breaker": breaker.state(), "last_error": type(exc).__name__}
        breaker.record_success()
        out: dict[str, Any] = {
            "status": "up",
            "latency_ms": round((time.perf_counter() - t0) * 1000, 2),
            "breaker": "closed",
        }
        policy = self.eviction_policy()
        if policy is not None:
            out["eviction_policy"] = policy
            out["evicts_session_keys"] = policy != "noeviction"
        return out


def _find_policy(reply: Any, field: str) -> str | None:
    """The policy in a CONFIG GET or INFO reply; a cluster client answers per node."""
    if not isinstance(reply, dict):
        return None
    value = reply.get(field)
    if isinstance(value, str):
        return value
    for sub in reply.values():
        if isinstance(sub, dict) and isinstance(sub.get(field), str):
            return str(sub[field])
    return None
