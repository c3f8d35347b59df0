"""Section 8: the admin report. `admin_report` over 90 days holding 10,000 ended sessions,
against the Firestore emulator: latency per report and Firestore documents read per report
(counted at the client). The day rollups are what the session-end trigger leaves (built
here with the same code, ``rollups.session_rollup``, from synthetic sessions), so the
report's cost is measured without ending 10,000 sessions first. The point: a report reads
one document per day, whatever the number of sessions.
"""

from __future__ import annotations

import random
import statistics
import time
from typing import Any

from bench.common import PROJECT, firestore_on_emulator, percentile

DAY0 = 86400 * 25_000  # 2038-06-13, a range nothing else writes


def _synthetic_days(sessions: int, days: int, seed: int = 11) -> dict[str, dict[str, Any]]:
    from shared.store.firestore import rollups

    rng = random.Random(seed)
    out: dict[str, dict[str, Any]] = {}
    for i in range(sessions):
        ended = DAY0 + 86400 * (i % days) + rng.randint(0, 86399)
        analytics = [
            {
                "seq": 2 * j + 2,
                "confidence": rng.random(),
                "sources": [f"faq_{rng.randint(0, 40)}"],
                "collection": rng.choice(["returns", "shipping", "billing", "account", "orders"]),
                "query": "q",
                "response": "a",
                "timestamp": ended,
            }
            for j in range(rng.randint(1, 6))
        ]
        session = {
            "ended_at": ended,
            "message_count": 2 * len(analytics),
            "end_reason": rng.choice(["completed", "timeout"]),
        }
        r = rollups.session_rollup(f"s{i:05d}", session, analytics, 0.5)
        day = out.setdefault(r.day, {"date": r.day})
        rollups._add(day, r.increments())  # noqa: SLF001 - the same summing the backfill does
    return out


def section_admin(*, sessions: int, days: int, reports: int) -> dict[str, Any]:
    with firestore_on_emulator() as client:
        if isinstance(client, str):
            return {"skipped": client}
        from shared.features.admin import Reports
        from shared.settings import Settings
        from shared.store.firestore.client import Firestore
        from shared.store.firestore.reports import ReportStore
        from shared.store.firestore.rollups import day_of
        from tests.store.test_end_trigger_sweep import WriteCounter

        counter = WriteCounter(client)
        data = _synthetic_days(sessions, days)
        batch = client.batch()
        for d, doc in data.items():
            batch.set(client.collection("rollups").document(d), doc)
        batch.commit()
        r = Reports(ReportStore(Firestore(Settings(gcp_project=PROJECT), client=client)), None)
        first, last = day_of(DAY0), day_of(DAY0 + 86400 * (days - 1))
        r.report(first, last)  # warm-up
        times, reads = [], []
        for _ in range(reports):
            r0 = counter.reads
            t0 = time.perf_counter()
            out = r.report(first, last)
            times.append((time.perf_counter() - t0) * 1000)
            reads.append(counter.reads - r0)
        assert sum(d["sessions"] for d in out["days"]) == sessions
        return {
            "sessions": sessions,
            "days": days,
            "reports": reports,
            "latency_p50_ms": round(statistics.median(times), 1),
            "latency_p99_ms": round(percentile(times, 99), 1),
            "firestore_reads_per_report": statistics.median(reads),
            "how": "Reports.report over the range against the Firestore emulator (in-process, as admin_report "
            "calls it); reads counted at the client (documents in batch gets)",
        }
