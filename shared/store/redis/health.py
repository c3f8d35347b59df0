"""Whether Redis is there and safe to hold sessions: the health check's PING, the first
contact of a client, whether it is full (at ``maxmemory`` it refuses every write), and the
eviction policy (a policy that can evict single keys can break a live session)."""

from __future__ import annotations

import logging
import time
from typing import Any

from shared.errors import StoreError
from shared.store.redis import client as redis_client
from shared.store.redis.connection import RedisConnection
from shared.store.redis.protocol import RedisClientProtocol

log = logging.getLogger("chat_memory.redis")

# maxmemory-policy is re-read this often (seconds): it changes only by reconfiguration.
_POLICY_TTL_S = 300.0


class Health:
    def __init__(self, conn: RedisConnection) -> None:
        self.conn = conn
        self._policy: str | None = None
        self._policy_read_at = -_POLICY_TTL_S

    def ensure_met(self) -> None:
        """Make sure this client has reached Redis once (one PING, on its first use), so
        that a Redis that may have been away is known before anything is served."""
        watch = redis_client.watch_of(self.conn.client())
        if watch is not None and not watch.met:
            self.ping()

    def eviction_policy(self) -> str | None:
        """Redis's maxmemory-policy (None: unknown). Any policy but ``noeviction`` can evict
        single keys of live sessions under memory pressure: Memorystore's default,
        volatile-lru, evicts keys with a TTL, and every session key has one. CONFIG GET
        first; INFO where CONFIG is refused (managed Redis may rename or block it)."""
        from redis.exceptions import ResponseError

        now = time.monotonic()
        if now - self._policy_read_at < _POLICY_TTL_S:
            return self._policy

        def read(client: RedisClientProtocol) -> str | None:
            try:
                policy = _find_policy(client.config_get("maxmemory-policy"), "maxmemory-policy")
            except ResponseError:  # CONFIG refused; a lost connection is the guard's
                policy = None
            if policy is None:
                policy = _find_policy(client.info("memory"), "maxmemory_policy")
            return policy

        try:
            policy = self.conn.call("eviction policy", read)
        except StoreError:
            return self._policy  # unknown for now: asked again on the next health check
        self._policy_read_at = now
        if policy != self._policy and policy not in (None, "noeviction"):
            log.warning(
                "redis can evict single session keys: configure maxmemory-policy noeviction",
                extra={"policy": policy},
            )
        self._policy = policy
        return policy

    def ping(self) -> dict[str, Any]:
        breaker = self.conn.breaker
        if self.conn.client() is None:
            return {"status": "disabled"}
        t0 = time.perf_counter()
        try:
            self.conn.call("ping", lambda c: c.ping())
        except redis_client.Unavailable:
            return {"status": "down", "breaker": "open", "last_error": breaker.last_error}
        except StoreError as exc:
            return {"status": "down", "breaker": breaker.state(), "last_error": type(exc.__cause__ or exc).__name__}
        latency_ms = round((time.perf_counter() - t0) * 1000, 2)
        used_pct, full = self.memory_use()
        out: dict[str, Any] = {"status": "full" if full else "up", "latency_ms": latency_ms, "breaker": "closed"}
        if used_pct is not None:
            out["memory_used_pct"] = used_pct
        if full:
            log.error("health: redis is full (maxmemory reached); it refuses writes")
        policy = self.eviction_policy()
        if policy is not None:
            out["eviction_policy"] = policy
            out["evicts_session_keys"] = policy != "noeviction"
        return out

    def memory_use(self) -> tuple[float | None, bool]:
        """How much of ``maxmemory`` Redis uses, in percent (the fullest node of a cluster;
        None if no maxmemory is set or INFO cannot be read), and whether it is full: at
        ``maxmemory`` it refuses writes."""
        try:
            reply = self.conn.call("memory", lambda c: c.info("memory"))
        except StoreError:
            return None, False
        nodes = [reply] if isinstance(reply, dict) and "used_memory" in reply else []
        if not nodes and isinstance(reply, dict):
            nodes = [v for v in reply.values() if isinstance(v, dict)]
        pct, full = None, False
        for node in nodes:
            try:
                used, limit = int(node.get("used_memory", 0)), int(node.get("maxmemory", 0))
            except (TypeError, ValueError):
                continue
            if limit > 0:
                pct = max(pct or 0.0, round(100.0 * used / limit, 1))
                full = full or used >= limit
        return pct, full


def _find_policy(reply: object, field: str) -> str | None:
    """The policy in a CONFIG GET or INFO reply; a cluster client answers per node."""
    if not isinstance(reply, dict):
        return None
    value = reply.get(field)
    if isinstance(value, str):
        return value
    for sub in reply.values():
        if isinstance(sub, dict) and isinstance(sub.get(field), str):
            return str(sub[field])
    return None
