"""Per-user rate limit: at most N requests in any 60 s, one round trip per request.

Exact, not estimated: each allowed request is one entry (its time) in a per-user sorted
set; entries older than the window are dropped first, and a request is let through only
while fewer than N remain. (A weighted two-window counter, which this replaced, let a
burst straddling a minute boundary through at up to about 1.05 N.) The set holds at most
N small entries per user and expires with the window. Instances use their own clock
(Cloud Run clocks are NTP-synced; a skew of a few ms shifts a boundary by that much).

Fail-open: when Redis is not configured, its circuit is open or it errors, the request
is allowed. A rate limiter must never be the reason the chat stops working.
"""

from __future__ import annotations

import ipaddress
import os
import threading
import time
from dataclasses import dataclass

from shared.errors import RateLimited, StoreError
from shared.settings import get_settings
from shared.store.redis.keys import Keys
from shared.store.redis.protocol import RedisClientProtocol, ScriptProtocol

WINDOW_S = 60

# KEYS[1] the user's log; ARGV[1] limit, ARGV[2] window (ms), ARGV[3] now (ms), ARGV[4] a
# member unique to this request. Returns {allowed (0/1), requests in the window after this
# one, retry_after_s}. A refused request is not logged, so a client that backs off
# recovers on time: retry when the entry that makes room leaves the window.
_SCRIPT = """
local limit = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local now = tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local n = redis.call('ZCARD', KEYS[1])
if n >= limit then
  local freeing = redis.call('ZRANGE', KEYS[1], n - limit, n - limit, 'WITHSCORES')
  local wait_ms = tonumber(freeing[2]) + window - now
  return {0, n, math.max(1, math.ceil(wait_ms / 1000))}
end
redis.call('ZADD', KEYS[1], now, ARGV[4])
redis.call('PEXPIRE', KEYS[1], window)
return {1, n + 1, 0}
"""

_script_lock = threading.Lock()
_scripts: dict[int, ScriptProtocol] = {}


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    limit: int
    count: int
    retry_after_s: int = 0
    enforced: bool = True  # False: Redis unavailable, allowed without counting


def check(uid: str, *, limit: int | None = None) -> Decision:
    """Count one request for ``uid``; never raises (fail-open)."""
    from shared.instance import get_instance
    from shared.store.redis import client as redis_client

    settings = get_settings()
    limit = settings.rate_limit_per_minute if limit is None else limit
    if limit <= 0:
        return Decision(True, 0, 0, enforced=False)
    instance = get_instance()
    now_ms = round(time.time() * 1000, 3)
    member = f"{now_ms}:{os.urandom(4).hex()}"
    try:
        # Idempotent enough to repeat: a refused first attempt never reached the server.
        allowed, count, retry = redis_client.call(
            instance.redis_client(),
            instance.redis_breaker,
            "rate limit",
            lambda c: _script(c)(keys=[key_of(uid)], args=[limit, WINDOW_S * 1000, now_ms, member]),
        )
    except StoreError:
        # Not configured, circuit open, down, or the script failed (the guard logged it):
        # allow without counting, and say so.
        return Decision(True, limit, 0, enforced=False)
    return Decision(bool(allowed), limit, int(count), int(retry))


def enforce(uid: str) -> Decision:
    decision = check(uid)
    if not decision.allowed:
        raise RateLimited(f"more than {decision.limit} requests per minute", retry_after_s=decision.retry_after_s)
    return decision


def enforce_session_creation(client_ip: str | None) -> Decision:
    """Anonymous sign-in makes uids free, so session creation is also counted per client
    network: the IP for IPv4, its /64 for IPv6 (one host usually holds a whole /64)."""
    limit = get_settings().session_create_per_ip_per_minute
    if client_ip is None or limit <= 0:
        return Decision(True, limit, 0, enforced=False)
    addr = ipaddress.ip_address(client_ip)
    if isinstance(addr, ipaddress.IPv6Address):
        addr = ipaddress.ip_network(f"{addr}/64", strict=False).network_address
    net = str(addr)
    decision = check("create-ip:" + net, limit=limit)
    if not decision.allowed:
        raise RateLimited(
            f"more than {limit} sessions created per minute from this network", retry_after_s=decision.retry_after_s
        )
    return decision


def key_of(uid: str) -> str:
    return Keys(get_settings().redis_key_prefix).rate_limit(uid)


def _script(client: RedisClientProtocol) -> ScriptProtocol:
    # One registered script per client object (a reset client gets its own).
    key = id(client)
    script = _scripts.get(key)
    if script is None:
        with _script_lock:
            script = _scripts.get(key)
            if script is None:
                script = _scripts[key] = client.register_script(_SCRIPT)
    return script


def reset_limiter() -> None:
    """For tests: forget registered scripts (a new Redis client registers anew)."""
    with _script_lock:
        _scripts.clear()
