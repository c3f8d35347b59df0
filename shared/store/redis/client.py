"""How a Redis client is built, and how it tells that Redis may have been away.

Timeouts and retries are set explicitly: redis-py's defaults changed in 8.x and a
serverless request must never hang on a dead Memorystore. The instance's one client and
its breaker are built by ``shared.instance``.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypeVar, cast

from shared.errors import StoreError
from shared.settings import Settings
from shared.store.breaker import CircuitBreaker
from shared.store.redis.protocol import RedisClientProtocol

if TYPE_CHECKING:
    import redis

T = TypeVar("T")

log = logging.getLogger("chat_memory.redis")


class RunWatch:
    """What one client knows of the Redis runs (INFO ``run_id``) it has met.

    Redis may have been away, and other layers may hold messages accepted meanwhile, when
    this client meets a run that replaced one it had met (a restart, a failover), or, on
    its first connection, a run younger than ``horizon_s``: an instance started after the
    restart has no connection to re-establish, yet the sessions it serves may hold outage
    messages. Either is reported once to ``on_restart`` (with the run's age), at connect
    time, before any command runs over that connection.
    """

    def __init__(self, horizon_s: float, on_restart: Callable[[float], None] | None = None) -> None:
        self.horizon_s = horizon_s
        self.on_restart = on_restart
        self.met = False  # a connection has completed: the run is known
        self._lock = threading.Lock()
        self._runs: set[str] = set()
        self._last_signal = 0.0

    def meet(self, info: str) -> float | None:
        """Record the run this connection reached; its age if it is one to report."""
        fields = dict(line.split(":", 1) for line in info.splitlines() if ":" in line)
        run_id = fields.get("run_id", "").strip()
        try:
            uptime = float(fields.get("uptime_in_seconds", "inf"))
        except ValueError:
            uptime = float("inf")
        age = None
        with self._lock:
            if run_id and run_id not in self._runs:
                replaced = bool(self._runs)
                self._runs.add(run_id)
                if replaced or uptime < self.horizon_s:
                    age = uptime if uptime < self.horizon_s else 0.0
                    self._last_signal = time.monotonic()  # this restart's re-connects stay quiet
        if age is not None and self.on_restart is not None:
            self.on_restart(age)
        self.met = True
        return age

    def first_signal(self) -> bool:
        """After a restart every pooled connection re-connects: one signal per restart."""
        with self._lock:
            now = time.monotonic()
            if now - self._last_signal < _SIGNAL_QUIET_S:
                return False
            self._last_signal = now
            return True


class ReconnectedMark(Exception):
    """What the error a re-established connection raises carries besides being a redis
    ConnectionError (``reconnected_error``): how long the Redis it reached has been up,
    when that is news (0.0: unknown)."""

    up_for_s: float = 0.0


def _connection_class(watch: RunWatch, *, tls: bool = False) -> type[redis.Connection]:
    """A redis-py Connection that reports the run it reaches to ``watch``, and refuses once
    to serve a command over a connection it had to re-establish: the pool re-connects a
    socket the server closed silently (in get_connection), so a Redis restart would
    otherwise go unnoticed by an instance that had no traffic during the outage. The
    refusal lets the caller merge what other layers accepted meanwhile, then retry
    (``once_more_if_reconnected``). Asked once per connect (connects are rare)."""
    import redis

    reconnected = reconnected_error()

    class ReconnectAwareConnection(redis.Connection):
        # Which runs this pool's connections have met: ``watch_of`` finds it here.
        run_watch = watch
        _cm_connected_before = False

        def on_connect_check_health(self, check_health: bool = True) -> None:
            super().on_connect_check_health(check_health=check_health)
            again = self._cm_connected_before
            self._cm_connected_before = True
            self.send_command("INFO", "server", check_health=False)
            info = self.read_response()
            if isinstance(info, bytes):
                info = info.decode("utf-8", "replace")
            age = watch.meet(info if isinstance(info, str) else "")
            if again and (age is not None or watch.first_signal()):
                self._cm_connected_before = False  # this object: once per re-connect
                err = reconnected("re-connected to Redis")
                err.up_for_s = age or 0.0
                raise err

    if not tls:
        return ReconnectAwareConnection

    # rediss:// selects redis-py's SSLConnection: built on it, or TLS would be replaced by a
    # plaintext socket (the MRO puts the check above SSLConnection's TLS connect).
    class ReconnectAwareTLSConnection(ReconnectAwareConnection, redis.SSLConnection):
        pass

    return ReconnectAwareTLSConnection


# After a restart every pooled connection re-connects; one signal per restart is enough.
_SIGNAL_QUIET_S = 2.0


def drop_pooled_connections(client: RedisClientProtocol) -> None:
    """Close every pooled socket: after a restart the others are dead too, and each would
    otherwise fail one request in turn (and the second failure opens the breaker)."""
    pool = getattr(client, "connection_pool", None)
    if pool is not None:
        pool.disconnect()


def record_outage(breaker: CircuitBreaker, client: RedisClientProtocol, exc: BaseException) -> None:
    """Redis failed for real: open the breaker and drop every pooled socket, so that after
    recovery each request (the breaker's probe first of all) gets a fresh connection rather
    than the next dead one, each of which would re-open the breaker for another cool-down."""
    breaker.record_failure(exc)
    drop_pooled_connections(client)


def once_more_if_reconnected(
    fn: Callable[[], T], breaker: CircuitBreaker, client: RedisClientProtocol, *, merge_first: bool = False
) -> T:
    """The one retry of every Redis call. If ``fn`` only met a re-established connection,
    or the first connection error after a healthy period (a pooled socket that died with a
    Redis restart), note on the breaker that Redis may have been away, drop the other
    pooled sockets, and run it again: at once, or, for an operation that must first merge
    what other layers accepted meanwhile (``merge_first``), by raising a retryable
    StoreError for the caller to run it again (``shared.core.recovery.Recovery.run``). Calls
    repeated so are idempotent: appends are exactly once per message id. Anything else
    (a second failure: an outage) is the caller's to record."""
    from redis import exceptions as rexc

    try:
        return fn()
    except (rexc.ConnectionError, rexc.TimeoutError, OSError) as exc:
        reconnected = isinstance(exc, ReconnectedMark)
        if not reconnected and (breaker.state() != "closed" or breaker.suspect):
            raise
        if reconnected:
            breaker.record_success()  # a connection was just established: Redis is up
        breaker.note_reconnect(exc.up_for_s if isinstance(exc, ReconnectedMark) else 0.0)
        drop_pooled_connections(client)
        if merge_first:
            raise StoreError(f"redis: {type(exc).__name__}", layer="redis", retryable=True) from exc
    return fn()


class Unavailable(StoreError):
    """Nothing was sent: Redis is not configured, or its circuit is open. A caller that
    fails open (the rate limit, the health check) tells this from a failed call."""


class Full(StoreError):
    """Redis answered but refused to take more data (``maxmemory`` reached under
    ``noeviction``): not an outage. It still answers reads and deletes, and the scripts
    flagged ``allow-oom`` (the end's); a caller that must write falls back as for an outage,
    one that only needs to read (the end) goes on from what Redis holds."""


@contextmanager
def guard(client: RedisClientProtocol | None, breaker: CircuitBreaker, op: str) -> Iterator[RedisClientProtocol]:
    """The one error boundary of every Redis call (as ``Firestore.guard`` in ``shared.store.firestore.client``): yields
    the client if one is configured and the breaker lets the call through, and turns
    whatever Redis does into the store's terms. An outage (a connection error, a timeout)
    opens the breaker and raises StoreError, for the caller to fall to the next layer; an
    answer, even a refusal, closes it; ``once_more_if_reconnected``'s retryable
    StoreError goes through as it is. Use ``call`` for one call with its retry."""
    from redis import exceptions as rexc

    if client is None:
        raise Unavailable("redis not configured", layer="redis")
    if not breaker.allow():
        raise Unavailable("redis circuit open", layer="redis")
    try:
        yield client
    except StoreError:
        raise
    except rexc.ResponseError as exc:
        # The server answered: it is up. A refused command is a bug, not an outage; a full
        # Redis (noeviction at maxmemory) refuses a write whole, and the caller falls back
        # to Firestore as for an outage, without opening the breaker.
        breaker.record_success()
        if isinstance(exc, rexc.OutOfMemoryError):
            log.error("redis is full (maxmemory reached): writes go to Firestore", extra={"op": op})
            raise Full(f"redis {op} refused: redis is full", layer="redis") from exc
        log.error("redis refused a request", extra={"op": op, "detail": str(exc)[:300]})
        raise StoreError(f"redis {op} failed: {exc}", layer="redis") from exc
    except (rexc.RedisError, OSError) as exc:
        record_outage(breaker, client, exc)
        log.warning("redis unavailable", extra={"op": op, "error": type(exc).__name__, "detail": str(exc)[:200]})
        raise StoreError(f"redis {op}: {type(exc).__name__}", layer="redis") from exc
    breaker.record_success()


def call(
    client: RedisClientProtocol | None,
    breaker: CircuitBreaker,
    op: str,
    fn: Callable[[RedisClientProtocol], T],
    *,
    merge_first: bool = False,
) -> T:
    """``fn(client)`` inside ``guard``, with the one retry (``once_more_if_reconnected``)."""
    with guard(client, breaker, op) as c:
        return once_more_if_reconnected(lambda: fn(c), breaker, c, merge_first=merge_first)


@functools.cache
def reconnected_error() -> type[ReconnectedMark]:
    """The error a re-established connection raises once: a redis ConnectionError, so
    whatever handles a lost connection handles it, marked as ``ReconnectedMark``."""
    import redis

    class Reconnected(redis.exceptions.ConnectionError, ReconnectedMark):
        pass

    return Reconnected


def build(settings: Settings, on_restart: Callable[[float], None] | None = None) -> RedisClientProtocol:
    """A new client for these settings (one per instance: ``shared.instance``);
    ``on_restart`` hears of a Redis that may have been away (``RunWatch``)."""
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    url = settings.redis_url
    if not url:
        raise Unavailable("redis not configured", layer="redis")
    common: dict[str, Any] = {
        "socket_timeout": settings.redis_socket_timeout_s,
        "socket_connect_timeout": settings.redis_connect_timeout_s,
        # No silent reconnect-and-retry inside redis-py: a connection that died with a
        # Redis restart must surface, so the layer can merge what was accepted elsewhere
        # meanwhile before retrying (RedisConnection.run, Recovery.run). No health
        # check PING either, for the same reason (and it would be a second round trip).
        "retry": Retry(NoBackoff(), 0),
        "health_check_interval": 0,
        "decode_responses": True,
    }
    if settings.redis_cluster:
        from redis.cluster import RedisCluster

        return _decoded(RedisCluster.from_url(url, **common))
    import redis

    watch = RunWatch(settings.redis_restart_horizon_s, on_restart)
    tls = url.startswith("rediss://")
    if tls and settings.redis_tls_ca_path:
        common["ssl_ca_certs"] = settings.redis_tls_ca_path
    return _decoded(
        redis.Redis.from_url(
            url,
            max_connections=settings.redis_max_connections,
            connection_class=_connection_class(watch, tls=tls),
            **common,
        )
    )


def _decoded(client: object) -> RedisClientProtocol:
    """A client built with ``decode_responses``, as what it is: redis-py's types cannot
    say that option was given (every reply is typed ``bytes | str``), so its replies are
    declared ``str`` here, the one place the product's clients are made."""
    return cast(RedisClientProtocol, client)


def watch_of(client: RedisClientProtocol | None) -> RunWatch | None:
    """The runs this client has met, if it is one ``build`` made (a cluster client, or a
    test's own, has none): its pool's connection class holds them."""
    pool = getattr(client, "connection_pool", None)
    watch = getattr(getattr(pool, "connection_class", None), "run_watch", None)
    return watch if isinstance(watch, RunWatch) else None
