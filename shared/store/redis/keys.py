"""Every Redis key name of the product, in one place: the layer, the rate limiter, the
bench and the tests all name keys through ``Keys`` (as redis/agent-memory-server's
``utils/keys.py``). Nobody types a key format by hand.

Every key carries a {hash tag}: a session's keys share its id's slot, a user's keys their
uid's, so each Lua script's keys live on one Redis Cluster node.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Keys:
    prefix: str

    def session(self, sid: str) -> list[str]:
        """A session's three keys: the state hash (``meta``), the log of every message (the
        window, the summarizer's input and the end's question/answer pairs are all read from
        it: each message is held once) and the rolling summary (``sum``)."""
        base = f"{self.prefix}:{{{sid}}}"
        return [f"{base}:meta", f"{base}:log", f"{base}:sum"]

    def meta(self, sid: str) -> str:
        return f"{self.prefix}:{{{sid}}}:meta"

    def user_sessions(self, uid: str) -> str:
        """The user's active sessions (a sorted set by creation time): the per-user cap."""
        return f"{self.prefix}:user:{{{uid}}}:sessions"

    def rate_limit(self, uid: str) -> str:
        """The user's (or client IP's) log of recent requests: the rate limiter's window."""
        return f"{self.prefix}:rl:{{{uid}}}"
