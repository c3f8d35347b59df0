"""firestore.rules against the Firestore emulator's own rules evaluation (REST API).

Data is seeded as the admin (``Bearer owner`` bypasses rules in the emulator); every
check then goes through the rules with a mock ID token, the unsigned JWT the emulator
accepts for ``request.auth``. The positive cases (the owner reading its own session)
guard against a test that passes only because nothing works at all.
"""

from __future__ import annotations

import base64
import json
import os
import time
import uuid
from pathlib import Path

import pytest
import requests

RULES = Path(__file__).resolve().parents[2] / "firestore.rules"
PROJECT = os.environ.get("GCLOUD_PROJECT", "demo-chat-memory")


def _b64(obj: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()


def mock_token(uid: str, **custom: object) -> str:
    now = int(time.time())
    claims = {
        **custom,
        "iss": f"https://securetoken.google.com/{PROJECT}",
        "aud": PROJECT,
        "auth_time": now,
        "iat": now,
        "exp": now + 3600,
        "sub": uid,
        "user_id": uid,
        "firebase": {"sign_in_provider": "anonymous", "identities": {}},
    }
    return f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(claims)}."


@pytest.fixture
def fs(firestore_emulator: str):
    host = firestore_emulator
    base = f"http://{host}/v1/projects/{PROJECT}/databases/(default)/documents"
    # Load this repo's rules into the emulator (admin endpoint of the emulator).
    resp = requests.put(
        f"http://{host}/emulator/v1/projects/{PROJECT}:securityRules",
        json={"rules": {"files": [{"name": "firestore.rules", "content": RULES.read_text()}]}},
        timeout=10,
    )
    assert resp.status_code == 200, resp.text
    return base


def _seed(base: str, path: str, fields: dict) -> None:
    resp = requests.patch(
        f"{base}/{path}",
        json={"fields": {k: {"stringValue": v} for k, v in fields.items()}},
        headers={"Authorization": "Bearer owner"},
        timeout=10,
    )
    assert resp.status_code == 200, resp.text


def _as(uid: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {mock_token(uid)}"} if uid else {}


@pytest.fixture
def data(fs):
    alice, bob = f"alice{uuid.uuid4().hex[:8]}", f"bob{uuid.uuid4().hex[:8]}"
    sid = uuid.uuid4().hex
    _seed(fs, f"sessions/{sid}", {"owner": alice, "status": "active"})
    _seed(fs, f"sessions/{sid}/pending/m1", {"content": "hello", "role": "user"})
    _seed(fs, f"analytics/{sid}", {"owner": alice})
    _seed(fs, f"users/{alice}", {"owner": alice})
    _seed(fs, "kb_usage/doc-1", {"owner": alice})
    _seed(fs, "rollups/2030-01-01", {"sessions": 1})
    _seed(fs, f"low_confidence/{sid}_00000002", {"session_id": sid, "query": "hello"})
    _seed(fs, "admin_audit/a1", {"session_id": sid})
    return {"base": fs, "alice": alice, "bob": bob, "sid": sid}


def test_owner_reads_own_session(data):
    resp = requests.get(f"{data['base']}/sessions/{data['sid']}", headers=_as(data["alice"]), timeout=10)
    assert resp.status_code == 200, resp.text
    assert resp.json()["fields"]["owner"]["stringValue"] == data["alice"]


@pytest.mark.parametrize("who", ["bob", None])
def test_others_cannot_read_a_session(data, who):
    uid = data[who] if who else None
    resp = requests.get(f"{data['base']}/sessions/{data['sid']}", headers=_as(uid), timeout=10)
    assert resp.status_code == 403, resp.text


def _query(data, uid, where: bool):
    q: dict = {"from": [{"collectionId": "sessions"}]}
    if where:
        q["where"] = {"fieldFilter": {"field": {"fieldPath": "owner"}, "op": "EQUAL", "value": {"stringValue": uid}}}
    return requests.post(f"{data['base']}:runQuery", json={"structuredQuery": q}, headers=_as(uid), timeout=10)


def test_owner_lists_only_with_own_owner_filter(data):
    resp = _query(data, data["alice"], where=True)
    assert resp.status_code == 200, resp.text
    names = [r["document"]["name"] for r in resp.json() if "document" in r]
    assert any(n.endswith(data["sid"]) for n in names)
    assert _query(data, data["alice"], where=False).status_code == 403
    # bob's own-filtered query is allowed but sees nothing of alice's
    resp = _query(data, data["bob"], where=True)
    assert resp.status_code == 200 and not [r for r in resp.json() if "document" in r]


@pytest.mark.parametrize(
    "path",
    [
        "analytics/{sid}",
        "users/{alice}",
        "kb_usage/doc-1",
        "sessions/{sid}/pending/m1",
        "_health/ping",
        "rollups/2030-01-01",
        "low_confidence/{sid}_00000002",
        "admin_audit/a1",
    ],
)
def test_everything_else_is_unreadable_even_for_the_owner(data, path):
    url = f"{data['base']}/{path.format(**data)}"
    resp = requests.get(url, headers=_as(data["alice"]), timeout=10)
    assert resp.status_code == 403, resp.text


@pytest.mark.parametrize("path", ["sessions/{sid}", "sessions/newone", "users/{alice}", "analytics/{sid}"])
def test_no_client_writes(data, path):
    url = f"{data['base']}/{path.format(**data)}"
    body = {"fields": {"owner": {"stringValue": data["alice"]}, "status": {"stringValue": "ended"}}}
    assert requests.patch(url, json=body, headers=_as(data["alice"]), timeout=10).status_code == 403
    assert requests.delete(url, headers=_as(data["alice"]), timeout=10).status_code == 403


def test_session_still_intact_after_refused_writes(data):
    resp = requests.get(f"{data['base']}/sessions/{data['sid']}", headers={"Authorization": "Bearer owner"}, timeout=10)
    assert resp.json()["fields"]["status"]["stringValue"] == "active"


@pytest.mark.parametrize("path", ["rollups/2030-01-01", "low_confidence/{sid}_00000002", "admin_audit/a1"])
def test_the_reports_are_closed_to_client_sdks_even_for_an_admin(data, path):
    """Admins read reports through the admin_* functions, never through a client SDK."""
    headers = {"Authorization": f"Bearer {mock_token(data['alice'], admin=True)}"}
    url = f"{data['base']}/{path.format(**data)}"
    assert requests.get(url, headers=headers, timeout=10).status_code == 403
    assert requests.delete(url, headers=headers, timeout=10).status_code == 403
