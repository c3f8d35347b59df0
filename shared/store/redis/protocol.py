"""The few Redis commands the product calls, as a Protocol (as powertools' idempotency
``persistence/redis.py`` types its client): the seams of the Redis layer take this rather
than ``Any``, so a command used anywhere is declared here, and any client with these
methods (redis-py's ``Redis`` and ``RedisCluster``, a test's own) fits.

The client is built with ``decode_responses``: replies are ``str``, not ``bytes``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol


class ScriptProtocol(Protocol):
    """A registered Lua script (EVALSHA, SCRIPT LOAD on the first NOSCRIPT). Its reply is
    whatever the script returns: each caller reads its own script's shape."""

    def __call__(self, keys: Sequence[str] = ..., args: Sequence[Any] = ...) -> Any: ...


class RedisClientProtocol(Protocol):
    def register_script(self, script: str) -> ScriptProtocol: ...

    def ping(self) -> bool: ...

    def hget(self, name: str, key: str) -> str | None: ...

    def hmget(self, name: str, keys: Sequence[str]) -> list[str | None]: ...

    def ttl(self, name: str) -> int: ...

    def lrange(self, name: str, start: int, end: int) -> list[str]: ...

    def zrange(self, name: str, start: int, end: int) -> list[str]: ...

    def zadd(self, name: str, mapping: Mapping[str, float], *, xx: bool = ...) -> int: ...

    def zrem(self, name: str, *values: str) -> int: ...

    def delete(self, *names: str) -> int: ...

    # A cluster client answers these two per node ({node: {field: value}}).
    def config_get(self, pattern: str) -> dict[str, Any]: ...

    def info(self, section: str) -> dict[str, Any]: ...
