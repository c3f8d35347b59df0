"""What every part of the Redis layer shares: the settings, the key names, the client (built
on first use), its breaker, and the Lua scripts, each run in one round trip."""

from __future__ import annotations

import logging
from collections.abc import Callable
from importlib import resources
from typing import Any

from shared.errors import StoreError
from shared.settings import Settings
from shared.store.breaker import CircuitBreaker
from shared.store.redis import client as redis_client
from shared.store.redis.keys import Keys

log = logging.getLogger("chat_memory.redis")

_SCRIPT_NAMES = (
    "append",
    "read",
    "erase",
    "store_summary",
    "begin_end",
    "finish_end",
    "abort_end",
    "import",
    "create",
    "mark_doc",
    "forget",
    "claim",
)


def _load_sources() -> dict[str, str]:
    pkg = resources.files("shared.store.redis") / "lua"
    return {n: (pkg / f"{n}.lua").read_text() for n in _SCRIPT_NAMES}


_SOURCES = _load_sources()


class RedisConnection:
    def __init__(
        self,
        settings: Settings,
        client: Any = None,
        breaker: CircuitBreaker | None = None,
        *,
        connect: Callable[[], Any] | None = None,
    ) -> None:
        """``client``, or ``connect`` (the instance's shared client, built on first use),
        or neither: one is built from ``settings`` (tests, benchmarks)."""
        self.settings = settings
        self.key_names = Keys(settings.redis_key_prefix)
        self._client = client
        self._connect = connect
        self.breaker = breaker or CircuitBreaker(settings.redis_breaker_cooldown_s)
        self._scripts: dict[str, Any] = {}

    @property
    def configured(self) -> bool:
        return self._client is not None or bool(self.settings.redis_url)

    def client(self) -> Any:
        if self._client is None:
            if self._connect is not None:
                return self._connect()
            if self.settings.redis_url:
                self._client = redis_client.build(self.settings, on_restart=self.breaker.note_recovery)
        return self._client

    def once_more_if_reconnected(self, fn: Any) -> Any:
        return redis_client.once_more_if_reconnected(fn, self.breaker, self.client())

    def run(self, name: str, keys: list[str], args: list[Any], *, merge_first: bool = False) -> Any:
        """Run one script (``merge_first``: see ``redis_client.once_more_if_reconnected``)."""
        from redis import exceptions as rexc
        from redis.exceptions import RedisError, ResponseError

        client = self.client()
        if client is None:
            raise StoreError("redis not configured", layer="redis")
        breaker = self.breaker
        if not breaker.allow():
            raise StoreError("redis circuit open", layer="redis")
        script = self._scripts.get(name)
        if script is None:
            # register_script: EVALSHA, and SCRIPT LOAD only on the first NOSCRIPT.
            script = self._scripts[name] = client.register_script(_SOURCES[name])
        try:
            out = redis_client.once_more_if_reconnected(
                lambda: script(keys=keys, args=args),
                breaker,
                client,
                merge_first=merge_first,
            )
        except StoreError:
            raise
        except ResponseError as exc:
            # The server answered: it is up. A script error is a bug, not an outage; a
            # full Redis (noeviction at maxmemory) refuses the write whole, and the caller
            # falls back to Firestore as for an outage, without opening the breaker.
            breaker.record_success()
            if isinstance(exc, rexc.OutOfMemoryError):
                log.error("redis is full (maxmemory reached): writes go to Firestore", extra={"op": name})
            raise StoreError(f"redis script {name} failed: {exc}", layer="redis") from exc
        except (RedisError, OSError) as exc:
            redis_client.record_outage(breaker, client, exc)
            log.warning("redis unavailable", extra={"op": name, "error": type(exc).__name__, "detail": str(exc)[:200]})
            raise StoreError(f"redis {name}: {type(exc).__name__}", layer="redis") from exc
        breaker.record_success()
        return out
