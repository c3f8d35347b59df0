"""Section memory_cost (12): what returning users' memory costs, counted in one run.

A user with N past sessions (200 by default: MEMORY_MAX_SESSIONS, the most one can hold) starts
new conversations; for each, counted at the clients (Firestore documents read and written on
the emulator, Redis round trips on a counting connection) and timed in-process:

- the first user message (its recall reads the user's memories once and caches them with
  the session) and the later ones (recall from the cache: no Firestore read);
- a context read (one Redis round trip, memories included);
- the recall's server time: the user message's append with memory wired, against the same
  append without (a ratio: median over the conversations, after a warm-up);
- the ended session's extra Firestore writes (its digest), the trigger with and without memory;
- the same reads with EMBEDDINGS=local (each recall one find_nearest more).

Counts are exact; times are medians of this run, on this machine, against the emulator.
"""

from __future__ import annotations

import statistics
import time
import uuid
from typing import Any

from bench.common import PROJECT, counting_pool, firestore_on_emulator

CONVERSATIONS = 5
LATER_MESSAGES = 3


def _digest(i: int) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    topic = ("kettle return", "parcel to Lisbon", "password reset", "invoice copy", "boiler repair")[i % 5]
    record = {"status": "ended", "ended_at": 1_700_000_000.0 + i * 3600, "message_count": 6, "final_messages": []}
    entries = [
        {"seq": 2 * k + 2, "query": f"question {k} about my {topic} number {i}", "response": f"answer {k} on {topic}"}
        for k in range(3)
    ]
    return record, entries


def _conversations(m: Any, fs: Any, conn: Any, uid: str, n: int) -> dict[str, Any]:
    first_reads, later_reads, first_rt, later_rt, read_rt, recalled = [], [], [], [], [], []
    times: list[float] = []
    later_times: list[float] = []
    for c in range(n):
        sid = m.create_session({}, user_id=uid).session_id
        r0, c0, t0 = fs.reads, conn.sends, time.perf_counter()
        m.add_message(sid, "user", f"my kettle number {c} leaks, can I return it?", user_id=uid)
        times.append(time.perf_counter() - t0)
        first_reads.append(fs.reads - r0)
        first_rt.append(conn.sends - c0)
        for k in range(LATER_MESSAGES):
            r0, c0, t0 = fs.reads, conn.sends, time.perf_counter()
            m.add_message(sid, "user", f"and the parcel to Lisbon {k}?", user_id=uid)
            later_times.append(time.perf_counter() - t0)
            later_reads.append(fs.reads - r0)
            later_rt.append(conn.sends - c0)
        c0 = conn.sends
        ctx = m.get_context_for_llm(sid, user_id=uid)
        read_rt.append(conn.sends - c0)
        recalled.append(len(ctx.memories))
    return {
        "first_message_firestore_reads": statistics.median(first_reads),
        "later_message_firestore_reads_max": max(later_reads),
        "first_message_redis_round_trips": statistics.median(first_rt),
        "later_message_redis_round_trips": statistics.median(later_rt),
        "context_read_redis_round_trips_max": max(read_rt),
        "memories_in_context_min": min(recalled),
        "first_message_ms_median": round(statistics.median(times) * 1000, 2),
        "later_message_ms_median": round(statistics.median(later_times) * 1000, 2),
    }


def section_memory_cost(redis_url: str, *, past_sessions: int = 200) -> dict[str, Any]:
    import redis

    with firestore_on_emulator() as client:
        if isinstance(client, str):
            return {"skipped": client}
        from shared.core.manager import SessionManager
        from shared.features.memories import wire_memories
        from shared.features.triggers import handle_session_written
        from shared.settings import Settings
        from shared.store.firestore.layer import FirestoreLayer
        from shared.store.firestore.memories import MemoryStore
        from shared.store.redis.layer import RedisLayer
        from tests.store.test_memories import FsCounter

        fs = FsCounter(client)
        conn, pool = counting_pool(redis_url)

        def manager(memory: bool, embeddings: str = "none") -> tuple[SessionManager, Any]:
            s = Settings(
                redis_url=redis_url,
                firestore_enabled=True,
                gcp_project=PROJECT,
                max_active_sessions_per_user=0,
                memory_max_sessions=max(200, past_sessions),
                embeddings=embeddings,
            )
            r = RedisLayer(s, client=redis.Redis(connection_pool=pool))
            m = SessionManager(s, redis=r, firestore=FirestoreLayer(s, client=client))
            return m, (wire_memories(m) if memory else None)

        out: dict[str, Any] = {"past_sessions": past_sessions, "conversations": CONVERSATIONS}
        for embeddings in ("none", "local"):
            m, memories = manager(True, embeddings)
            uid = f"bench-memcost-{embeddings}-{uuid.uuid4().hex[:8]}"
            store: MemoryStore = memories.store
            for i in range(past_sessions):
                record, entries = _digest(i)
                sid = f"past{i:04d}{uuid.uuid4().hex[:8]}"
                store.write(uid, memories.digest(sid, record | {"owner": uid}, entries))
            _conversations(m, fs, conn, uid, 1)  # warm-up: scripts loaded, the emulator's first queries paid
            out[f"embeddings_{embeddings}"] = _conversations(m, fs, conn, uid, CONVERSATIONS)
        # the recall's server time: the first user message with memory against the same without
        plain, _ = manager(False)
        uid = f"bench-memcost-plain-{uuid.uuid4().hex[:8]}"
        _conversations(plain, fs, conn, uid, 1)
        base = _conversations(plain, fs, conn, uid, CONVERSATIONS)
        out["no_memory"] = base
        for which in ("first", "later"):
            with_memory = out["embeddings_none"][f"{which}_message_ms_median"]
            out[f"{which}_message_ms_ratio_to_no_memory"] = round(with_memory / base[f"{which}_message_ms_median"], 1)

        # the extra Firestore writes of an ended session: the trigger with and without memory
        def trigger_writes(memory: bool) -> int:
            m, _ = manager(memory)
            user = f"bench-memcost-end-{memory}-{uuid.uuid4().hex[:8]}"  # each a first-time user
            sid = m.create_session({}, user_id=user).session_id
            m.add_message(sid, "user", "How do I return a kettle?", user_id=user)
            m.add_message(sid, "assistant", "Use the portal.", {"sources": ["faq_1"], "confidence": 0.9}, user_id=user)
            m.end_session_with_analytics(sid, user_id=user)
            doc = m.firestore.get_session(sid)
            w0 = fs.writes
            handle_session_written(sid, {"status": "active"}, doc, f"evt-{sid}", stats=m.stats)
            return fs.writes - w0

        plain_w, memory_w = trigger_writes(False), trigger_writes(True)
        out["end_trigger_writes"] = {"without_memory": plain_w, "with_memory": memory_w, "extra": memory_w - plain_w}
        return out
