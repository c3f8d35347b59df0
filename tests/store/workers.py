"""Functions run in other processes (other 'instances') by the store tests."""

from __future__ import annotations

import os


def _manager(redis_url: str):
    from tests.store.conftest import make_manager

    return make_manager(redis_url, firestore=bool(os.environ.get("FIRESTORE_EMULATOR_HOST")))


def append_many(redis_url: str, sid: str, uid: str, worker: int, n: int) -> list[tuple[int, bool]]:
    m = _manager(redis_url)
    out = []
    for i in range(n):
        r = m.add_message(sid, "user", f"w{worker}-{i}", user_id=uid)
        out.append((r.seq, r.summary_updated))
    return out


def converse(redis_url: str, uid: str, turns: int) -> str:
    m = _manager(redis_url)
    sid = m.create_session({"platform": "test"}, user_id=uid).session_id
    for i in range(turns):
        m.add_message(sid, "user", f"question {i}", user_id=uid)
        m.add_message(
            sid,
            "assistant",
            f"answer {i}",
            {"confidence": 0.5, "sources": [f"kb_{i}"], "collection": "faq"},
            user_id=uid,
        )
    return sid
