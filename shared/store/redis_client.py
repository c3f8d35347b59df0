"""The instance's one Redis client (and connection pool), created on first use.

Timeouts and retries are set explicitly: redis-py's defaults changed in 8.x and a
serverless request must never hang on a dead Memorystore. ``BREAKER`` is shared by
everything on this instance that talks to Redis.
"""

from __future__ import annotations

import threading
from typing import Any

from shared.settings import get_settings
from shared.store.breaker import CircuitBreaker

_lock = threading.Lock()
_client: Any = None
BREAKER = CircuitBreaker(cooldown_s=get_settings().redis_breaker_cooldown_s)


def _tracking_connection_class() -> Any:
    """A redis-py Connection that tells the breaker when a pooled connection had to be
    re-established. That happens when Redis restarted or failed over: an instance that
    had no traffic during the outage (so its breaker never opened) still learns that
    messages may have been accepted elsewhere meanwhile (see SessionManager._check_recovery).
    """
    import redis

    class TrackingConnection(redis.Connection):
        breaker: CircuitBreaker = BREAKER

        def on_connect_check_health(self, check_health: bool = True) -> None:
            super().on_connect_check_health(check_health=check_health)
            if getattr(self, "_cm_connected_before", False):
                self.breaker.note_reconnect()
            self._cm_connected_before = True

    return TrackingConnection


def get_client() -> Any:
    """The Redis (or RedisCluster) client, or None when no Redis is configured.

    Creating the client does no I/O; the first command connects.
    """
    global _client
    if _client is not None:
        return _client
    settings = get_settings()
    if not settings.redis_url:
        return None
    with _lock:
        if _client is None:
            _client = build(settings)
    return _client


def build(settings: Any, breaker: CircuitBreaker | None = None) -> Any:
    """A new client for these settings (the singleton above is the normal path)."""
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    common: dict[str, Any] = {
        "socket_timeout": settings.redis_socket_timeout_s,
        "socket_connect_timeout": settings.redis_connect_timeout_s,
        # One quick retry on a broken pooled connection (e.g. after a Redis restart),
        # no backoff: the breaker, not sleeping, is what protects latency.
        "retry": Retry(NoBackoff(), 1),
        "health_check_interval": 30,
        "decode_responses": True,
    }
    if settings.redis_cluster:
        from redis.cluster import RedisCluster

        return RedisCluster.from_url(settings.redis_url, **common)
    import redis

    conn_cls = _tracking_connection_class()
    conn_cls.breaker = breaker or BREAKER
    return redis.Redis.from_url(
        settings.redis_url, max_connections=settings.redis_max_connections, connection_class=conn_cls, **common
    )


def reset_client() -> None:
    """For tests: forget the client and the breaker state (next call builds anew)."""
    global _client
    with _lock:
        if _client is not None:
            try:
                _client.close()
            except Exception:  # noqa: BLE001 - closing a dead client may fail; nothing to do
                pass
        _client = None
    BREAKER.cooldown_s = get_settings().redis_breaker_cooldown_s
    BREAKER.record_success()
    BREAKER.opened_count = 0
