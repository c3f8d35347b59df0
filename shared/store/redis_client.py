"""The instance's one Redis client (and connection pool), created on first use.

Timeouts and retries are set explicitly: redis-py's defaults changed in 8.x and a
serverless request must never hang on a dead Memorystore. ``BREAKER`` is shared by
everything on this instance that talks to Redis.
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from shared.settings import get_settings
from shared.store.breaker import CircuitBreaker

T = TypeVar("T")
_lock = threading.Lock()
_client: Any = None
BREAKER = CircuitBreaker(cooldown_s=get_settings().redis_breaker_cooldown_s)


def _connection_class(restart_horizon_s: float) -> Any:
    """A redis-py Connection that refuses, once, to serve a command when Redis may have
    been away, so the layer merges what other layers accepted meanwhile, then retries (see
    RedisLayer._run). Two signs, one signal each:

    - a connection it had to re-establish: the pool re-connects a socket the server
      closed silently (in get_connection), so a Redis restart would otherwise go unnoticed
      by an instance that had no traffic during the outage;
    - a Redis run (INFO ``run_id``) this client has not met before that is younger than
      ``restart_horizon_s``, or that replaced one it had met: an instance started after
      the restart has nothing to re-establish, yet the sessions it serves may hold outage
      messages in Firestore. Asked once per connect (connects are rare: the pool reuses).
    """
    import redis

    reconnected = reconnected_error()
    lock = threading.Lock()
    last = [0.0]  # per client (one class per client): one signal per restart, not per socket
    runs: set[str] = set()  # Redis runs this client has met

    def first_signal() -> bool:
        with lock:
            now = time.monotonic()
            if now - last[0] < _SIGNAL_QUIET_S:
                return False
            last[0] = now
            return True

    def new_young_run(info: str) -> float | None:
        """Seconds since this Redis run started, if it is one to signal; else None."""
        fields = dict(line.split(":", 1) for line in info.splitlines() if ":" in line)
        run_id = fields.get("run_id", "").strip()
        try:
            uptime = float(fields.get("uptime_in_seconds", "inf"))
        except ValueError:
            uptime = float("inf")
        with lock:
            if not run_id or run_id in runs:
                return None
            replaced = bool(runs)
            runs.add(run_id)
            if replaced or uptime < restart_horizon_s:
                last[0] = time.monotonic()  # the re-connects of this same restart stay quiet
                return uptime if uptime < restart_horizon_s else 0.0
            return None

    class ReconnectAwareConnection(redis.Connection):
        def on_connect_check_health(self, check_health: bool = True) -> None:
            super().on_connect_check_health(check_health=check_health)
            again = getattr(self, "_cm_connected_before", False)
            self._cm_connected_before = True
            self.send_command("INFO", "server", check_health=False)
            info = self.read_response()
            if isinstance(info, bytes):
                info = info.decode("utf-8", "replace")
            age = new_young_run(info if isinstance(info, str) else "")
            if age is not None or (again and first_signal()):
                self._cm_connected_before = False  # this object: once per re-connect
                err = reconnected("re-connected to Redis" if again else "met a Redis run that just started")
                err.up_for_s = age or 0.0  # type: ignore[attr-defined]
                raise err

    return ReconnectAwareConnection


# After a restart every pooled connection re-connects; one signal per restart is enough.
_SIGNAL_QUIET_S = 2.0


def drop_pooled_connections(client: Any) -> None:
    """Close every pooled socket: after a restart the others are dead too, and each would
    otherwise fail one request in turn (and the second failure opens the breaker)."""
    pool = getattr(client, "connection_pool", None)
    if pool is not None:
        pool.disconnect()


def record_outage(breaker: CircuitBreaker, client: Any, exc: BaseException) -> None:
    """Redis failed for real: open the breaker and drop every pooled socket, so that after
    recovery each request (the breaker's probe first of all) gets a fresh connection rather
    than the next dead one, each of which would re-open the breaker for another cool-down."""
    breaker.record_failure(exc)
    drop_pooled_connections(client)


def once_more_if_reconnected(fn: Callable[[], T], breaker: CircuitBreaker | None = None, client: Any = None) -> T:
    """Run an idempotent Redis call. If it only met a re-established connection, or the
    first connection error after a healthy period (a pooled socket that died with a Redis
    restart), note that on the breaker (the session manager merges before serving: Redis
    may have been away), drop the other pooled sockets, and run it again at once."""
    from redis import exceptions as rexc

    br = breaker or BREAKER
    try:
        return fn()
    except (rexc.ConnectionError, rexc.TimeoutError) as exc:
        if not isinstance(exc, reconnected_error()) and (br.state() != "closed" or br.suspect):
            raise
        br.note_reconnect(getattr(exc, "up_for_s", 0.0))
        drop_pooled_connections(client if client is not None else _client)
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
        connection_class=_connection_class(settings.redis_restart_horizon_s),
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
