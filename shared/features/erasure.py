"""Erasure: a session's data, or all of a user's, deleted from every layer, and kept from
coming back.

One session, in this order:
1. its Firestore document becomes a tombstone (status ``erased``, no owner, no content), in
   a transaction: an end committing at the same moment, or a session-end event delivered
   late, finds the tombstone and writes nothing (the counting transaction re-reads the
   document; the end's transaction refuses and deletes the analytics parts it wrote);
2. its Redis keys are deleted and a tombstone stays for the session's TTL: an append, a
   read, an end or a merge on another instance answers "no such session" instead of
   rebuilding it from another layer (``lua/erase.lua``; the scripts check it first, so the
   healthy append stays one round trip);
3. what Firestore still holds: outage-held messages, the analytics and their parts, the
   weak answers listed for the reports; and this instance's memory.
A user: each of their sessions, then the user document, its ledger of counted sessions, and
the Redis keys named by the user id. Every step is idempotent, so a run that stopped half
way is finished by the next call; the receipt (``erasures/{id}``: who asked, when, counts,
complete or not; no content, and the user id only as a hash) says ``complete`` only then.
Kept, holding no personal data: the daily rollups and ``kb_usage`` counts.
"""

from __future__ import annotations

import hashlib
import logging
import time
from typing import Any

from shared.core.manager import SessionManager
from shared.core.models import validate_session_id, validate_user_id
from shared.errors import NotFound, PermissionDenied, StoreError, Unavailable
from shared.store.firestore.erasure import ErasureStore, Forbidden
from shared.store.firestore.reports import ReportStore

log = logging.getLogger("chat_memory.erasure")
_PAGE = 300
COUNTS = ("sessions", "messages", "analytics_entries", "redis_keys", "documents", "memories")


def subject_hash(uid: str) -> str:
    return hashlib.sha256(f"chat-memory-user:{uid}".encode()).hexdigest()


class Erasure:
    """``manager``: the sessions' Redis keys, this instance's memory and its recovery;
    ``store``: what Firestore deletes and the receipts; ``reports``: the session documents
    read before (whose they are, how many messages they had)."""

    def __init__(self, manager: SessionManager, store: ErasureStore, reports: ReportStore) -> None:
        self.m = manager
        self.store = store
        self.reports = reports

    def erase_session(self, session_id: object, user_id: str | None) -> dict[str, int]:
        """Erase one session (``user_id`` must own it; None: an admin or the system)."""
        sid = validate_session_id(session_id)
        if not self.store.configured or not self.m.redis.configured:
            raise Unavailable("erasure needs Redis and Firestore")
        now = time.time()
        try:
            known = self.reports.session(sid)
            meta = self.m.redis.meta(sid)
            if known is None and meta is None:
                raise NotFound("no such session")
            owner = (known or {}).get("owner") or (meta or {}).get("owner")
            if user_id is not None and owner is not None and owner != user_id:
                raise PermissionDenied("this session belongs to another user")
            doc = self.store.tombstone(sid, user_id, now)  # first: see the docstring
            status, redis_counts = self.m.redis.erase(sid, user_id, now)
            if status == "forbidden":
                raise PermissionDenied("this session belongs to another user")
            fs_counts = self.store.delete_session_data(sid)
            owner = owner or user_id
            memories = self.store.delete_memory(owner, sid) if owner else 0
        except Forbidden:
            raise PermissionDenied("this session belongs to another user") from None
        except StoreError as exc:
            raise Unavailable("erasure could not finish; call again to complete it") from exc
        self.m.memory.drop(sid)
        self.m.recovery.settled(sid)
        if owner:
            self._forget_cached(owner)
        erased_now = doc is not None or status == "ok"
        log.info("session erased", extra={"session_id": sid, "again": not erased_now})
        return {
            "sessions": 1 if erased_now else 0,
            # every message the session had (the older ones live on only in its summary)
            "messages": max(
                int((meta or {}).get("seq") or 0),
                int((known or {}).get("message_count") or 0),
                int((known or {}).get("seq_hwm") or 0),
            )
            if erased_now
            else 0,
            "analytics_entries": max(redis_counts["analytics_entries"], fs_counts["analytics_entries"]),
            "redis_keys": (len(self.m.redis.keys(sid)) if status == "ok" else 0),
            "documents": (1 if doc is not None else 0) + fs_counts["pending_messages"] + fs_counts["low_confidence"]
            + (1 if fs_counts["analytics_entries"] else 0),
            "memories": memories,
        }  # fmt: skip

    def erase_user(self, user_id: object, requested_by: str) -> dict[str, Any]:
        """Erase everything of ``user_id``; resumable and idempotent (one receipt per user)."""
        uid = validate_user_id(user_id)
        store, redis = self.store, self.m.redis
        if not store.configured or not redis.configured:
            raise Unavailable("erasure needs Redis and Firestore")
        receipt_id = subject_hash(uid)[:32]
        try:
            # Each step adds its counts to the receipt as it goes (two runs at once, or a run
            # finishing one that stopped, each add theirs): the receipt counts everything once.
            store.open_receipt(
                {
                    "receipt_id": receipt_id,
                    "subject": subject_hash(uid),
                    "requested_by": requested_by,
                    "requested_at": time.time(),
                    "erased": dict.fromkeys(COUNTS, 0),
                    "complete": False,
                }
            )
            for sid in self._sessions_of(uid):
                store.count(receipt_id, self.erase_session(sid, uid))
            store.count(receipt_id, {"memories": store.delete_memories(uid)})
            store.count(receipt_id, {"documents": store.delete_user(uid), "redis_keys": redis.forget_user(uid)})
            totals = dict(store.close_receipt(receipt_id, time.time()).get("erased") or {})
        except StoreError as exc:
            raise Unavailable("erasure could not finish; call again to complete it") from exc
        log.info("user erased", extra={"receipt_id": receipt_id, **totals})
        return {"receipt_id": receipt_id, "complete": True, "erased": totals}

    def _forget_cached(self, uid: str) -> None:
        """A memory went: no session's cached corpus of the user's memories is used again."""
        try:
            self.m.redis.recall.bump(uid)
            for sid in self.m.redis.user_session_ids(uid):
                self.m.redis.recall.clear(sid)
        except StoreError:
            log.warning("memory caches not invalidated: redis unavailable (they expire with their sessions)")

    def _sessions_of(self, uid: str) -> list[str]:
        """Every session of the user: Firestore documents (all pages) and the sessions Redis
        counts for them (one created while Firestore was down has no document yet)."""
        ids: list[str] = []
        after: tuple[float, str] | None = None
        while True:
            docs = self.reports.sessions_of(uid, _PAGE, after)
            ids += [d["session_id"] for d in docs]
            if len(docs) < _PAGE:
                break
            after = (float(docs[-1]["created_at"]), docs[-1]["session_id"])
        seen = set(ids)
        ids += [s for s in self.m.redis.user_session_ids(uid) if s not in seen]
        return ids
