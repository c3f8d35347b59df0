"""Fixtures for the store tests: real redis-server processes and the Firestore emulator."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from shared.session_manager import SessionManager
from shared.settings import Settings
from shared.store.firestore_client import bound_rpc_deadlines
from shared.store.firestore_store import FirestoreLayer
from shared.store.redis_store import RedisLayer
from tests.store.servers import RedisServer


@pytest.fixture
def redis_aof(tmp_path) -> Iterator[RedisServer]:
    """A redis-server with AOF persistence (as Memorystore with persistence): a kill and
    restart keeps its data, so an outage test checks the merge, not data loss."""
    srv = RedisServer(persistent=True, data_dir=tmp_path)
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture
def redis_plain() -> Iterator[RedisServer]:
    srv = RedisServer()
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture
def fs_host() -> str:
    host = os.environ.get("FIRESTORE_EMULATOR_HOST")
    if not host:
        pytest.fail(
            "FIRESTORE_EMULATOR_HOST is not set: run the tests through `make test` "
            "(firebase emulators:exec starts the Firestore emulator)"
        )
    return host


def make_manager(
    redis_url: str | None, *, firestore: bool = True, fs_client: Any = None, **overrides: Any
) -> SessionManager:
    values: dict[str, Any] = {
        "redis_url": redis_url,
        "firestore_enabled": firestore,
        "redis_breaker_cooldown_s": 0.2,
        "gcp_project": os.environ.get("GCLOUD_PROJECT", "demo-chat-memory"),
    }
    settings = Settings(**(values | overrides))
    return SessionManager(settings, redis=RedisLayer(settings), firestore=FirestoreLayer(settings, client=fs_client))


def dead_firestore_client() -> Any:
    """A real Firestore client pointed at a loopback port where nothing listens."""
    import socket

    from google.auth.credentials import AnonymousCredentials
    from google.cloud import firestore

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    old = os.environ.get("FIRESTORE_EMULATOR_HOST")
    os.environ["FIRESTORE_EMULATOR_HOST"] = f"127.0.0.1:{port}"
    try:
        client = firestore.Client(project="demo-chat-memory", credentials=AnonymousCredentials())
        return bound_rpc_deadlines(client, 0.5)
    finally:
        if old is None:
            del os.environ["FIRESTORE_EMULATOR_HOST"]
        else:
            os.environ["FIRESTORE_EMULATOR_HOST"] = old


@pytest.fixture
def uid() -> str:
    return "u-" + uuid.uuid4().hex[:12]
