"""Helpers for the store tests (the redis-server and emulator fixtures are tests/conftest.py's)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from shared.core.manager import SessionManager
from shared.settings import Settings
from shared.store.firestore.client import bound_rpc_deadlines
from shared.store.firestore.layer import FirestoreLayer
from shared.store.redis.layer import RedisLayer
from tests.harness import background_triggers_off, free_port


def make_manager(
    redis_url: str | None, *, firestore: bool = True, fs_client: Any = None, **overrides: Any
) -> SessionManager:
    values: dict[str, Any] = {
        "redis_url": redis_url,
        "firestore_enabled": firestore,
        "redis_breaker_cooldown_s": 0.2,
        "firestore_breaker_cooldown_s": 0.2,
        "gcp_project": os.environ.get("GCLOUD_PROJECT", "demo-chat-memory"),
    }
    settings = Settings(**(values | overrides))
    return SessionManager(settings, redis=RedisLayer(settings), firestore=FirestoreLayer(settings, client=fs_client))


def dead_firestore_client() -> Any:
    """A real Firestore client pointed at a loopback port where nothing listens."""
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import firestore

    old = os.environ.get("FIRESTORE_EMULATOR_HOST")
    os.environ["FIRESTORE_EMULATOR_HOST"] = f"127.0.0.1:{free_port()}"
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


@pytest.fixture
def no_emulated_trigger() -> Iterator[None]:
    """These tests play the Firestore trigger's part themselves: keep the emulated one out."""
    with background_triggers_off():
        yield
