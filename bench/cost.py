"""Section 5: what one conversation costs. Firestore document reads and writes of a
20-message session (created, conversed, ended, then the trigger's user stats), counted at
the client against the Firestore emulator; Redis round trips alongside; Redis memory
per active session.
"""

from __future__ import annotations

import os
import time
from typing import Any

from bench.common import PROJECT, counting_pool, firestore_on_emulator
from bench.store_ops import MESSAGES_PER_SESSION, UID, conversation, manager_for, settings_for, turn


def firestore_cost(redis_url: str) -> dict[str, Any]:
    import redis

    with firestore_on_emulator() as client:
        if isinstance(client, str):
            return {"skipped": client}
        from google.auth.credentials import AnonymousCredentials
        from google.cloud import firestore

        from shared.features.triggers import handle_session_written
        from tests.store.test_end_trigger_sweep import WriteCounter

        fs = WriteCounter(client)
        conn_cls, pool = counting_pool(redis_url)
        s = settings_for(redis_url, firestore=True)
        m = manager_for(s, client=redis.Redis(connection_pool=pool), fs_client=client)
        # warm-up on another session: every script loaded (a first EVALSHA costs two more
        # round trips: NOSCRIPT, SCRIPT LOAD), the emulator's first requests paid
        warm = conversation(m, 6)
        m.get_context_for_llm(warm, user_id=UID)
        m.end_session_with_analytics(warm, user_id=UID)
        phases: dict[str, dict[str, Any]] = {}
        kb: set[str] = set()

        def phase(name: str, fn: Any) -> Any:
            r0, w0, c0 = fs.reads, fs.writes, conn_cls.sends
            t0 = time.perf_counter()
            out = fn()
            phases[name] = {
                "reads": fs.reads - r0,
                "writes": fs.writes - w0,
                "redis_round_trips": conn_cls.sends - c0,
                "ms_on_emulator": round((time.perf_counter() - t0) * 1000, 1),
            }
            return out

        sid = phase("create_session", lambda: m.create_session({"platform": "web"}, user_id=UID).session_id)

        def converse() -> None:
            for k in range(MESSAGES_PER_SESSION):
                role, content, md, cmid = turn(k)
                if role == "assistant":
                    m.get_context_for_llm(sid, user_id=UID)  # the assistant reads before it answers
                    kb.update(md["sources"] if md else [])
                m.add_message(sid, role, content, md, client_message_id=cmid, user_id=UID)

        phase(f"{MESSAGES_PER_SESSION} messages + {MESSAGES_PER_SESSION // 2} context reads", converse)
        phase("end_session_with_analytics", lambda: m.end_session_with_analytics(sid, "agent-1", user_id=UID))
        # The trigger receives the ended document in its event: not a read in production.
        uncounted = firestore.Client(project=PROJECT, credentials=AnonymousCredentials())
        after = uncounted.collection("sessions").document(sid).get().to_dict()
        phase(
            "trigger: user stats + KB usage",
            lambda: handle_session_written(sid, {"status": "active"}, after, f"evt-{sid}", stats=m.stats),
        )
        return {
            "phases": phases,
            "messages": MESSAGES_PER_SESSION,
            "kb_entries": len(kb),
            "total_reads": sum(p["reads"] for p in phases.values()),
            "total_writes": sum(p["writes"] for p in phases.values()),
            "total_redis_round_trips": sum(p["redis_round_trips"] for p in phases.values()),
            "emulator": os.environ["FIRESTORE_EMULATOR_HOST"],
        }


def content_bytes(m: Any, sid: str) -> tuple[int, int]:
    """What Redis must hold of one active session, as JSON records (the window's messages,
    the messages no summary covers yet, one question/answer pair per answer, the summary),
    and as text only (each distinct message's content once, and the summary's text)."""
    import json

    read = m.redis.read(sid, UID, m.settings.message_window)
    held, pairs = m.redis.held_for_export(sid)
    covered = int((read.summary or {}).get("message_count", 0))
    window = read.messages or []
    seen = {x.seq for x in window}
    records = [x.to_dict() for x in window] + [x.to_dict() for x in held if x.seq > covered and x.seq not in seen]
    records += [
        {"query": q.query, "response": q.response, "confidence": q.confidence, "sources": q.sources,
         "collection": q.collection, "timestamp": q.timestamp} for q in pairs
    ]  # fmt: skip
    dumps = json.dumps
    content = sum(len(dumps(r, ensure_ascii=False).encode()) for r in records)
    content += len(dumps(read.summary, ensure_ascii=False).encode()) if read.summary else 0
    distinct = {x.seq: x.content for x in [*window, *held]}
    text = sum(len(c.encode()) for c in distinct.values())
    text += sum(len((q.query or "").encode()) + len(q.response.encode()) for q in pairs if q.seq not in distinct)
    text += len(str((read.summary or {}).get("text", "")).encode())
    return content, text


def redis_memory(sessions: int) -> dict[str, Any]:
    from tests.harness import RedisServer

    srv = RedisServer()
    srv.start()
    try:
        m = manager_for(settings_for(srv.url))
        admin = m.redis.client()
        conversation(m, 2)  # scripts loaded before the baseline
        base = int(admin.info("memory")["used_memory"])
        sids = [conversation(m) for _ in range(sessions)]
        used = int(admin.info("memory")["used_memory"]) - base
        usage = {k.rsplit(":", 1)[1]: int(admin.memory_usage(k, samples=0) or 0) for k in m.redis.keys(sids[0])}
        total = sum(usage.values())
        per = used / sessions
        content, text = content_bytes(m, sids[0])
        return {
            "content_bytes": content,
            "text_bytes": text,
            "used_memory_vs_content": per / content,
            "used_memory_vs_text": per / text,
            "sessions": sessions,
            "messages": MESSAGES_PER_SESSION,
            "memory_usage_by_key": usage,
            "memory_usage_total": total,
            "used_memory_per_session": per,
            "sessions_per_gb": (1 << 30) / per,
        }
    finally:
        srv.stop()


def section_cost(redis_url: str, *, memory_sessions: int) -> dict[str, Any]:
    return {"firestore": firestore_cost(redis_url), "redis_memory": redis_memory(memory_sessions)}
