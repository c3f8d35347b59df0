"""Work that follows a session's end, run by the Firestore trigger on sessions/{id}.

Events are delivered at least once: this counts a session into the user's stats and the
KB usage counters exactly once (the ledger is written in the same transaction), and
reacts only to the transition to ``ended``. It never writes the session document, so it
cannot fire itself again.
"""

from __future__ import annotations

import logging
from typing import Any

from shared.core.models import validate_session_id
from shared.errors import InvalidArgument
from shared.store.firestore.stats import Stats

log = logging.getLogger("chat_memory.trigger")


def handle_session_written(
    session_id: str,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
    event_id: str,
    *,
    stats: Stats,
) -> bool:
    """Returns True if this event counted the session, False if there was nothing to do."""
    try:
        sid = validate_session_id(session_id)
    except InvalidArgument:
        log.warning("trigger ignored a document with a foreign id", extra={"event_id": event_id})
        return False
    if not after or after.get("status") != "ended":
        return False
    if before and before.get("status") == "ended":
        return False
    if not after.get("owner"):
        log.warning("ended session without owner", extra={"session_id": sid, "event_id": event_id})
        return False
    applied = stats.apply_session_stats(sid, after)
    log.info("session stats", extra={"session_id": sid, "event_id": event_id, "applied": applied})
    return applied
