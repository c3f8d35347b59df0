"""The instance's one Firestore client, imported and created only when first needed.

A context read served from Redis never imports google.cloud.firestore or
firebase_admin (they cost hundreds of milliseconds of cold start).
Against the emulator, firebase_admin.firestore.client() would still ask for
Application Default Credentials, so the emulator gets an anonymous client; this is
the one place that choice is made.
"""

from __future__ import annotations

import os
import threading
from typing import Any

from shared.settings import get_settings

_lock = threading.Lock()
_client: Any = None


def get_client() -> Any:
    global _client
    if _client is not None:
        return _client
    with _lock:
        if _client is None:
            _client = _build()
    return _client


def project_id() -> str:
    return get_settings().gcp_project or "demo-chat-memory"


def _build() -> Any:
    from google.cloud import firestore

    if os.environ.get("FIRESTORE_EMULATOR_HOST"):
        from google.auth.credentials import AnonymousCredentials

        return firestore.Client(project=project_id(), credentials=AnonymousCredentials())
    import firebase_admin
    from firebase_admin import firestore as admin_firestore

    if not firebase_admin._apps:
        firebase_admin.initialize_app(options={"projectId": project_id()})
    return admin_firestore.client()


def reset_client() -> None:
    global _client
    with _lock:
        _client = None


def _breaker() -> Any:
    from shared.store.breaker import CircuitBreaker

    return CircuitBreaker(cooldown_s=get_settings().redis_breaker_cooldown_s)


# While Firestore is down an instance tries it at most once per cool-down, like Redis.
BREAKER = _breaker()
