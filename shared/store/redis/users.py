"""A user's own Redis keys: the set of their active sessions (the per-user session cap)
and, for an erasure, the rate-limit log. Keys named by the user id, in its hash slot."""

from __future__ import annotations

from typing import Any

from shared.store.base import ERASED
from shared.store.redis import client as redis_client
from shared.store.redis.connection import RedisConnection
from shared.store.redis.keys import Meta
from shared.store.redis.protocol import RedisClientProtocol


class UserSets:
    def __init__(self, conn: RedisConnection) -> None:
        self.conn = conn

    def claim_session_slot(self, uid: str, sid: str, now: float) -> bool:
        """Count a new session against its user's cap of active sessions. A full set is
        checked once against the sessions' own keys: ended or expired ones free their slot
        (the end path need not know about the set), live ones keep theirs until their keys
        would expire."""
        conn = self.conn
        s = conn.settings
        key = conn.key_names.user_sessions(uid)
        ttl = s.session_ttl_s

        def claim() -> list[Any]:
            args = [sid, repr(now), repr(now + ttl), s.max_active_sessions_per_user, ttl]
            return list(conn.run("claim", [key], args))

        out = claim()
        if int(out[0]):
            return True

        def prune(client: RedisClientProtocol) -> bool:
            """Free the slots of ended or expired sessions; False if none was freed."""
            stale, live = [], {}
            for other in out[1]:
                meta = conn.key_names.meta(other)
                status, left = client.hget(meta, Meta.STATUS), client.ttl(meta)
                if status in (None, "ended", ERASED) or left < 0:  # an erased one frees its slot too
                    stale.append(other)
                else:
                    live[other] = now + left
            if not stale:
                if live:
                    client.zadd(key, live, xx=True)
                return False
            client.zrem(key, *stale)
            return True

        return conn.call("prune session slots", prune) and bool(int(claim()[0]))

    def user_session_ids(self, uid: str) -> list[str]:
        """The user's sessions Redis counts against the cap (active ones, some maybe ended);
        none while Redis is not configured or its circuit is open."""
        key = self.conn.key_names.user_sessions(uid)
        try:
            return list(self.conn.call("user sessions", lambda c: c.zrange(key, 0, -1)))
        except redis_client.Unavailable:
            return []

    def forget_user(self, uid: str) -> int:
        """Delete the user's own keys (the session-cap set, the rate-limit log): keys named by
        the user id. Returns how many session-cap sets existed (0 or 1)."""
        names = self.conn.key_names
        if self.conn.client() is None:
            return 0
        # The rate-limit log goes too but is not counted: the request asking for the
        # erasure has just written it, so a repeated request would count it again.
        n, _ = self.conn.call(
            "forget user",
            lambda c: (
                c.delete(names.user_sessions(uid)),
                c.delete(names.rate_limit(uid), names.memory_generation(uid)),
            ),
        )
        return int(n)
