"""What every part of the Redis layer shares: the settings, the key names, the client (built
on first use), its breaker, and the Lua scripts, each run in one round trip."""

from __future__ import annotations

from collections.abc import Callable
from importlib import resources
from typing import Any, TypeVar

from shared.settings import Settings
from shared.store.breaker import CircuitBreaker
from shared.store.redis import client as redis_client
from shared.store.redis.keys import Keys
from shared.store.redis.protocol import RedisClientProtocol, ScriptProtocol

T = TypeVar("T")

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
    "recall_inputs",
    "recall_put",
)


def _load_sources() -> dict[str, str]:
    pkg = resources.files("shared.store.redis") / "lua"
    return {n: (pkg / f"{n}.lua").read_text() for n in _SCRIPT_NAMES}


_SOURCES = _load_sources()


class RedisConnection:
    def __init__(
        self,
        settings: Settings,
        client: RedisClientProtocol | None = None,
        breaker: CircuitBreaker | None = None,
        *,
        connect: Callable[[], RedisClientProtocol | None] | None = None,
    ) -> None:
        """``client``, or ``connect`` (the instance's shared client, built on first use),
        or neither: one is built from ``settings`` (tests, benchmarks)."""
        self.settings = settings
        self.key_names = Keys(settings.redis_key_prefix)
        self._client = client
        self._connect = connect
        self.breaker = breaker or CircuitBreaker(settings.redis_breaker_cooldown_s)
        self._scripts: dict[str, ScriptProtocol] = {}

    @property
    def configured(self) -> bool:
        return self._client is not None or bool(self.settings.redis_url)

    def client(self) -> RedisClientProtocol | None:
        if self._client is None:
            if self._connect is not None:
                return self._connect()
            if self.settings.redis_url:
                self._client = redis_client.build(self.settings, on_restart=self.breaker.note_recovery)
        return self._client

    def call(self, op: str, fn: Callable[[RedisClientProtocol], T], *, merge_first: bool = False) -> T:
        """``fn(client)`` inside the guard, with the one retry (``redis_client.call``)."""
        return redis_client.call(self.client(), self.breaker, op, fn, merge_first=merge_first)

    def run(self, name: str, keys: list[str], args: list[Any], *, merge_first: bool = False) -> Any:
        """Run one script (``merge_first``: see ``redis_client.once_more_if_reconnected``)."""

        def script(client: RedisClientProtocol) -> Any:
            registered = self._scripts.get(name)
            if registered is None:
                # register_script: EVALSHA, and SCRIPT LOAD only on the first NOSCRIPT.
                registered = self._scripts[name] = client.register_script(_SOURCES[name])
            return registered(keys=keys, args=args)

        return self.call(name, script, merge_first=merge_first)
