"""A user's stats, KB usage and the reporting rollups, counted once per ended session.

Documents:
  users/{uid}                     totals, recent_sessions (20)
  users/{uid}/counted/{sid}       the ledger: this ended session is counted in the totals
  users/{uid}/memories/{sid}      the session's memory (``memories``), written with the counts
  kb_usage/{entry}                use_count (answers), session_count, last_used_at
  rollups/{day}, low_confidence/  the reports' day rollups and weak answers (``rollups``)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from shared.settings import Settings
from shared.store.breaker import CircuitBreaker
from shared.store.firestore import analytics, rollups
from shared.store.firestore.client import Firestore
from shared.store.firestore.docs import kb_uses
from shared.store.firestore.memories import USER_LIST, MemoryStore

if TYPE_CHECKING:
    from google.cloud.firestore import Transaction

RECENT_SESSIONS = 20
# (session id, ended session document, its analytics entries) -> the memory to write, or None
Digest = Callable[[str, dict[str, Any], list[dict[str, Any]]], dict[str, Any] | None]


class Stats:
    def __init__(self, fs: Firestore, memories: MemoryStore | None = None, digest: Digest | None = None) -> None:
        """``memories`` and ``digest``: each ended session's memory is written with its counts."""
        self.fs = fs
        self.memories = memories
        self.digest = digest

    @property
    def settings(self) -> Settings:
        return self.fs.settings

    @property
    def breaker(self) -> CircuitBreaker:
        return self.fs.breaker

    def get_user(self, uid: str) -> dict[str, Any] | None:
        return self.fs.read("get_user", "users", uid)

    def counted(self, uid: str, sid: str) -> bool:
        """Whether the ledger holds the session (unguarded: the rollups' rebuild, a tool)."""
        user = self.fs.db().collection("users").document(uid)
        marker = user.collection("counted").document(sid).get()
        legacy = sid in ((user.get().to_dict() or {}).get("counted_sessions") or [])
        return marker.exists or legacy

    def apply_session_stats(self, sid: str, session: dict[str, Any]) -> bool:
        """Count an ended session into users/{uid}, kb_usage and the reporting rollups
        (``shared.store.firestore.rollups``), once.

        A marker users/{uid}/counted/{sid}, written in the same transaction as the counts,
        says the session was counted: a redelivered trigger event or the sweep's repair
        changes nothing, however many sessions the user ends.
        """
        from google.cloud import firestore

        fs = self.fs
        uid = session["owner"]
        kb = kb_uses(session)
        ended_at = float(session.get("ended_at") or 0)
        marker = fs.db().collection("users").document(uid).collection("counted").document(sid)
        with fs.guard("apply_stats", sid):
            # Counted already (a redelivered event, the sweep's repair pass over the last
            # hour's sessions): one read, not the session's analytics. The transaction
            # below checks the marker again; this only saves the reads.
            if marker.get(**fs.kw()).exists:
                return False
        # The analytics are written before the session turns ended, and never change after.
        entries = analytics.read(fs, sid)
        report = rollups.session_rollup(sid, session, entries, self.settings.low_confidence_threshold)
        memory = self._digest(sid, session, entries)
        # one of COUNTER_SHARDS documents of the day's rollup and of each entry's usage
        shard = rollups.shard_of(sid, self.settings.counter_shards)

        def work(tx: Transaction) -> bool:
            # The session as it is now, not as the event saw it: an erased session (its
            # document a tombstone) is never counted again, whatever event arrives late.
            now_doc = fs.session_ref(sid).get(transaction=tx).to_dict() or {}
            if now_doc.get("status") != "ended" or now_doc.get("owner") != uid:
                return False
            uref = fs.db().collection("users").document(uid)
            mref = uref.collection("counted").document(sid)
            usnap, msnap = uref.get(transaction=tx), mref.get(transaction=tx)
            user = (usnap.to_dict() or {}) if usnap.exists else {}
            # counted_sessions: the ledger of earlier releases, read until it ages out of
            # the repair window; no longer written.
            legacy = list(user.get("counted_sessions") or [])
            if msnap.exists or sid in legacy:
                return False
            recent = [s for s in (user.get("recent_sessions") or []) if s != sid]
            # The memory goes with the counts, under the same ledger: once, and never for a
            # session erased (the document re-read above) or a memory-off one.
            remembered: dict[str, Any] = {USER_LIST: user[USER_LIST]} if user.get(USER_LIST) else {}
            if memory is not None and self.memories is not None and now_doc.get("memory") is not False:
                remembered = self.memories.put_in(tx, uid, user, memory)
            tx.set(
                uref,
                {
                    "user_id": uid,
                    "total_sessions": int(user.get("total_sessions") or 0) + 1,
                    "total_messages": int(user.get("total_messages") or 0) + int(session.get("message_count") or 0),
                    "total_queries": int(user.get("total_queries") or 0) + int(session.get("queries_recorded") or 0),
                    "last_active_at": max(float(user.get("last_active_at") or 0), ended_at),
                    "recent_sessions": ([sid] + recent)[:RECENT_SESSIONS],
                }
                | ({"counted_sessions": legacy} if legacy else {})
                | remembered,
            )
            tx.set(mref, {"session_id": sid, "ended_at": ended_at})
            for entry, (name, uses) in kb.items():
                tx.set(
                    fs.db().collection("kb_usage").document(entry).collection(rollups.SHARDS).document(shard),
                    {
                        "entry_id": name,
                        "use_count": firestore.Increment(uses),
                        "session_count": firestore.Increment(1),
                        "last_used_at": ended_at,
                    },
                    merge=True,
                )
            rollups.write(tx, fs.db(), report, shard)
            return True

        with fs.guard("apply_stats", sid):
            return fs.transactional(work)

    def kb_usage(self, entry: str) -> dict[str, Any]:
        """One KB entry's usage, summed over its shards (and the entry's own document, where
        releases before the shards counted): ``entry_id``, ``use_count``, ``session_count``,
        ``last_used_at``."""
        from shared.store.firestore.docs import kb_doc_id

        with self.fs.guard("kb_usage"):
            ref = self.fs.db().collection("kb_usage").document(kb_doc_id(entry))
            docs = [s.to_dict() or {} for s in ref.collection(rollups.SHARDS).stream(timeout=self.fs.timeout)]
            own = ref.get(**self.fs.kw())
        docs += [own.to_dict() or {}] if own.exists else []
        return {
            "entry_id": next((d["entry_id"] for d in docs if d.get("entry_id")), None),
            "use_count": sum(int(d.get("use_count") or 0) for d in docs),
            "session_count": sum(int(d.get("session_count") or 0) for d in docs),
            "last_used_at": max((float(d.get("last_used_at") or 0) for d in docs), default=None),
        }

    def _digest(self, sid: str, session: dict[str, Any], entries: list[dict[str, Any]]) -> dict[str, Any] | None:
        if self.digest is None or self.memories is None or session.get("memory") is False:
            return None
        return self.digest(sid, session, entries)
