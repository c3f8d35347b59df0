"""Answer-quality reports for admins (a Firebase user with the ``admin`` custom claim): the
range's daily figures from the day rollups (one read per day, never the analytics), the
low-confidence answers newest first with a cursor, and one session in full, each such
read recorded in ``admin_audit`` (who, which session, when; no content)."""

from __future__ import annotations

import csv
import datetime as dt
import functools
import io
import time
from typing import Any

from shared.core.models import validate_session_id
from shared.cursor import decode_cursor, encode_cursor
from shared.errors import InvalidArgument, NotFound, PermissionDenied, StoreError, Unavailable
from shared.store.firestore import rollups
from shared.store.firestore.docs import kb_doc_id
from shared.store.firestore.reports import ReportStore

MAX_DAYS = 366
DEFAULT_DAYS = 30
TOP_ENTRIES = 20
MAX_PAGE = 200
CSV_FIELDS = ("session_id", "seq", "timestamp", "confidence", "collection", "sources", "query", "response")


def require_admin(admin: bool) -> None:
    if not admin:
        raise PermissionDenied("this needs an admin (the 'admin' custom claim)")


def day_range(date_from: object, date_to: object) -> list[str]:
    """The UTC days from..to (both included): at most MAX_DAYS; default the last 30."""
    to = _day(date_to, "to") if date_to is not None else dt.datetime.now(dt.UTC).date()
    try:
        start = _day(date_from, "from") if date_from is not None else to - dt.timedelta(days=DEFAULT_DAYS - 1)
    except OverflowError:  # the default range would begin before 0001-01-01
        raise InvalidArgument("from is needed: the default starts before year 1", details={"field": "from"}) from None
    if start > to:
        raise InvalidArgument("from must not be after to", details={"field": "from"})
    n = (to - start).days + 1
    if n > MAX_DAYS:
        raise InvalidArgument(f"a range is at most {MAX_DAYS} days", details={"field": "to"})
    return [(start + dt.timedelta(days=i)).isoformat() for i in range(n)]


def _day(value: object, name: str) -> dt.date:
    try:
        if not isinstance(value, str) or len(value) != len("YYYY-MM-DD"):
            raise ValueError
        return dt.date.fromisoformat(value)
    except ValueError:
        raise InvalidArgument(f"{name} must be a date YYYY-MM-DD", details={"field": name}) from None


class Reports:
    def __init__(self, store: ReportStore, kb_path: str | None) -> None:
        self.store = store
        self.kb_path = kb_path

    def _need_firestore(self) -> None:
        if not self.store.configured:
            raise Unavailable("reports need Firestore, which is not configured")

    def report(self, date_from: object, date_to: object) -> dict[str, Any]:
        days = day_range(date_from, date_to)
        self._need_firestore()
        try:
            docs = self.store.rollup_days(days)
        except StoreError as exc:
            raise Unavailable("reports are unavailable; try again shortly") from exc
        merged = rollups.merge_days(list(docs.values()))
        kb = merged["kb"]
        top = sorted(kb.items(), key=lambda e: (-e[1], e[0]))[:TOP_ENTRIES]
        return {
            "days": [rollups.day_row(d, docs.get(d)) for d in days],
            "confidence_histogram": merged["confidence_histogram"],
            "top_kb_entries": [{"entry_id": k, "uses": v} for k, v in top],
            "unused_kb_entries": self._unused(set(kb)),
            "end_reasons": merged["end_reasons"],
            "collections": merged["collections"],
        }

    def _unused(self, cited: set[str]) -> list[str]:
        """Entries of the configured knowledge base file never cited in the range."""
        return [entry for entry, doc_id in _kb_entries(self.kb_path) if doc_id not in cited]

    def low_confidence(
        self, date_from: object, date_to: object, limit: int, cursor: object, *, admin_uid: str
    ) -> tuple[list[dict[str, Any]], str | None]:
        """A page of weak answers (users' questions and the answers they got), newest first;
        the read is audited, with the sessions it handed out, before it is answered."""
        days = day_range(date_from, date_to)
        self._need_firestore()
        start = dt.datetime.fromisoformat(days[0]).replace(tzinfo=dt.UTC).timestamp()
        end = dt.datetime.fromisoformat(days[-1]).replace(tzinfo=dt.UTC).timestamp() + 86400
        try:
            rows = self.store.low_confidence_page(start, end, limit, decode_cursor(cursor))
        except StoreError as exc:
            raise Unavailable("reports are unavailable; try again shortly") from exc
        items = [_item(r) for _, r in rows]
        if items:
            sessions = sorted({str(it["session_id"]) for it in items})
            try:
                self.store.audit(admin_uid, "read_low_confidence", time.time(), session_ids=sessions, items=len(items))
            except StoreError as exc:
                raise Unavailable("reports are unavailable; try again shortly") from exc
        nxt = encode_cursor(rows[-1][1]["timestamp"], rows[-1][0]) if len(rows) == limit else None
        return items, nxt

    def session(self, session_id: object, admin_uid: str) -> dict[str, Any]:
        sid = validate_session_id(session_id)
        self._need_firestore()
        try:
            doc = self.store.session(sid)
            if doc is None:
                raise NotFound("no such session")
            self.store.audit(admin_uid, "read_session", time.time(), session_id=sid)
            analytics = self.store.analytics(sid)
        except StoreError as exc:
            raise Unavailable("reports are unavailable; try again shortly") from exc
        final = doc.pop("final_messages", None) or []
        return {"session": doc, "analytics": analytics, "final_messages": final}


@functools.lru_cache(maxsize=4)
def _kb_entries(path: str | None) -> tuple[tuple[str, str], ...]:
    """(entry id, its document id) of a KB file, read once per instance: the file ships
    with the deployment and does not change while it runs."""
    from shared.features.responders.knowledge import KnowledgeBaseError, load_knowledge_base

    try:
        kb = load_knowledge_base(path)
    except KnowledgeBaseError:
        return ()
    return tuple((e.id, kb_doc_id(e.id)) for e in kb.entries)


def _item(r: dict[str, Any]) -> dict[str, Any]:
    return {k: r.get(k) for k in ("session_id", "seq", "query", "response", "confidence", "sources", "collection")} | {
        "timestamp": float(r.get("timestamp") or 0)
    }


_FORMULA_LEADS = ("=", "+", "-", "@", "\t", "\r")


def to_csv(items: list[dict[str, Any]]) -> str:
    out = io.StringIO()
    w = csv.writer(out)
    w.writerow(CSV_FIELDS)
    for it in items:
        row = [it.get(f) for f in CSV_FIELDS]
        row[CSV_FIELDS.index("sources")] = " ".join(it.get("sources") or [])
        # a cell a spreadsheet would run as a formula is quoted as text (OWASP's CSV
        # injection list: a leading TAB or CR is skipped by spreadsheets before a formula)
        w.writerow([("'" + c) if isinstance(c, str) and c[:1] in _FORMULA_LEADS else c for c in row])
    return out.getvalue()
