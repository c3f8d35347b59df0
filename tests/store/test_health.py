"""health is public: what it costs the stores, and what it tells, with real stores behind it."""

from __future__ import annotations

import json
from typing import Any

import pytest
import redis

from shared import instance
from shared.edge import api
from shared.edge.http import Call
from tests.store.conftest import dead_firestore_client, make_manager

CALLS = 50


class ReadCounter:
    """Counts the Firestore documents read at the client (health reads one per probe)."""

    def __init__(self, client: Any) -> None:
        self.reads = 0
        orig_get = client._firestore_api.batch_get_documents

        def batch_get(request=None, **kw):
            self.reads += len((request or {}).get("documents", []))
            return orig_get(request=request, **kw)

        client._firestore_api.batch_get_documents = batch_get


def redis_pings(url: str) -> int:
    stats = redis.Redis.from_url(url).info("commandstats")
    return int(stats.get("cmdstat_ping", {}).get("calls", 0))


@pytest.fixture
def serve():
    """Install a manager as the instance's (what health uses) for one test."""

    def install(manager: Any) -> None:
        instance.get_instance().use(manager)  # the autouse reset forgets it after the test

    return install


def health() -> tuple[int, dict[str, Any]]:
    return api.health(Call(uid=None, body={}, args={}))


def test_many_health_calls_cost_one_firestore_read_and_one_ping(redis_server, firestore_emulator, serve):
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import firestore

    client = firestore.Client(project="demo-chat-memory", credentials=AnonymousCredentials())
    counter = ReadCounter(client)
    serve(make_manager(redis_server.url, fs_client=client))
    pings_before = redis_pings(redis_server.url)
    replies = [health() for _ in range(CALLS)]
    assert all(status == 200 and body["status"] == "ok" for status, body in replies)
    # HEALTH_CACHE_S (5 s) is far longer than 50 calls in-process take; even on a loaded
    # machine a second probe would be one more, never fifty.
    assert counter.reads <= 2, counter.reads
    assert redis_pings(redis_server.url) - pings_before <= 2


def test_health_with_firestore_and_redis_down_tells_no_error_text(serve):
    # Redis at a port where nothing listens, Firestore at another: both real clients, both down.
    m = make_manager("redis://127.0.0.1:1/0", fs_client=dead_firestore_client())
    serve(m)
    status, body = health()
    assert status == 200 and body["status"] == "degraded"
    assert body["layers"]["redis"]["status"] == "down" and body["layers"]["firestore"]["status"] == "down"
    text = json.dumps(body)
    for leak in ("Error", "error", "127.0.0.1", "Exception", "unavailable:", "firestore:"):
        assert leak not in text, (leak, text)
