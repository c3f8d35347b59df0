"""The recall's Redis keys: a session's recalled memories (read by read.lua with the context),
the user's memories cached for the conversation (the corpus), and the user's memory
generation, raised by every deletion so that nothing cached before it is used after it."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from shared.store.redis.connection import RedisConnection


@dataclass(slots=True)
class RecallInputs:
    status: str  # ok | missing | ended | forbidden | off
    recent: list[dict[str, Any]]
    corpus: dict[str, Any] | None  # {"generation", "items"} as cached, None when not cached


class RecallCache:
    def __init__(self, conn: RedisConnection) -> None:
        self.conn = conn

    def inputs(self, sid: str, owner: str | None, n: int) -> RecallInputs:
        k = self.conn.key_names
        out = self.conn.run("recall_inputs", [k.meta(sid), k.log(sid), k.corpus(sid)], [owner or "", n])
        if out[0] != "ok":
            return RecallInputs(str(out[0]), [], None)
        recent = [json.loads(r) for r in out[1]]
        try:
            corpus = json.loads(out[2]) if out[2] else None
        except ValueError:
            corpus = None
        return RecallInputs("ok", recent, corpus if isinstance(corpus, dict) else None)

    def put(self, sid: str, memories: list[dict[str, Any]], corpus: dict[str, Any] | None) -> bool:
        k = self.conn.key_names
        args = [_dumps(memories), "" if corpus is None else _dumps(corpus), self.conn.settings.session_ttl_s]
        return bool(self.conn.run("recall_put", [k.meta(sid), k.recall(sid), k.corpus(sid)], args))

    def generation(self, uid: str) -> int:
        key = self.conn.key_names.memory_generation(uid)
        return int(self.conn.call("memory generation", lambda c: c.get(key)) or 0)

    def bump(self, uid: str) -> None:
        """A memory of the user was deleted: caches made before now are stale. Kept a day
        past any session's life (a cache lives at most a session's TTL)."""
        key = self.conn.key_names.memory_generation(uid)
        ttl = self.conn.settings.session_ttl_s + 86400
        self.conn.call("memory generation", lambda c: (c.incr(key), c.expire(key, ttl)))

    def clear(self, sid: str) -> None:
        """Drop a session's recall and corpus (they are rebuilt at its next user message)."""
        k = self.conn.key_names
        self.conn.call("clear recall", lambda c: c.delete(k.recall(sid), k.corpus(sid)))


def _dumps(v: Any) -> str:
    # ASCII: a lone surrogate in a stored message stays an escape, never an unencodable string
    return json.dumps(v, separators=(",", ":"))
