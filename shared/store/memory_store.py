"""The per-instance memory fallback: used only when Redis and Firestore are both down.

What it holds lives in this one process: another instance cannot see it and it is gone
if the instance stops, so every answer served from here says ``durable: false``.
Bounded (sessions and messages per session) and expiring (30 min by default).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from typing import Any

from shared.settings import Settings
from shared.store.base import QueryRecord, SessionState, StoredMessage


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


class MemoryLayer:
    name = "memory"

    def __init__(self, settings: Settings, clock=time.time) -> None:
        self.settings = settings
        self._clock = clock
        self._lock = threading.Lock()
        self._sessions: OrderedDict[str, _MemSession] = OrderedDict()

    def _get(self, sid: str) -> _MemSession | None:
        s = self._sessions.get(sid)
        if s is None:
            return None
        if s.expires_at <= self._clock():
            del self._sessions[sid]
            return None
        return s

    def _touch(self, sid: str, s: _MemSession) -> None:
        s.expires_at = self._clock() + self.settings.fallback_ttl_s
        self._sessions.move_to_end(sid)

    def clear_expired(self) -> int:
        now = self._clock()
        with self._lock:
            dead = [k for k, s in self._sessions.items() if s.expires_at <= now]
            for k in dead:
                del self._sessions[k]
        return len(dead)

    def create(self, state: SessionState, *, local_only: bool) -> None:
        with self._lock:
            s = self._sessions.get(state.session_id)
            if s is None:
                s = _MemSession(
                    state=state, messages=deque(maxlen=self.settings.fallback_max_messages), local_only=local_only
                )
                self._sessions[state.session_id] = s
            self._touch(state.session_id, s)
            while len(self._sessions) > self.settings.fallback_max_sessions:
                self._sessions.popitem(last=False)

    def state(self, sid: str) -> SessionState | None:
        with self._lock:
            s = self._get(sid)
            return s.state if s else None

    def has(self, sid: str) -> bool:
        with self._lock:
            return self._get(sid) is not None

    def append(self, sid: str, msg: StoredMessage, cmid: str | None, seq_hint: int) -> tuple[str, int]:
        """Returns (status, seq): ok | dup | missing | ended."""
        with self._lock:
            s = self._get(sid)
            if s is None:
                return "missing", 0
            if s.state.status != "active":
                return "ended", 0
            if cmid and cmid in s.cmids:
                return "dup", s.cmids[cmid]
            last = s.messages[-1].seq if s.messages else 0
            seq = max(last, s.state.seq, seq_hint) + 1
            msg.seq = seq
            s.messages.append(msg)
            s.state.seq = seq
            s.state.last_active_at = msg.timestamp
            if cmid:
                s.cmids[cmid] = seq
            if msg.role == "user":
                s.pending_query = msg.content
            elif msg.role == "assistant":
                s.queries.append(QueryRecord.from_answer(seq, msg.mid, s.pending_query, msg))
                s.pending_query = None
            self._touch(sid, s)
            return "ok", seq

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
            self._sessions.pop(sid, None)

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
                kept = [m for m in s.messages if m.mid not in mids]
                s.messages.clear()
                s.messages.extend(kept)
                s.queries = [q for q in s.queries if q.mid not in mids]
                if kept:
                    return
            if s.local_only:
                s.messages.clear()
                s.queries.clear()
            else:
                del self._sessions[sid]

    def sessions_with_messages(self) -> list[str]:
        with self._lock:
            return [k for k, s in self._sessions.items() if s.messages]

    def stats(self) -> dict[str, Any]:
        with self._lock:
            return {
                "status": "up",
                "sessions": len(self._sessions),
                "messages": sum(len(s.messages) for s in self._sessions.values()),
            }
