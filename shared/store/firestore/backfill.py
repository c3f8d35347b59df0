"""Rebuilding the reporting rollups from the ended sessions (``scripts/backfill_rollups.py``):
a maintenance run off the hot path, apart from ``rollups`` (what one session adds) so that
the stats, which write a session's part as it is counted, and the rollups import one way."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from shared.store.firestore import analytics
from shared.store.firestore.rollups import SHARDS, add_into, session_rollup, weak_doc_id

if TYPE_CHECKING:
    from shared.store.firestore.scans import SessionScans
    from shared.store.firestore.stats import Stats


def rebuild(
    stats: Stats, scans: SessionScans, threshold: float, *, since_day: str | None = None, page: int = 300
) -> dict[str, int]:
    """Rebuild every day's rollup and the weak answers from the analytics documents of the
    sessions already counted (their ledger marker exists): the days are overwritten with
    the recount, so running it twice changes nothing. A session not counted yet is left to
    the trigger or the sweep's repair, which add it then (counting it here too would count
    it twice). ``since_day``: only the UTC days from it on."""
    db = stats.fs.db()
    since = dt.datetime.fromisoformat(since_day).replace(tzinfo=dt.UTC).timestamp() if since_day else 0.0
    days: dict[str, dict[str, Any]] = {}
    weak: list[dict[str, Any]] = []
    counted = skipped = 0
    for doc in scans.sessions_ended_since(since, page, 10**9):
        sid, owner = doc.get("session_id"), doc.get("owner")
        if not sid or not owner:
            continue
        if not stats.counted(owner, sid):
            skipped += 1
            continue
        r = session_rollup(sid, doc, analytics.read(stats.fs, sid), threshold)
        day = days.setdefault(r.day, {"date": r.day})
        add_into(day, r.increments())
        weak.extend(r.weak)
        counted += 1
    batch, n = db.batch(), 0
    # each day's recount in its own document, and its shards gone (the report sums both)
    stale = [s.reference for d in days for s in db.collection("rollups").document(d).collection(SHARDS).stream()]
    for ref, data in (
        [(db.collection("rollups").document(d), v) for d, v in days.items()]
        + [(db.collection("low_confidence").document(weak_doc_id(w)), w) for w in weak]
        + [(ref, None) for ref in stale]
    ):
        if data is None:
            batch.delete(ref)
        else:
            batch.set(ref, data)
        n += 1
        if n % 400 == 0:
            batch.commit()
            batch = db.batch()
    batch.commit()
    return {"sessions": counted, "not_counted_yet": skipped, "days": len(days), "weak_answers": len(weak)}
