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


# Behind Firebase Hosting's rewrite (the console's /api), the request reaches the function
# through Fastly, Hosting's CDN: Fastly appends the client's address to X-Forwarded-For, then
# Google's front end appends Fastly's. The right-most entry is then a Fastly edge that many
# users share; the client is the entry Fastly appended, one to its left.
FASTLY_EDGE = "151.101.65.195"


def test_clients_behind_hostings_cdn_are_counted_apart(edge_with_redis):
    codes = [_create(f"web-{i}", f"198.51.100.{i}, {FASTLY_EDGE}").status_code for i in range(6)]
    assert codes == [201] * 6  # six users, one Fastly edge: not one shared budget


def test_a_client_behind_hostings_cdn_cannot_forge_its_way_past_the_limit(edge_with_redis):
    codes = [_create(f"web-x{i}", f"10.0.0.{i}, 198.51.100.77, {FASTLY_EDGE}").status_code for i in range(4)]
    assert codes == [201, 201, 201, 429]


def test_a_direct_caller_cannot_pose_as_the_cdn(edge_with_redis):
    # Called directly, the front end appends the caller's own address last: a Fastly-looking
    # entry the caller wrote sits to its left and proves nothing; Fastly-Client-IP, which a
    # client can set, is never read.
    for i in range(3):
        r = client("create_session").post(
            "/",
            json={},
            headers={
                "X-User-Id": f"direct-{i}",
                "X-Forwarded-For": f"10.1.1.{i}, {FASTLY_EDGE}, 203.0.113.9",
                "Fastly-Client-IP": f"10.2.2.{i}",
            },
        )
        assert r.status_code == 201
    assert _create("direct-3", f"{FASTLY_EDGE}, 203.0.113.9").status_code == 429


def test_trusted_proxies_can_be_set_or_turned_off(edge_with_redis, monkeypatch):
    monkeypatch.setenv("TRUSTED_PROXIES", "")
    edge.reset()
    codes = [_create(f"off-{i}", f"198.51.100.{i + 10}, {FASTLY_EDGE}").status_code for i in range(4)]
    assert codes == [201, 201, 201, 429]  # no proxy trusted: the edge's address is the client
    monkeypatch.setenv("TRUSTED_PROXIES", "192.0.2.0/24")
    edge.reset()
    codes = [_create(f"own-{i}", f"198.51.100.{i + 20}, 192.0.2.5").status_code for i in range(4)]
    assert codes == [201] * 4


def test_a_malformed_trusted_proxies_setting_is_refused_at_start(monkeypatch):
    from pydantic import ValidationError

    from shared.settings import Settings

    monkeypatch.setenv("TRUSTED_PROXIES", "fastly,10.0.0.0/33")
    with pytest.raises(ValidationError, match="TRUSTED_PROXIES|trusted_proxies"):
        Settings()
