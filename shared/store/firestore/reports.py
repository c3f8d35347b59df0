"""What is read back out of Firestore for people: the admin's reports (day rollups, weak
answers, one session with its analytics, and the audit of that read) and a user's session
documents, paged, for the export and the erasure."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from shared.store.firestore import analytics
from shared.store.firestore.client import Firestore


class ReportStore:
    def __init__(self, fs: Firestore) -> None:
        self.fs = fs

    @property
    def configured(self) -> bool:
        return self.fs.configured

    def session(self, sid: str) -> dict[str, Any] | None:
        return self.fs.read("get_session", "sessions", sid, sid)

    def analytics(self, sid: str) -> list[dict[str, Any]]:
        return analytics.read(self.fs, sid)

    def analytics_entries(self, sid: str) -> Iterator[dict[str, Any]]:
        """The session's analytics entries in seq order, read one part at a time."""
        return analytics.entries(self.fs, sid)

    def sessions_of(self, uid: str, limit: int, after: tuple[float, str] | None) -> list[dict[str, Any]]:
        """The user's session documents, oldest first, after the cursor (created_at, id)."""
        from google.cloud.firestore_v1.base_query import FieldFilter

        col = self.fs.db().collection("sessions")
        q = col.where(filter=FieldFilter("owner", "==", uid)).order_by("created_at").order_by("__name__")
        if after is not None:
            q = q.start_after({"created_at": after[0], "__name__": col.document(after[1])})
        with self.fs.guard("sessions_of"):
            return [d.to_dict() or {} for d in q.limit(limit).stream(timeout=self.fs.timeout)]

    # What a listing of sessions shows: a projection, never a session's messages or analytics.
    HEAD_FIELDS = ("status", "created_at", "last_active_at", "ended_at", "message_count", "memory")

    def session_heads(self, uid: str, limit: int, after: tuple[float, str] | None) -> list[dict[str, Any]]:
        """The user's sessions as ``HEAD_FIELDS`` (and ``session_id``), oldest first, after the
        cursor (created_at, id): a few hundred bytes each, whatever the sessions hold."""
        from google.cloud.firestore_v1.base_query import FieldFilter

        col = self.fs.db().collection("sessions")
        q = (
            col.where(filter=FieldFilter("owner", "==", uid))
            .select(self.HEAD_FIELDS)
            .order_by("created_at")
            .order_by("__name__")
        )
        if after is not None:
            q = q.start_after({"created_at": after[0], "__name__": col.document(after[1])})
        with self.fs.guard("session_heads"):
            return [(d.to_dict() or {}) | {"session_id": d.id} for d in q.limit(limit).stream(timeout=self.fs.timeout)]

    def rollup_days(self, dates: list[str]) -> dict[str, dict[str, Any]]:
        """Each day among ``dates`` that has counts: its shards and its own document summed
        (one batched read of the day documents, one query of each day's shards: at most
        COUNTER_SHARDS + 1 documents a day)."""
        from shared.store.firestore import rollups

        with self.fs.guard("rollups"):
            db = self.fs.db()
            refs = [db.collection("rollups").document(d) for d in dates]
            days = {s.id: [s.to_dict() or {}] for s in db.get_all(refs, **self.fs.kw()) if s.exists}
            for ref in refs:
                shards = [s.to_dict() or {} for s in ref.collection(rollups.SHARDS).stream(timeout=self.fs.timeout)]
                if shards:
                    days.setdefault(ref.id, []).extend(shards)
        return {d: rollups.summed(docs) for d, docs in days.items()}

    def low_confidence_page(
        self, from_ts: float, to_ts: float, limit: int, after: tuple[float, str] | None
    ) -> list[tuple[str, dict[str, Any]]]:
        """Low-confidence answers with from_ts <= timestamp < to_ts, newest first, after the
        cursor (timestamp, document id): pages neither skip nor repeat an answer."""
        from google.cloud import firestore
        from google.cloud.firestore_v1.base_query import FieldFilter

        col = self.fs.db().collection("low_confidence")
        q = (
            col.where(filter=FieldFilter("timestamp", ">=", from_ts))
            .where(filter=FieldFilter("timestamp", "<", to_ts))
            .order_by("timestamp", direction=firestore.Query.DESCENDING)
            .order_by("__name__", direction=firestore.Query.DESCENDING)
        )
        if after is not None:
            q = q.start_after({"timestamp": after[0], "__name__": col.document(after[1])})
        with self.fs.guard("low_confidence"):
            return [(d.id, d.to_dict() or {}) for d in q.limit(limit).stream(timeout=self.fs.timeout)]

    def audit(self, admin_uid: str, action: str, at: float, **what: str | list[str] | int) -> None:
        """Who read which users' content, when: the session (``session_id``) or sessions
        (``session_ids``) it came from, never the content itself."""
        with self.fs.guard("audit", str(what.get("session_id") or "")):
            self.fs.db().collection("admin_audit").add(
                {"admin": admin_uid, "action": action, "at": at, **what}, timeout=self.fs.timeout
            )
