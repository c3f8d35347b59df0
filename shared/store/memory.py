"""The per-instance memory fallback: used only when Redis and Firestore are both down.

What it holds lives in this one process: another instance cannot see it and it is gone
if the instance stops, so every answer served from here says ``durable: false``.
Bounded (sessions, messages per session, bytes for the whole layer) and expiring (30 min
by default). At a bound it refuses (the caller answers 503) rather than drop a message it
already accepted: a session holding messages is never evicted to make room. A session's
own bounds are Redis' (its byte ledger and answers, counted as Redis counts them): past
them the append is 'full', the 409 Redis answers.
"""

from __future__ import annotations

import json
import threading
import time
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from typing import Any

from shared.settings import Settings
from shared.store.base import (
    Appended,
    AppendRequest,
    CreateRequest,
    LayerName,
    QueryRecord,
    SessionState,
    StoredMessage,
)


@dataclass
class _MemSession:
    state: SessionState
    messages: deque[StoredMessage]
    queries: list[QueryRecord] = field(default_factory=list)
    cmids: dict[str, int] = field(default_factory=dict)
    pending_query: str | None = None
    expires_at: float = 0.0
    # True when the session's owner and state are only known here (created while both
    # stores were down); False when this only holds messages of a session stored elsewhere.
    local_only: bool = False
    # What this session costs the layer's byte bound (messages, analytics, ids, state).
    bytes: int = 0
    # What the messages held would cost the session's bound in Redis (its byte ledger).
    ledger: int = 0


# Per-object bookkeeping (dataclass, dict and deque slots) counted on top of the JSON.
_OVERHEAD = 256


def _state_bytes(state: SessionState) -> int:
    return _OVERHEAD + len(json.dumps(state.user_info, ensure_ascii=False).encode())


