"""The sweep's scans over the session documents, a page at a time: the idle candidates, and
the recently ended sessions the stats repair (and the rollups' rebuild) walk."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from shared.store.firestore.client import Firestore

if TYPE_CHECKING:
    from google.cloud.firestore import Query


class SessionScans:
    def __init__(self, fs: Firestore) -> None:
        self.fs = fs

    def active_sessions_before(self, cutoff: float, page: int, max_docs: int) -> Iterator[dict[str, Any]]:
        """Active sessions created before ``cutoff`` (index: status + created_at)."""
        return self._paged("sweep_query", self._sessions_where("active", "created_at", "<", cutoff), page, max_docs)

    def sessions_ended_since(self, since: float, page: int, max_docs: int) -> Iterator[dict[str, Any]]:
        """Sessions ended at or after ``since`` (index: status + ended_at)."""
        return self._paged("repair_query", self._sessions_where("ended", "ended_at", ">=", since), page, max_docs)

    def _sessions_where(self, status: str, field: str, op: str, value: float) -> Query:
        from google.cloud.firestore_v1.base_query import FieldFilter

        return (
            self.fs.db()
            .collection("sessions")
            .where(filter=FieldFilter("status", "==", status))
            .where(filter=FieldFilter(field, op, value))
            .order_by(field)
        )

    def _paged(self, op: str, query: Query, page: int, max_docs: int) -> Iterator[dict[str, Any]]:
        """Every match, a page at a time (a cursor, not an offset), up to ``max_docs``: a
        fixed 'first N' would let long-lived matches at the head starve the rest."""
        last = None
        seen = 0
        while seen < max_docs:
            q = query.start_after(last) if last is not None else query
            with self.fs.guard(op):
                docs = list(q.limit(min(page, max_docs - seen)).stream(timeout=self.fs.timeout))
            for d in docs:
                yield d.to_dict() or {}
            seen += len(docs)
            if len(docs) < page:
                return
            last = docs[-1]
