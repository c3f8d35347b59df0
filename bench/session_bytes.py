"""Worst-case Redis bytes of one session and of one user, measured with MEMORY USAGE on a
real redis-server at every limit (docs/security.md, "Bounded per user").

Run: .venv/bin/python -m bench.session_bytes

The worst session: user_info at MAX_USER_INFO_BYTES; every message at MAX_CONTENT_BYTES of
control characters (JSON escapes each to six bytes) and MAX_METADATA_BYTES of metadata,
with a 128-character client message id; a summarizer that always fails; question/answer
pairs until the session refuses, then one-character messages until those are refused too.
"""

from __future__ import annotations

import json
import logging
import sys
import uuid

import redis

from shared.core.manager import SessionManager
from shared.errors import FailedPrecondition
from shared.settings import Settings
from shared.store.firestore.layer import FirestoreLayer
from shared.store.redis.layer import RedisLayer
from tests.harness import RedisServer


class _Down:
    name = "down"

    def summarize(self, previous: object, messages: object) -> str:
        raise RuntimeError("summarizer down")


def _metadata(limit: int) -> dict[str, str]:
    pad = limit - len(json.dumps({"note": ""}, separators=(",", ":")))
    return {"note": "n" * pad}


def measure() -> dict[str, int]:
    srv = RedisServer().start()
    try:
        s = Settings(redis_url=srv.url, firestore_enabled=False)
        m = SessionManager(s, redis=RedisLayer(s), firestore=FirestoreLayer(s), summarizer=_Down())
        info = {"profile": "p" * (s.max_user_info_bytes - 20)}
        uid = "u" * 128
        sid = m.create_session(info, user_id=uid).session_id
        content = "\x01" * (s.max_content_bytes - 1) + "x"
        meta = _metadata(s.max_metadata_bytes)

        def add(role: str) -> None:
            m.add_message(sid, role, content, meta, client_message_id=uuid.uuid4().hex * 4, user_id=uid)

        pairs = 0
        try:
            while True:
                add("user")
                add("assistant")
                pairs += 1
        except FailedPrecondition:
            pass
        # then the shortest messages until those are refused too (ids and list entries)
        for _ in range(100000):
            try:
                m.add_message(sid, "user", "x", client_message_id=uuid.uuid4().hex * 4, user_id=uid)
            except FailedPrecondition:
                break
        r = redis.Redis.from_url(srv.url)
        out = {k.split(":")[-1]: int(r.memory_usage(k, samples=0) or 0) for k in m.redis.keys(sid)}
        out["session"] = sum(out.values())
        out["user_set"] = int(r.memory_usage(m.redis.user_sessions_key(uid), samples=0) or 0)
        out["answers_buffered"] = pairs
        out["per_user"] = out["session"] * s.max_active_sessions_per_user + out["user_set"]
        return out
    finally:
        srv.cleanup()


if __name__ == "__main__":
    logging.getLogger("chat_memory").setLevel(logging.ERROR)  # one failed summary per 5 messages
    json.dump(measure(), sys.stdout, indent=1)
    print()
