"""A user's data rights: everything the product holds about the caller, exported.

What a session holds, wherever it is: its document (status, timestamps, summary); its
messages (an ended session's final window; an active one's window and not-yet-summarised
messages in Redis, the messages Firestore held during a Redis outage, and what this
instance's memory holds); its analytics entries (written at the end, or still buffered in
Redis or held on the outage path). Pages of sessions, oldest first, with a cursor.
"""

from __future__ import annotations

from typing import Any

from shared.core import context as ctx
from shared.core.manager import SessionManager
from shared.core.models import validate_user_id
from shared.cursor import decode_cursor, encode_cursor
from shared.errors import StoreError, Unavailable
from shared.store.base import QueryRecord, StoredMessage
from shared.store.firestore.reports import ReportStore
from shared.store.firestore.stats import Stats
from shared.store.redis.layer import RedisLayer

MAX_PAGE = 100


class DataRights:
    """``manager``: the sessions' layers (Redis, the outage-held messages in Firestore, this
    instance's memory); ``reports``: the user's session documents and their analytics;
    ``stats``: the user's totals."""

    def __init__(self, manager: SessionManager, reports: ReportStore, stats: Stats) -> None:
        self.m = manager
        self.reports = reports
        self.stats = stats

    def export(self, user_id: str | None, *, cursor: object = None, limit: int = 50) -> dict[str, Any]:
        uid = validate_user_id(user_id)
        if not self.reports.configured:
            raise Unavailable("the export needs Firestore, which is not configured")
        after = decode_cursor(cursor)
        try:
            docs = self.reports.sessions_of(uid, limit, after)
            user = self.stats.get_user(uid) if after is None else None
        except StoreError as exc:
            raise Unavailable("the export is unavailable; try again shortly") from exc
        sessions = [self._session(d) for d in docs]
        if after is None:
            # Sessions created while Firestore was down have no document yet: Redis knows them.
            sessions += self._redis_only(uid)
        out: dict[str, Any] = {
            "user_id": uid,
            "sessions": sessions,
            "next_cursor": encode_cursor(float(docs[-1]["created_at"]), docs[-1]["session_id"])
            if len(docs) == limit
            else None,
        }
        if after is None:
            u = user or {}
            out["user"] = {
                k: u.get(k) for k in ("total_sessions", "total_messages", "total_queries", "last_active_at")
            } | {"recent_sessions": list(u.get("recent_sessions") or [])}
        return out

    def _session(self, doc: dict[str, Any]) -> dict[str, Any]:
        sid = doc["session_id"]
        if doc.get("status") == "ended":
            messages = [StoredMessage.from_dict(x) for x in doc.get("final_messages") or []]
            analytics = self.reports.analytics(sid)
        else:
            messages, queries = self._held(sid)
            analytics = [q.to_dict() for q in queries]
        return {
            "session_id": sid,
            "status": "ended" if doc.get("status") == "ended" else "active",
            "created_at": doc.get("created_at"),
            "last_active_at": doc.get("last_active_at"),
            "ended_at": doc.get("ended_at"),
            "end_reason": doc.get("end_reason"),
            "user_info": doc.get("user_info") or {},
            "summary": doc.get("summary"),
            "messages": [m.to_dict() for m in messages],
            "analytics": analytics,
        }

    def _held(self, sid: str) -> tuple[list[StoredMessage], list[QueryRecord]]:
        """An active session's messages and analytics from every layer that holds some."""
        msgs: list[list[StoredMessage]] = []
        queries: list[QueryRecord] = []
        if self.m.redis.configured:
            try:
                r_msgs, r_q = self.m.redis.held_for_export(sid)
                msgs.append(r_msgs)
                queries += r_q
            except StoreError:
                pass  # Redis down: what Firestore and memory hold is still exported
        try:
            p_msgs, p_q = self.m.firestore.read_pending(sid)
            msgs.append(p_msgs)
            queries += p_q
        except StoreError as exc:
            raise Unavailable("the export is unavailable; try again shortly") from exc
        snap = self.m.memory.snapshot(sid)
        if snap is not None:
            msgs.append(snap[0])
            queries += snap[1]
        by_mid: dict[str, QueryRecord] = {}
        for q in queries:
            by_mid.setdefault(q.mid, q)
        return ctx.merge_messages(*msgs), sorted(by_mid.values(), key=lambda q: q.seq)

    def _redis_only(self, uid: str) -> list[dict[str, Any]]:
        """The user's sessions Redis holds without a Firestore document (``fs_doc`` 0)."""
        if not self.m.redis.configured:
            return []
        out: list[dict[str, Any]] = []
        try:
            for sid in self.m.redis.user_session_ids(uid):
                meta = self.m.redis.meta(sid)
                if not meta or meta.get("fs_doc") != "0" or meta.get("owner") != uid:
                    continue
                out.append(self._redis_session(sid, meta))
        except StoreError as exc:
            raise Unavailable("the export is unavailable; try again shortly") from exc
        return out

    def _redis_session(self, sid: str, meta: dict[str, str]) -> dict[str, Any]:
        state = RedisLayer.state_from_meta(sid, meta)
        doc = {
            "session_id": sid,
            "status": state.status,
            "created_at": state.created_at,
            "last_active_at": state.last_active_at,
            "user_info": state.user_info,
        }
        return self._session(doc)
