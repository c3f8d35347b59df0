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
    counts = {"checked": 0, "ended": 0, "failed": 0, "active": 0}
    # Candidates: active in Firestore and created before the cutoff. Whether they are
    # idle is decided by Redis' last activity (Firestore is not written per message).
    for doc in m.firestore.active_sessions_before(cutoff, m.settings.sweep_batch_size):
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
    log.info("sweep done", extra=counts)
    return counts
