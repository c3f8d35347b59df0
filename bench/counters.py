"""Section counters (13): session ends counted under load, sharded against one document.

Several processes (``PROCESSES``, each with ``THREADS`` threads) count ended sessions into the
stats, KB usage and the day's rollup as the trigger does (``Stats.apply_session_stats``, the
exactly-once counting transaction) at a paced total rate (``rate`` ends a second) for
``seconds``, against the Firestore emulator, every session on one UTC day of the run's own and
citing one hot KB entry: the worst case for hot documents. Run twice on fresh days:
COUNTER_SHARDS=20 (the default) and COUNTER_SHARDS=1 (one document a day and an entry, as before).

Per run, counted in the processes: ends attempted, committed, failed (a transaction that
gave up after its attempts), retried (ends whose transaction ran more than once) and the
attempts in all; the counting's p50/p99 (the trigger's work, in ms); the achieved rate; and
the admin report's day totals (sessions, messages) and the entry's usage against a recount of
what committed (equal: ``exact``). The emulator serialises transactions with locks rather
than failing them as production's optimistic concurrency does, so its retries understate
production's; the per-document write rate (ends a second / shards) is what Firestore's limit
is stated in, and is reported too.
"""

from __future__ import annotations

import datetime as dt
import multiprocessing as mp
import os
import random
import statistics
import threading
import time
import uuid
from typing import Any

PROCESSES = 4
THREADS = 4


def _docs(n: int, hot: str, ended_at: float) -> list[dict[str, Any]]:
    return [
        {
            "session_id": uuid.uuid4().hex,
            "owner": f"load-{uuid.uuid4().hex[:10]}",
            "status": "ended",
            "created_at": ended_at - 60,
            "ended_at": ended_at,
            "end_reason": "completed",
            "message_count": 2 + i % 5,
            "queries_recorded": 0,
            "kb_sources": [hot],
            "kb_source_uses": [1 + i % 3],
        }
        for i in range(n)
    ]


def _worker(host: str, shards: int, hot: str, ended_at: float, n: int, rate: float, out: Any) -> None:  # noqa: PLR0917
    """One process: write ``n`` ended sessions, then count them at ``rate`` a second."""
    os.environ["FIRESTORE_EMULATOR_HOST"] = host
    os.environ["COUNTER_SHARDS"] = str(shards)
    import logging

    logging.disable(logging.CRITICAL)
    from bench.common import PROJECT
    from shared.settings import Settings
    from shared.store.firestore.client import Firestore
    from shared.store.firestore.stats import Stats

    settings = Settings(gcp_project=PROJECT, firestore_enabled=True, counter_shards=shards)
    fs = Firestore(settings)
    stats = Stats(fs)
    docs = _docs(n, hot, ended_at)
    db = fs.db()
    for i in range(0, n, 400):
        batch = db.batch()
        for d in docs[i : i + 400]:
            batch.set(db.collection("sessions").document(d["session_id"]), d)
        batch.commit()

    attempts: dict[str, int] = {}
    original = fs.transactional

    def counting(fn: Any, *args: Any) -> Any:  # each call of the transaction's function is one attempt
        sid = threading.current_thread().name

        def attempt(tx: Any, *a: Any) -> Any:
            attempts[sid] = attempts.get(sid, 0) + 1
            return fn(tx, *a)

        return original(attempt, *args)

    fs.transactional = counting  # type: ignore[method-assign]
    results: list[tuple[bool, float, int, int]] = []  # (committed, seconds, attempts, the session's messages)
    lock = threading.Lock()
    interval = THREADS / rate  # each thread's pace
    start = time.monotonic() + 0.5

    def run(mine: list[dict[str, Any]], k: int) -> None:
        due = start + k * interval / THREADS
        for d in mine:
            time.sleep(max(0.0, due - time.monotonic()))
            due += interval
            name = threading.current_thread().name
            attempts[name] = 0
            t0 = time.perf_counter()
            try:
                ok = stats.apply_session_stats(d["session_id"], d)
            except Exception:  # noqa: BLE001 - a failed counting transaction is what is counted
                ok = False
            with lock:
                results.append((ok, time.perf_counter() - t0, attempts[name], d["message_count"]))

    threads = [
        threading.Thread(target=run, args=(docs[k::THREADS], k), name=f"t{k}-{uuid.uuid4().hex[:6]}")
        for k in range(THREADS)
    ]
    t_start = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    out.put({"results": results, "seconds": time.monotonic() - t_start})


def _run(host: str, shards: int, rate: float, seconds: float) -> dict[str, Any]:
    from bench.common import PROJECT
    from shared.settings import Settings
    from shared.store.firestore.client import Firestore
    from shared.store.firestore.reports import ReportStore
    from shared.store.firestore.stats import Stats

    day0 = dt.datetime(2040, 1, 1, 12, tzinfo=dt.UTC).timestamp() + random.randrange(5000) * 86400
    day = dt.datetime.fromtimestamp(day0, dt.UTC).date().isoformat()
    hot = "hot_" + uuid.uuid4().hex[:8]
    per_process = round(rate * seconds / PROCESSES)
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    procs = [
        ctx.Process(target=_worker, args=(host, shards, hot, day0, per_process, rate / PROCESSES, out))
        for _ in range(PROCESSES)
    ]
    for p in procs:
        p.start()
    got = [out.get(timeout=seconds * 10 + 300) for _ in procs]
    for p in procs:
        p.join()
    results = [r for g in got for r in g["results"]]
    took = max(g["seconds"] for g in got)
    committed = [r for r in results if r[0]]
    lat = sorted(r[1] * 1000 for r in results)
    settings = Settings(gcp_project=PROJECT, firestore_enabled=True, counter_shards=shards)
    fs = Firestore(settings)
    row = ReportStore(fs).rollup_days([day]).get(day, {})
    usage = Stats(fs).kb_usage(hot)
    return {
        "shards": shards,
        "processes": PROCESSES,
        "threads_per_process": THREADS,
        "ends_attempted": len(results),
        "committed": len(committed),
        "failed": len(results) - len(committed),
        "retried": sum(1 for r in results if r[2] > 1),
        "attempts": sum(r[2] for r in results),
        "achieved_ends_per_s": round(len(results) / took, 1),
        "target_ends_per_s": rate,
        "seconds": round(took, 1),
        "count_p50_ms": round(statistics.median(lat), 1),
        "count_p99_ms": round(lat[min(len(lat) - 1, int(len(lat) * 0.99))], 1),
        "writes_per_s_per_rollup_document": round(len(results) / took / shards, 2),
        "report_sessions": int(row.get("sessions") or 0),
        "report_messages": int(row.get("messages") or 0),
        "recount_messages": sum(r[3] for r in committed),
        "kb_session_count": usage["session_count"],
        "exact": int(row.get("sessions") or 0) == len(committed) == usage["session_count"]
        and int(row.get("messages") or 0) == sum(r[3] for r in committed),
    }


def section_counters(*, rate: float, seconds: float) -> dict[str, Any]:
    from bench.common import firestore_on_emulator

    with firestore_on_emulator() as client:
        if isinstance(client, str):
            return {"skipped": client}
        host = os.environ["FIRESTORE_EMULATOR_HOST"]
        _run(host, 20, rate / 2, min(seconds, 5))  # a warm-up (the emulator's JIT), not reported
        return {"sharded": _run(host, 20, rate, seconds), "one_document": _run(host, 1, rate, seconds)}
