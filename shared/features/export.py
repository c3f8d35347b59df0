"""A user's data rights: everything the product holds about the caller, exported.

What a session holds, wherever it is: its document (status, timestamps, summary); its
messages (an ended session's final window; an active one's window and not-yet-summarised
messages in Redis, the messages Firestore held during a Redis outage, and what this
instance's memory holds); its analytics entries (written at the end, or still buffered in
Redis or held on the outage path).

Pages of sessions, oldest first (``created_at``, then id; a session created while Firestore
was down, which Redis alone knows, in its place among them), bounded by bytes: a page holds
sessions while the next fits in ``EXPORT_PAGE_MAX_BYTES`` of JSON, and a session bigger than
what is left is split by message number (seq): its part says ``continues``, and the cursor
(created_at, id, last seq) starts the next page with the rest of it. What a page reads is
bounded likewise: session documents a few at a time, analytics one stored part at a time,
each stopped once the page is full.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from shared import fastjson
from shared.core import context as ctx
from shared.core.manager import SessionManager
from shared.core.models import SESSION_ID_RE, item_value, validate_user_id
from shared.cursor import bad_cursor, decode_cursor, decode_seq_cursor, encode_cursor
from shared.errors import StoreError, Unavailable
from shared.store.base import ERASED, QueryRecord, StoredMessage
from shared.store.firestore.reports import ReportStore
from shared.store.firestore.state import StateStore
from shared.store.firestore.stats import Stats
from shared.store.redis.layer import RedisLayer

MAX_PAGE = 100
DOC_BATCH = 4  # session documents read at once (each up to 1 MiB): a page reads few it does not use
# Bytes kept aside: the page's cursor and envelope, and per entry what the estimate
# (orjson) may spell shorter than the edge's encoder (a comma, a float's exponent).
_RESERVE = 1024
_SLACK = 8

Head = dict[str, Any]  # a session document, or the fields Redis holds of a session without one


def _key(head: Head) -> tuple[float, str]:
    return float(head.get("created_at") or 0), str(head["session_id"])


def _listed(head: Head) -> dict[str, Any]:
    """A session as list_sessions shows it."""
    out: dict[str, Any] = {
        "session_id": head["session_id"],
        "status": str(head.get("status") or "active"),
        "created_at": float(head.get("created_at") or 0),
        "memory": head.get("memory") is not False,
    }
    for k in ("last_active_at", "ended_at"):
        if isinstance(head.get(k), int | float):
            out[k] = float(head[k])
    if isinstance(head.get("message_count"), int):
        out["message_count"] = int(head["message_count"])
    return out


class DataRights:
    """``manager``: the sessions' layers (Redis, the outage-held messages in Firestore, this
    instance's memory); ``reports``: the user's session documents and their analytics;
    ``stats``: the user's totals."""

    def __init__(
        self, manager: SessionManager, reports: ReportStore, stats: Stats, state: StateStore | None = None
    ) -> None:
        self.m = manager
        self.reports = reports
        self.stats = stats
        self.state = state

    def export(self, user_id: str | None, *, cursor: object = None, limit: int = 50) -> dict[str, Any]:
        uid = validate_user_id(user_id)
        if not self.reports.configured:
            raise Unavailable("the export needs Firestore, which is not configured")
        after = decode_seq_cursor(cursor)
        if after is not None and not SESSION_ID_RE.fullmatch(after[1]):
            raise bad_cursor()
        try:
            return self._page(uid, after, limit)
        except StoreError as exc:
            raise Unavailable("the export is unavailable; try again shortly") from exc

    def sessions(self, user_id: str | None, *, cursor: object = None, limit: int = 20) -> dict[str, Any]:
        """The caller's sessions, oldest first, a page at a time (the export's order: a session
        Redis alone knows in its place): what each is, never what it holds."""
        uid = validate_user_id(user_id)
        if not self.reports.configured:
            raise Unavailable("listing sessions needs Firestore, which is not configured")
        after = decode_cursor(cursor)
        if after is not None and not SESSION_ID_RE.fullmatch(after[1]):
            raise bad_cursor()
        items: list[dict[str, Any]] = []
        out: dict[str, Any] = {"items": items}
        try:
            # documents read a page (and one) at a time: a page reads what it shows
            for head in self._heads(uid, after, lambda u, k: self._head_docs(u, k, limit + 1)):
                if len(items) == limit:
                    out["next_cursor"] = encode_cursor(items[-1]["created_at"], items[-1]["session_id"])
                    break
                items.append(_listed(head))
        except StoreError as exc:
            raise Unavailable("sessions are unavailable; try again shortly") from exc
        return out

    def _head_docs(self, uid: str, key: tuple[float, str] | None, batch_size: int) -> Iterator[Head]:
        while True:
            batch = self.reports.session_heads(uid, batch_size, key)
            yield from batch
            if len(batch) < batch_size:
                return
            key = _key(batch[-1])

    def _page(self, uid: str, after: tuple[float, str, int | None] | None, limit: int) -> dict[str, Any]:
        out: dict[str, Any] = {"user_id": uid, "sessions": [], "next_cursor": None}
        if after is None:
            out["user"] = self._user(uid)
            out["memories"] = self._memories(uid)
            # each app's state of the user (at most STATE_MAX_APPS of STATE_MAX_BYTES each)
            out["state"] = self.state.all_of(uid) if self.state is not None else {}
        room = self.m.settings.export_page_max_bytes - fastjson.size(out) - _RESERVE
        sessions: list[dict[str, Any]] = out["sessions"]
        heads: Iterable[Head] = self._heads(uid, None if after is None else (after[0], after[1]))
        from_seq = -1
        if after is not None:
            head = self._cursor_head(uid, after)  # the caller's, or a 400
            if head is not None and after[2] is not None:
                heads, from_seq = itertools.chain([head], heads), after[2]
        last: str | None = None  # the cursor after the last whole session on the page
        for head in heads:
            if len(sessions) == limit:
                out["next_cursor"] = last
                break
            got = self._part(head, from_seq, room, first=not sessions)
            from_seq = -1
            if got is None:  # not one message of it fits: it starts the next page
                out["next_cursor"] = last
                break
            part, used, seq = got
            sessions.append(part)
            room -= used
            if part["continues"]:
                out["next_cursor"] = encode_cursor(*_key(head), seq)
                break
            last = encode_cursor(*_key(head))
        return out

    def _user(self, uid: str) -> dict[str, Any]:
        """The user's totals as get_user_stats answers them: zeros before any ended session."""
        u = self.stats.get_user(uid) or {}
        return {
            "total_sessions": int(u.get("total_sessions") or 0),
            "total_messages": int(u.get("total_messages") or 0),
            "total_queries": int(u.get("total_queries") or 0),
            "last_active_at": u.get("last_active_at"),
            "recent_sessions": list(u.get("recent_sessions") or []),
        }

    def _memories(self, uid: str) -> list[dict[str, Any]]:
        """The user's memories of past sessions with their lineage (first page only; bounded:
        MEMORY_MAX_SESSIONS of at most MEMORY_TEXT_MAX_CHARS + MEMORY_SEARCH_MAX_BYTES each)."""
        store = self.stats.memories
        if store is None:
            return []
        keep = ("session_id", "text", "search", "seq_from", "seq_to", "summary_version", "roles", "ended_at")
        return [{k: d.get(k) for k in keep} for d in store.all(uid)]

    # ------------------------------------------------------------------ which sessions
    def _heads(
        self,
        uid: str,
        key: tuple[float, str] | None,
        docs: Callable[[str, tuple[float, str] | None], Iterator[Head]] | None = None,
    ) -> Iterator[Head]:
        """The user's sessions after ``key``, in order: documents read a few at a time
        (``docs``: whole, for the export; projected, for a listing), merged with the sessions
        Redis alone knows (a handful of hashes)."""
        redis_only = sorted((h for h in self._redis_only(uid) if key is None or _key(h) > key), key=_key)
        prev = None
        for head in heapq.merge((docs or self._docs)(uid, key), redis_only, key=_key):  # a document first
            if head["session_id"] != prev:  # a session given its document since Redis was read
                yield head
            prev = head["session_id"]

    def _docs(self, uid: str, key: tuple[float, str] | None) -> Iterator[Head]:
        while True:
            batch = self.reports.sessions_of(uid, DOC_BATCH, key)
            yield from batch
            if len(batch) < DOC_BATCH:
                return
            key = _key(batch[-1])
            del batch

    def _redis_only(self, uid: str) -> list[Head]:
        """The user's sessions Redis holds without a Firestore document (``fs_doc`` 0)."""
        if not self.m.redis.configured:
            return []
        out = []
        for sid in self.m.redis.user_session_ids(uid):
            meta = self.m.redis.meta(sid)
            if meta and meta.get("fs_doc") == "0" and meta.get("owner") == uid:
                out.append(self._redis_head(sid, meta))
        return out

    @staticmethod
    def _redis_head(sid: str, meta: dict[str, str]) -> Head:
        state = RedisLayer.state_from_meta(sid, meta)
        return {
            "session_id": sid,
            "status": state.status,
            "created_at": state.created_at,
            "last_active_at": state.last_active_at,
            "user_info": state.user_info,
        }

    def _cursor_head(self, uid: str, after: tuple[float, str, int | None]) -> Head | None:
        """The session the cursor names (the last on the page before, or the one it split),
        if the caller's and still there (None: erased or expired since; the page goes on
        after it). Another user's, or one created at another time than the cursor says: a
        cursor this API did not give this caller, refused before anything is read after it."""
        ts, sid, _ = after
        doc = self.reports.session(sid)
        head: Head | None = None
        if doc is not None and doc.get("status") != ERASED:
            if doc.get("owner") != uid:
                raise bad_cursor()
            head = doc
        elif doc is None and self.m.redis.configured:
            meta = self.m.redis.meta(sid)
            if meta is not None and meta.get("fs_doc") == "0":
                if meta.get("owner") != uid:
                    raise bad_cursor()
                head = self._redis_head(sid, meta)
        if head is not None and _key(head)[0] != ts:
            raise bad_cursor()
        return head

    # ------------------------------------------------------------------ one session's part
    def _part(self, head: Head, from_seq: int, room: int, *, first: bool) -> tuple[dict[str, Any], int, int] | None:
        """The session from message number ``from_seq`` on, as much as fits in ``room``
        bytes: (its part, the bytes it takes, the last seq in it), or None when not one
        message fits. The first session of a page takes at least one message number
        whatever its size (EXPORT_PAGE_MAX_BYTES is above the largest), so pages progress."""
        part = self._header(head)
        used = fastjson.size(part) + _SLACK
        if used > room and not first:
            return None
        last = from_seq
        for seq, messages, analytics in self._entries(head, from_seq):
            n = sum(fastjson.size(x) + _SLACK for x in messages) + sum(fastjson.size(x) + _SLACK for x in analytics)
            if used + n > room and (last > from_seq or not first):
                if last == from_seq:
                    return None
                part["continues"] = True
                return part, used, last
            part["messages"] += messages
            part["analytics"] += analytics
            used += n
            last = seq
        return part, used, last

    @staticmethod
    def _header(head: Head) -> dict[str, Any]:
        return {
            "session_id": head["session_id"],
            "status": "ended" if head.get("status") == "ended" else "active",
            "created_at": head.get("created_at"),
            "last_active_at": head.get("last_active_at"),
            "ended_at": head.get("ended_at"),
            "end_reason": head.get("end_reason"),
            "user_info": head.get("user_info") or {},
            "summary": head.get("summary"),
            "messages": [],
            "analytics": [],
            "continues": False,
        }

    def _entries(self, head: Head, from_seq: int) -> Iterator[tuple[int, list[dict[str, Any]], list[dict[str, Any]]]]:
        """(seq, its messages, its analytics entries) for each seq after ``from_seq``, in order."""
        sid = head["session_id"]
        messages: Iterable[dict[str, Any]]
        analytics: Iterable[dict[str, Any]]
        if head.get("status") == "ended":
            final = [StoredMessage.from_dict(x) for x in head.get("final_messages") or []]
            messages = [_exported(m) for m in final if m.seq > from_seq]
            analytics = (e for e in self.reports.analytics_entries(sid) if int(e.get("seq", -1)) > from_seq)
        else:
            held, queries = self._held(sid)
            messages = [_exported(m) for m in held if m.seq > from_seq]
            analytics = [q.to_dict() for q in queries if q.seq > from_seq]
        tagged = heapq.merge(
            ((int(x["seq"]), 0, x) for x in messages), ((int(x["seq"]), 1, x) for x in analytics), key=lambda t: t[0]
        )
        for seq, group in itertools.groupby(tagged, key=lambda t: t[0]):
            items = list(group)
            yield seq, [x for _, k, x in items if k == 0], [x for _, k, x in items if k == 1]

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
        p_msgs, p_q = self.m.firestore.read_pending(sid)
        msgs.append(p_msgs)
        queries += p_q
        snap = self.m.memory.snapshot(sid)
        if snap is not None:
            msgs.append(snap[0])
            queries += snap[1]
        by_mid: dict[str, QueryRecord] = {}
        for q in queries:
            by_mid.setdefault(q.mid, q)
        return ctx.merge_messages(*msgs), sorted(by_mid.values(), key=lambda q: q.seq)


def _exported(m: StoredMessage) -> dict[str, Any]:
    """A stored message as the export gives it: its item as the JSON it was given, not its text."""
    d = m.to_dict()
    if m.item is not None:
        d["item"] = item_value(m.item)
    return d
