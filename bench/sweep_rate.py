"""Sessions the sweep ends per minute, against a real redis-server and the Firestore emulator.

Run under the emulators (the sweep's queries need Firestore):
  CM_EMULATORS=firestore CM_SKIP_DRY_RUN=1 \\
  CM_RUN_CMD=".venv/bin/python -m bench.sweep_rate 200" bash scripts/test.sh

Creates N sessions of one turn each, makes them look idle (created and last used two idle
timeouts ago), then times one sweep at SWEEP_CONCURRENCY 1 and at the default, each on a
fresh set of sessions. Prints one JSON line per run.
"""

from __future__ import annotations

import json
import os
import sys
import time
import uuid
from typing import Any

from shared.core.manager import SessionManager
from shared.features.sweep import sweep_idle_sessions
from shared.settings import Settings
from shared.store.firestore.layer import FirestoreLayer
from shared.store.firestore.scans import SessionScans
from shared.store.redis.layer import RedisLayer
from tests.harness import RedisServer


def _manager(url: str, concurrency: int) -> SessionManager:
    s = Settings(
        redis_url=url,
        gcp_project=os.environ.get("GCLOUD_PROJECT", "demo-chat-memory"),
        sweep_concurrency=concurrency,
        stats_repair_window_s=0,
        max_active_sessions_per_user=0,  # one bench user holds every idle session
    )
    return SessionManager(s, redis=RedisLayer(s), firestore=FirestoreLayer(s))


def run(url: str, n: int, concurrency: int) -> dict[str, float]:
    m = _manager(url, concurrency)
    uid = "bench-" + uuid.uuid4().hex[:8]
    then = time.time() - 2 * m.settings.session_idle_timeout_s
    db = m.firestore.db()
    for _ in range(n):
        sid = m.create_session({}, user_id=uid).session_id
        m.add_message(sid, "user", "Is anyone there?", user_id=uid)
        m.add_message(sid, "assistant", "Yes. How can I help?", {"sources": ["kb_bench"]}, user_id=uid)
        db.collection("sessions").document(sid).update({"created_at": then, "last_active_at": then})
        m.redis.client().hset(m.redis.keys(sid)[0], "last_active_at", repr(then))
    t0 = time.perf_counter()
    counts = sweep_idle_sessions(m, SessionScans(m.firestore.fs), m.stats)
    elapsed = time.perf_counter() - t0
    return {
        "sweep_concurrency": concurrency,
        "sessions": n,
        "ended": counts["ended"],
        "failed": counts["failed"],
        "seconds": round(elapsed, 2),
        "ended_per_minute": round(counts["ended"] / elapsed * 60),
    }


SCHEDULE_MINUTES = 10  # functions/main.py: "every 10 minutes"


def section_sweep(url: str, *, sessions: int, levels: tuple[int, ...] = (1, 8, 16, 32)) -> dict[str, Any]:
    """make bench's section sweep (14): sessions ended per minute at each SWEEP_CONCURRENCY,
    on a fresh emulator, and what one run (SWEEP_BUDGET_S) and the 90 minutes between the
    idle timeout and the Redis TTL carry at the default."""
    from bench.common import firestore_on_emulator

    with firestore_on_emulator() as client:
        if isinstance(client, str):
            return {"skipped": client}
        runs = [run(url, sessions, c) for c in levels]
    s = Settings(gcp_project="x")
    default = next(r for r in runs if r["sweep_concurrency"] == s.sweep_concurrency)
    per_min = default["ended_per_minute"]
    window_min = (s.session_ttl_s - s.session_idle_timeout_s) / 60
    return {
        "runs": runs,
        "default_concurrency": s.sweep_concurrency,
        "ended_per_run": round(per_min * s.sweep_budget_s / 60),
        # runs every SCHEDULE_MINUTES, each ending sessions for SWEEP_BUDGET_S: what the window holds
        "backlog_cleared_before_ttl": round(per_min * (window_min / SCHEDULE_MINUTES) * (s.sweep_budget_s / 60)),
        "window_minutes": window_min,
    }


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    srv = RedisServer().start()
    try:
        for concurrency in (1, Settings(gcp_project="x").sweep_concurrency):
            print(json.dumps(run(srv.url, n, concurrency)), flush=True)
    finally:
        srv.cleanup()


if __name__ == "__main__":
    main()
