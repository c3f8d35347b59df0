"""The instance's composition root: what one Cloud Functions instance keeps across
invocations (its settings, the Redis and Firestore clients, their circuit breakers, the
Firestore stores, the session manager and the features over them) is built here on first
use and handed to whoever needs it. Nothing else builds a client or a breaker for the
serving path, and ``reset()`` (tests) forgets it all.

Building does no I/O: the first command connects. The Firestore client is built only when
first used, so a context read served from Redis never imports google.cloud.firestore.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from shared.settings import Settings, get_settings, reset_settings
from shared.store.breaker import CircuitBreaker

if TYPE_CHECKING:
    from google.cloud.firestore import Client

    from shared.core.manager import SessionManager
    from shared.features.admin import Reports
    from shared.features.chat import Chat
    from shared.features.erasure import Erasure
    from shared.features.export import DataRights
    from shared.features.memories import Memories
    from shared.features.state import AppState
    from shared.store.firestore.client import Firestore
    from shared.store.firestore.erasure import ErasureStore
    from shared.store.firestore.reports import ReportStore
    from shared.store.firestore.scans import SessionScans
    from shared.store.firestore.stats import Stats

T = TypeVar("T")


class Instance:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        # One breaker per backend for everything on this instance that talks to it (the
        # session layers and the rate limiter): one outage, one cool-down.
        self.redis_breaker = CircuitBreaker(settings.redis_breaker_cooldown_s)
        self.firestore_breaker = CircuitBreaker(settings.firestore_breaker_cooldown_s)
        self._lock = threading.RLock()  # manager() builds the Redis client under it too
        self._redis: Any = None
        self._firestore_client: Client | None = None
        self._built: dict[str, Any] = {}  # the Firestore wrapper and stores (``_once``)
        self._manager: SessionManager | None = None
        self._chat: Chat | None = None
        self._memories: Memories | None = None

    def redis_client(self) -> Any:
        """The Redis (or RedisCluster) client, or None when no Redis is configured."""
        if self._redis is None and self.settings.redis_url:
            from shared.store.redis import client as redis_client

            with self._lock:
                if self._redis is None:
                    self._redis = redis_client.build(self.settings, on_restart=self.redis_breaker.note_recovery)
        return self._redis

    def firestore_client(self) -> Client:
        if self._firestore_client is None:
            from shared.store.firestore import client as firestore_client

            with self._lock:
                if self._firestore_client is None:
                    self._firestore_client = firestore_client.build(self.settings)
        return self._firestore_client

    def firestore(self) -> Firestore:
        """The one Firestore wrapper (client, breaker, error boundary) that every Firestore
        store of this instance goes through. Building it builds no client."""
        from shared.store.firestore.client import Firestore

        return self._once(
            "firestore", lambda: Firestore(self.settings, connect=self.firestore_client, breaker=self.firestore_breaker)
        )

    def stats(self) -> Stats:
        """The user's totals, KB usage and rollups, counted once (the trigger, the sweep)."""
        from shared.features.memory import build_digest
        from shared.store.firestore.memories import MemoryStore
        from shared.store.firestore.stats import Stats

        settings = self.settings
        return self._once(
            "stats",
            lambda: Stats(
                self.firestore(),
                memories=MemoryStore(self.firestore()),
                digest=lambda sid, session, entries: build_digest(sid, session, entries, settings),
            ),
        )

    def scans(self) -> SessionScans:
        """The sweep's scans over the session documents."""
        from shared.store.firestore.scans import SessionScans

        return self._once("scans", lambda: SessionScans(self.firestore()))

    def report_store(self) -> ReportStore:
        from shared.store.firestore.reports import ReportStore

        return self._once("report_store", lambda: ReportStore(self.firestore()))

    def erasure_store(self) -> ErasureStore:
        from shared.store.firestore.erasure import ErasureStore

        return self._once("erasure_store", lambda: ErasureStore(self.firestore()))

    def _once(self, name: str, build: Callable[[], T]) -> T:
        """What ``build`` makes, made once per instance."""
        got: T | None = self._built.get(name)
        if got is None:
            with self._lock:
                got = self._built.get(name)
                if got is None:
                    got = self._built[name] = build()
        return got

    def manager(self) -> SessionManager:
        if self._manager is None:
            with self._lock:
                if self._manager is None:
                    self._manager = self._build_manager()
                    # the user messages it takes are recalled against the user's memories
                    self._memories = self._wire_memories(self._manager)
        return self._manager

    def chat(self) -> Chat:
        """The chat turn, with the configured responder (built, and its libraries imported,
        only on an instance that serves chat)."""
        if self._chat is None:
            from shared.features.chat import Chat
            from shared.features.responders import build_responder

            manager = self.manager()
            with self._lock:
                if self._chat is None:
                    self._chat = Chat(manager, build_responder(self.settings))
        return self._chat

    def memories(self) -> Memories:
        """The user's memories of past sessions: recall, list, search, delete."""
        manager = self.manager()
        with self._lock:
            if self._memories is None or self._memories.m is not manager:
                self._memories = self._wire_memories(manager)
            return self._memories

    def _wire_memories(self, manager: SessionManager) -> Memories:
        from shared.features.memories import wire_memories
        from shared.store.firestore.memories import MemoryStore

        return wire_memories(manager, MemoryStore(self.firestore()), self.stats())

    def reports(self) -> Reports:
        from shared.features.admin import Reports

        return Reports(self.report_store(), self.settings.kb_path)

    def data_rights(self) -> DataRights:
        from shared.features.export import DataRights
        from shared.store.firestore.state import StateStore

        return DataRights(self.manager(), self.report_store(), self.stats(), StateStore(self.firestore()))

    def app_state(self) -> AppState:
        """get_state and update_state: a framework's per-user and per-app state."""
        from shared.features.state import AppState
        from shared.store.firestore.state import StateStore

        return AppState(StateStore(self.firestore()), self.settings)

    def erasure(self) -> Erasure:
        from shared.features.erasure import Erasure

        return Erasure(self.manager(), self.erasure_store(), self.report_store())

    def use(self, manager: SessionManager) -> None:
        """Serve ``manager`` from now on (tests and tools that build their own)."""
        with self._lock:
            self._manager, self._chat = manager, None
            self._memories = self._wire_memories(manager)

    def _build_manager(self) -> SessionManager:
        from shared.core.manager import SessionManager
        from shared.store.firestore.layer import FirestoreLayer
        from shared.store.redis.layer import RedisLayer

        s = self.settings
        manager = SessionManager(
            s,
            redis=RedisLayer(s, connect=self.redis_client, breaker=self.redis_breaker),
            firestore=FirestoreLayer(self.firestore()),
            stats=self.stats(),
        )
        if manager.redis.configured:
            # Import redis-py and build the client here, before any other thread touches
            # it: two threads importing redis-py's modules at once can each meet the other's
            # half-initialised module (seen: the first append of a new instance answered 500).
            self.redis_client()
            # Logs a warning at start-up if Redis may evict single session keys; in the
            # background, so that a Redis down at start-up delays no request.
            threading.Thread(target=manager.redis.eviction_policy, daemon=True).start()
        return manager

    def close(self) -> None:
        if self._redis is not None:
            try:
                self._redis.close()
            except Exception:  # noqa: BLE001 - closing a dead client may fail; nothing to do
                pass


_lock = threading.Lock()
_instance: Instance | None = None


def get_instance() -> Instance:
    global _instance
    if _instance is None:
        with _lock:
            if _instance is None:
                _instance = Instance(get_settings())
    return _instance


def reset() -> None:
    """Forget everything this instance built (settings, clients, breakers, the manager,
    registered scripts, the KB's indexes). Tests call ``shared.edge.reset``, which also
    drops the edge's caches."""
    global _instance

    with _lock:
        if _instance is not None:
            _instance.close()
        _instance = None
    reset_settings()
    kb = sys.modules.get("shared.features.responders.kb")
    if kb is not None:
        kb.reset_indexes()
