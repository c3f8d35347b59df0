"""The scheduled sweep: end sessions idle past the timeout (reason ``timeout``), so a user
who closes the tab still gets analytics. Runs before the Redis TTL can expire a session.
"""

from __future__ import annotations

import logging
import time

from shared.errors import ChatMemoryError, StoreError
from shared.session_manager import SessionManager, get_manager

log = logging.getLogger("chat_memory.sweep")


def sweep_idle_sessions(now: float | None = None, manager: SessionManager | None = None) -> dict[str, int]:
    m = manager or get_manager()
    now = time.time() if now is None else now
    cutoff = now - m.settings.session_idle_timeout_s
    counts = {"checked": 0, "ended": 0, "failed": 0, "active": 0, "stats_repaired": 0}
    # Candidates: active in Firestore and created before the cutoff. Whether they are
    # idle is decided by Redis' last activity (Firestore is not written per message).
    for doc in m.firestore.active_sessions_before(cutoff, m.settings.sweep_batch_size, m.settings.sweep_max_sessions):
        sid = doc["session_id"]
        counts["checked"] += 1
        try:
            last = m.last_activity(sid)
        except StoreError:
            counts["failed"] += 1  # Redis down: cannot tell if it is idle; next sweep
            continue
        if last is None:
            last = float(doc.get("last_active_at") or doc.get("created_at") or 0)
        if last >= cutoff:
            counts["active"] += 1
            continue
        try:
            m.end_session_with_analytics(sid, None, "timeout")
            counts["ended"] += 1
        except ChatMemoryError as exc:
            counts["failed"] += 1
            log.warning("sweep could not end session", extra={"session_id": sid, "error": exc.code})
    counts["stats_repaired"] = repair_user_stats(m, now)
    log.info("sweep done", extra=counts)
    return counts


def repair_user_stats(m: SessionManager, now: float) -> int:
    """Re-apply user stats for recently ended sessions, in case a trigger run failed.

    firebase-functions 0.6.0 cannot ask for event retries, so a trigger run that fails
    (Firestore blip, instance stopped) is not redelivered. Applying is idempotent (the
    user's ledger of counted sessions), so this costs reads, and writes only for a
    session the trigger missed.
    """
    window = m.settings.stats_repair_window_s
    if window <= 0:
        return 0
    repaired = 0
    try:
        for doc in m.firestore.sessions_ended_since(
            now - window, m.settings.sweep_batch_size, m.settings.sweep_max_sessions
        ):
            if not doc.get("owner"):
                continue
            try:
                applied = m.firestore.apply_session_stats(doc["session_id"], doc)
            except StoreError:
                if m.firestore.breaker.is_open:
                    raise  # Firestore is away: the next run repairs
                continue  # this session's request was refused (logged): the others still count
            if applied:
                repaired += 1
                log.warning("user stats repaired", extra={"session_id": doc["session_id"]})
    except StoreError:
        log.warning("stats repair skipped: firestore unavailable")
    return repaired
