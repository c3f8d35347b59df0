"""The instance's one Redis client (and connection pool), created on first use.

Timeouts and retries are set explicitly: redis-py's defaults changed in 8.x and a
serverless request must never hang on a dead Memorystore. ``BREAKER`` is shared by
everything on this instance that talks to Redis.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from shared.settings import get_settings
from shared.store.breaker import CircuitBreaker

T = TypeVar("T")
_lock = threading.Lock()
_client: Any = None
BREAKER = CircuitBreaker(cooldown_s=get_settings().redis_breaker_cooldown_s)


def _connection_class() -> Any:
    """A redis-py Connection that refuses, once, to serve a command over a connection it
    had to re-establish. The pool re-connects a socket the server closed silently (in
    get_connection), so a Redis restart would otherwise go unnoticed by an instance that
    had no traffic during the outage; failing once lets the layer merge what other
    layers accepted meanwhile, then retry (see RedisLayer._run).
    """
    import redis

    reconnected = reconnected_error()

    class ReconnectAwareConnection(redis.Connection):
        def on_connect_check_health(self, check_health: bool = True) -> None:
            super().on_connect_check_health(check_health=check_health)
            if getattr(self, "_cm_connected_before", False):
                self._cm_connected_before = False  # once per re-connect
                raise reconnected("re-connected to Redis")
            self._cm_connected_before = True

    return ReconnectAwareConnection


def once_more_if_reconnected(fn: Callable[[], T], breaker: CircuitBreaker | None = None) -> T:
    """Run an idempotent Redis call; if it only met a re-established connection, note that
    on the breaker (the session manager merges before serving: Redis may have restarted)
    and run it again at once. A re-established connection is not a failure."""
    try:
        return fn()
    except reconnected_error():
        (breaker or BREAKER).note_reconnect()
        return fn()


@functools.cache
def reconnected_error() -> type[Exception]:
    """The error a re-established connection raises once (a redis ConnectionError)."""
    import redis

    class Reconnected(redis.exceptions.ConnectionError):
        pass

    return Reconnected


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


def build(settings: Any) -> Any:
    """A new client for these settings (the singleton above is the normal path)."""
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    common: dict[str, Any] = {
        "socket_timeout": settings.redis_socket_timeout_s,
        "socket_connect_timeout": settings.redis_connect_timeout_s,
        # No silent reconnect-and-retry inside redis-py: a connection that died with a
        # Redis restart must surface, so the layer can merge what was accepted elsewhere
        # meanwhile before retrying (RedisLayer._run, SessionManager._redis_op). No health
        # check PING either, for the same reason (and it would be a second round trip).
        "retry": Retry(NoBackoff(), 0),
        "health_check_interval": 0,
        "decode_responses": True,
    }
    if settings.redis_cluster:
        from redis.cluster import RedisCluster

        return RedisCluster.from_url(settings.redis_url, **common)
    import redis

    return redis.Redis.from_url(
        settings.redis_url,
        max_connections=settings.redis_max_connections,
        connection_class=_connection_class(),
        **common,
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
