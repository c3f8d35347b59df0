"""Session creation limited per client network at the HTTP edge, with a real redis-server.

Anonymous sign-in makes uids free: these callers use a fresh uid for every session.
"""

from __future__ import annotations

import pytest

from shared import edge
from tests.unit.test_http_edge import client, error_code


@pytest.fixture
def edge_with_redis(monkeypatch, redis_server):
    for name in ("FUNCTION_TARGET", "FIREBASE_AUTH_EMULATOR_HOST"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("FIRESTORE_ENABLED", "false")
    monkeypatch.setenv("AUTH_DISABLED", "true")
    monkeypatch.setenv("REDIS_URL", redis_server.url)
    monkeypatch.setenv("SESSION_CREATE_PER_IP_PER_MINUTE", "3")
    monkeypatch.setenv("RATE_LIMIT_PER_MINUTE", "1000")
    edge.reset()
    yield redis_server
    edge.reset()


def _create(uid: str, forwarded_for: str):
    return client("create_session").post("/", json={}, headers={"X-User-Id": uid, "X-Forwarded-For": forwarded_for})


def test_session_creation_is_limited_per_client_ip_across_fresh_uids(edge_with_redis):
    # Google's front end appends the address it saw; what the client wrote comes first
    # and changes every time here, as an attacker's would.
    codes = [_create(f"anon-{i}", f"10.9.9.{i}, 203.0.113.7").status_code for i in range(3)]
    assert codes == [201, 201, 201]
    refused = _create("anon-3", "10.9.9.3, 203.0.113.7")
    assert refused.status_code == 429 and error_code(refused) == "rate_limited"
    assert int(refused.headers["Retry-After"]) >= 1
    # another network is not affected
    assert _create("anon-4", "203.0.113.8").status_code == 201


def test_ipv6_clients_are_counted_per_64(edge_with_redis):
    for i in range(3):
        assert _create(f"v6-{i}", f"2001:db8:1:2::{i + 1}").status_code == 201
    assert _create("v6-x", "2001:db8:1:2:ffff::9").status_code == 429
    assert _create("v6-y", "2001:db8:1:3::1").status_code == 201


def test_the_session_cap_answers_a_clear_409(edge_with_redis, monkeypatch):
    monkeypatch.setenv("MAX_ACTIVE_SESSIONS_PER_USER", "2")
    edge.reset()
    for i in range(2):
        assert _create("capped", f"198.51.100.{i}").status_code == 201
    refused = _create("capped", "198.51.100.9")
    assert refused.status_code == 409 and error_code(refused) == "too_many_sessions"
    assert "end one" in refused.get_json()["error"]["message"]
    assert _create("someone-else", "198.51.100.9").status_code == 201
