"""The scheduled sweep: end sessions idle past the timeout (reason ``timeout``), so a user
who closes the tab still gets analytics. Runs before the Redis TTL can expire a session.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from shared.core.manager import SessionInUse, SessionManager
from shared.errors import ChatMemoryError, StoreError
from shared.store.firestore.scans import SessionScans
from shared.store.firestore.stats import Stats

log = logging.getLogger("chat_memory.sweep")


def sweep_idle_sessions(
    manager: SessionManager,
    scans: SessionScans,
    stats: Stats,
    now: float | None = None,
    *,
    clock: Callable[[], float] = time.monotonic,
) -> dict[str, int]:
    """``manager`` ends the idle sessions ``scans`` finds; ``stats`` counts the ended ones
    a trigger run missed. New pages are started for SWEEP_BUDGET_S (``clock``), so a backlog
    larger than one run can end stops the run cleanly before its timeout, never mid-end;
    the next run goes on from the oldest (``budget_spent``: 1 when this one stopped so)."""
    m = manager
    now = time.time() if now is None else now
    cutoff = now - m.settings.session_idle_timeout_s
    counts = {"checked": 0, "ended": 0, "failed": 0, "active": 0, "stats_repaired": 0, "budget_spent": 0}
    deadline = clock() + m.settings.sweep_budget_s
    # Candidates: active in Firestore and created before the cutoff, a page at a time; each
    # page's sessions are ended SWEEP_CONCURRENCY at once (an end waits on Firestore
    # round trips, so one at a time falls behind a backlog of idle sessions).
    docs = scans.active_sessions_before(cutoff, m.settings.sweep_batch_size, m.settings.sweep_max_sessions)
    with ThreadPoolExecutor(m.settings.sweep_concurrency, thread_name_prefix="sweep") as pool:
        while page := list(itertools.islice(docs, m.settings.sweep_batch_size)):
            for outcome in pool.map(lambda d: _sweep_one(m, d, cutoff), page):
                counts["checked"] += 1
                counts[outcome] += 1
            if clock() >= deadline:
                counts["budget_spent"] = 1
                break
    counts["stats_repaired"] = repair_user_stats(scans, stats, now)
    log.info("sweep done", extra=counts)
    return counts


def _sweep_one(m: SessionManager, doc: dict[str, Any], cutoff: float) -> str:
    """End one candidate if it is idle: 'ended', 'active' or 'failed'."""
    sid = doc["session_id"]
    # Whether it is idle is Redis' last activity (appends and reads; Firestore is not
    # written per message). This look only saves an end attempt on a busy session: the end
    # itself re-checks atomically with its snapshot, as a user may come back in between.
    try:
        last = m.last_activity(sid)
    except StoreError:
        return "failed"  # Redis down: cannot tell if it is idle; next sweep
    if last is None:
        last = float(doc.get("last_active_at") or doc.get("created_at") or 0)
    if last >= cutoff:
        return "active"
    try:
        m.end_session_with_analytics(sid, None, "timeout", idle_before=cutoff)
    except SessionInUse:
        return "active"
    except ChatMemoryError as exc:
        log.warning("sweep could not end session", extra={"session_id": sid, "error": exc.code})
        return "failed"
    return "ended"


def repair_user_stats(scans: SessionScans, stats: Stats, now: float) -> int:
    """Re-apply user stats for recently ended sessions, in case a trigger run failed.

    firebase-functions 0.6.0 cannot ask for event retries, so a trigger run that fails
    (Firestore blip, instance stopped) is not redelivered. Applying is idempotent (the
    user's ledger of counted sessions), so this costs reads, and writes only for a
    session the trigger missed.
    """
    settings = stats.settings
    window = settings.stats_repair_window_s
    if window <= 0:
        return 0
    repaired = 0
    try:
        for doc in scans.sessions_ended_since(now - window, settings.sweep_batch_size, settings.sweep_max_sessions):
            if not doc.get("owner"):
                continue
            try:
                applied = stats.apply_session_stats(doc["session_id"], doc)
            except StoreError:
                if stats.breaker.is_open:
                    raise  # Firestore is away: the next run repairs
                continue  # this session's request was refused (logged): the others still count
            if applied:
                repaired += 1
                log.warning("user stats repaired", extra={"session_id": doc["session_id"]})
    except StoreError:
        log.warning("stats repair skipped: firestore unavailable")
    return repaired