class MemoryLayer:
    name: LayerName = "memory"

    def __init__(self, settings: Settings, clock=time.time) -> None:
        self.settings = settings
        self._clock = clock
        self._lock = threading.Lock()
        self._sessions: OrderedDict[str, _MemSession] = OrderedDict()
        self._bytes = 0

    def _get(self, sid: str) -> _MemSession | None:
        s = self._sessions.get(sid)
        if s is None:
            return None
        if s.expires_at <= self._clock():
            self._remove(sid)
            return None
        return s

    def _remove(self, sid: str) -> None:
        s = self._sessions.pop(sid, None)
        if s is not None:
            self._bytes -= s.bytes

    def _touch(self, sid: str, s: _MemSession) -> None:
        s.expires_at = self._clock() + self.settings.fallback_ttl_s
        self._sessions.move_to_end(sid)

    def clear_expired(self) -> int:
        now = self._clock()
        with self._lock:
            dead = [k for k, s in self._sessions.items() if s.expires_at <= now]
            for k in dead:
                self._remove(k)
        return len(dead)

    def _make_room(self, size: int) -> bool:
        """Room for one more session of ``size`` bytes: evict the least recently used
        sessions that hold no message, those whose state a store also holds first; never
        one holding messages. False if there is no such room."""
        s = self.settings

        def full() -> bool:
            return len(self._sessions) >= s.fallback_max_sessions or self._bytes + size > s.fallback_max_bytes

        if not full():
            return True
        empty = [(k, v.local_only) for k, v in self._sessions.items() if not v.messages]
        for k, _ in sorted(empty, key=lambda kv: kv[1]):  # stable: LRU order within each kind
            self._remove(k)
            if not full():
                return True
        return False

    @property
    def configured(self) -> bool:
        return True  # the last layer: always there, bounded, this instance only

    def create(self, req: CreateRequest) -> bool:
        """Hold ``req.state``; False if the layer is full (sessions or bytes)."""
        state, local_only = req.state, req.local_only
        with self._lock:
            s = self._get(state.session_id)
            if s is None:
                size = _state_bytes(state)
                if not self._make_room(size):
                    return False
                s = _MemSession(state=state, messages=deque(), local_only=local_only, bytes=size)
                self._sessions[state.session_id] = s
                self._bytes += size
            self._touch(state.session_id, s)
            return True

    def state(self, sid: str) -> SessionState | None:
        with self._lock:
            s = self._get(sid)
            return s.state if s else None

    def has(self, sid: str) -> bool:
        with self._lock:
            return self._get(sid) is not None

    def append(self, req: AppendRequest) -> Appended:
        """Hold one message (ok | dup | missing | ended | full | no_room; ownership is the
        caller's check)."""
        sid, msg, cmid = req.session_id, req.message, req.cmid
        with self._lock:
            s = self._get(sid)
            if s is None:
                return Appended("missing")
            if s.state.status != "active":
                return Appended("ended")
            if cmid and cmid in s.cmids:
                return Appended("dup", s.cmids[cmid])
            last = s.messages[-1].seq if s.messages else 0
            seq = max(last, s.state.seq, req.seq_hint) + 1
            msg.seq = seq
            query = None
            if msg.role == "assistant" and msg.content:
                query = QueryRecord.from_answer(seq, msg.mid, s.pending_query, msg)
            size = _OVERHEAD + len(msg.to_json().encode()) + (len(query.to_json().encode()) if query else 0)
            charge = msg.ledger_bytes()
            answers = len(s.queries) + int(query is not None)
            bounds = self.settings
            if s.ledger + charge > bounds.analytics_buffer_max_bytes or answers > bounds.analytics_buffer_max:
                return Appended("full")  # the session's bound, as Redis keeps it
            if (
                len(s.messages) >= self.settings.fallback_max_messages
                or self._bytes + size > self.settings.fallback_max_bytes
            ):
                return Appended("no_room")
            s.bytes += size
            s.ledger += charge
            self._bytes += size
            s.messages.append(msg)
            s.state.seq = seq
            s.state.last_active_at = msg.timestamp
            if cmid:
                s.cmids[cmid] = seq
            if msg.role == "user" and msg.content:
                s.pending_query = msg.content
            elif query is not None:
                s.queries.append(query)
                s.pending_query = None
            self._touch(sid, s)
            return Appended("ok", seq)

    def snapshot(self, sid: str) -> tuple[list[StoredMessage], list[QueryRecord]] | None:
        with self._lock:
            s = self._get(sid)
            if s is None:
                return None
            return list(s.messages), list(s.queries)

    def mark_ended(self, sid: str) -> None:
        with self._lock:
            s = self._get(sid)
            if s is not None:
                s.state.status = "ended"

    def drop(self, sid: str) -> None:
        with self._lock:
            self._remove(sid)

    def local_only(self, sid: str) -> bool:
        with self._lock:
            s = self._get(sid)
            return bool(s and s.local_only)

    def drop_messages(self, sid: str, mids: set[str] | None = None) -> None:
        """Forget messages once they are safely in a durable layer (keeps local-only state);
        with ``mids``, only those."""
        with self._lock:
            s = self._get(sid)
            if s is None:
                return
            if mids is not None:
                gone = [m for m in s.messages if m.mid in mids]
                kept_msgs = [m for m in s.messages if m.mid not in mids]
                freed = sum(_OVERHEAD + len(m.to_json().encode()) for m in gone) + sum(
                    len(q.to_json().encode()) for q in s.queries if q.mid in mids
                )
                s.messages.clear()
                s.messages.extend(kept_msgs)
                s.queries = [q for q in s.queries if q.mid not in mids]
                s.ledger = sum(m.ledger_bytes() for m in kept_msgs)
                if kept_msgs:
                    freed = min(freed, s.bytes - _state_bytes(s.state))
                    s.bytes -= freed
                    self._bytes -= freed
                    return
            if s.local_only:
                s.messages.clear()
                s.queries.clear()
                s.cmids.clear()
                s.ledger = 0
                kept = _state_bytes(s.state)
                self._bytes -= s.bytes - kept
                s.bytes = kept
            else:
                self._remove(sid)

    def sessions_with_messages(self) -> list[str]:
        with self._lock:
            return [k for k, s in self._sessions.items() if s.messages]

    def stats(self) -> dict[str, Any]:
        with self._lock:
            return {
                "status": "up",
                "sessions": len(self._sessions),
                "messages": sum(len(s.messages) for s in self._sessions.values()),
                "bytes": self._bytes,
            }

    def ping(self) -> dict[str, Any]:
        """Always up (this instance's own memory), with what it holds."""
        self.clear_expired()
        return self.stats()
