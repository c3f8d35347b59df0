"""Section 9: erasing a user with 1,000 sessions. Each session has a document and a Redis
state with a user and an assistant message (buffered analytics); `Erasure.erase_user` then
erases them all, against the bench's redis-server and the Firestore emulator. Reported: the
wall time against the function's time limit (`delete_my_data`: 540 s), per session, and that
a second call erases nothing new.
"""

from __future__ import annotations

import time
from typing import Any

from bench.common import PROJECT, firestore_on_emulator

FUNCTION_LIMIT_S = 540


def section_erase(redis_url: str, *, sessions: int) -> dict[str, Any]:
    with firestore_on_emulator() as client:
        if isinstance(client, str):
            return {"skipped": client}
        from shared.core.manager import SessionManager
        from shared.features.erasure import Erasure
        from shared.settings import Settings
        from shared.store.firestore.client import Firestore
        from shared.store.firestore.erasure import ErasureStore
        from shared.store.firestore.layer import FirestoreLayer
        from shared.store.firestore.reports import ReportStore
        from shared.store.redis.layer import RedisLayer

        s = Settings(
            redis_url=redis_url,
            gcp_project=PROJECT,
            max_active_sessions_per_user=sessions + 10,
            redis_restart_horizon_s=0,
        )
        fs = Firestore(s, client=client)
        m = SessionManager(s, redis=RedisLayer(s), firestore=FirestoreLayer(fs))
        erasure = Erasure(m, ErasureStore(fs), ReportStore(fs))
        uid = f"erase-bench-{int(time.time())}"
        t0 = time.perf_counter()
        for i in range(sessions):
            sid = m.create_session({}, user_id=uid).session_id
            m.add_message(sid, "user", f"question {i}", user_id=uid)
            m.add_message(sid, "assistant", f"answer {i}", {"sources": ["faq_x"], "confidence": 0.8}, user_id=uid)
        setup_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        receipt = erasure.erase_user(uid, requested_by="bench")
        erase_s = time.perf_counter() - t0
        again = erasure.erase_user(uid, requested_by="bench")
        return {
            "sessions": sessions,
            "erased_sessions": receipt["erased"]["sessions"],
            "erase_s": round(erase_s, 1),
            "ms_per_session": round(erase_s * 1000 / sessions, 1),
            "function_limit_s": FUNCTION_LIMIT_S,
            "share_of_limit": round(erase_s / FUNCTION_LIMIT_S, 3),
            "second_call_same_receipt": again == receipt,
            "setup_s": round(setup_s, 1),
            "how": "Erasure.erase_user in-process against the bench's redis-server and the Firestore emulator; "
            "each session: a document, two messages and one buffered answer",
        }
