"""Many sessions ending at once, all on one UTC day and citing one hot KB entry: every counting
transaction commits (none fails after its retries), and the admin report's totals and the
entry's usage equal a recount exactly. The day's rollup and each entry's usage are spread over
ROLLUP_SHARDS documents (a session's shard chosen by its id), so the ends do not all contend
on one document."""

from __future__ import annotations

import datetime as dt
import random
import threading
import uuid
from typing import Any

from shared.features.admin import Reports
from shared.store.firestore import rollups
from shared.store.firestore.reports import ReportStore
from tests.store.conftest import make_manager

ENDS = 48


def _ended_sessions(db: Any, n: int, hot: str, now: float) -> list[dict[str, Any]]:
    docs = []
    batch = db.batch()
    for i in range(n):
        sid = uuid.uuid4().hex
        doc = {
            "session_id": sid,
            "owner": f"hot-{uuid.uuid4().hex[:10]}",
            "status": "ended",
            "created_at": now - 60,
            "ended_at": now,
            "end_reason": "completed",
            "message_count": 2 + i % 3,
            "queries_recorded": 0,
            "kb_sources": [hot],
            "kb_source_uses": [1 + i % 2],
        }
        batch.set(db.collection("sessions").document(sid), doc)
        docs.append(doc)
    batch.commit()
    return docs


def test_many_ends_at_once_all_count_and_the_report_equals_a_recount(firestore_emulator, no_emulated_trigger):
    m = make_manager(None)
    stats, db = m.stats, m.firestore.db()
    hot = "hot_" + uuid.uuid4().hex[:8]
    # a UTC day of this test's own (no other test ends a session on it): its totals are ours
    now = dt.datetime(2031, 1, 1, 12, tzinfo=dt.UTC).timestamp() + random.randrange(3000) * 86400
    docs = _ended_sessions(db, ENDS, hot, now)
    failed: list[BaseException] = []
    counted: list[bool] = []
    start = threading.Barrier(ENDS)

    def end(doc: dict[str, Any]) -> None:
        start.wait()
        try:
            counted.append(stats.apply_session_stats(doc["session_id"], doc))
        except BaseException as exc:  # noqa: BLE001 - counted below
            failed.append(exc)

    threads = [threading.Thread(target=end, args=(d,)) for d in docs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failed == [], f"{len(failed)} of {ENDS} counting transactions failed: {failed[:3]}"
    assert counted == [True] * ENDS
    day = rollups.session_rollup(docs[0]["session_id"], docs[0], [], 0.5).day
    report = Reports(ReportStore(m.firestore.fs), None).report(day, day)
    [row] = [d for d in report["days"] if d["date"] == day]
    assert (row["sessions"], row["messages"]) == (ENDS, sum(d["message_count"] for d in docs))  # a recount
    usage = stats.kb_usage(hot)
    assert usage == {
        "entry_id": hot,
        "use_count": sum(d["kb_source_uses"][0] for d in docs),
        "session_count": ENDS,
        "last_used_at": now,
    }
    # spread: the day's ends went to several of its shards, none took them all
    shards = list(db.collection("rollups").document(day).collection(rollups.SHARDS).stream())
    assert 1 < len(shards) <= m.settings.counter_shards
    assert sum(s.to_dict()["sessions"] for s in shards) == ENDS
    assert report["end_reasons"] == {"completed": ENDS}
