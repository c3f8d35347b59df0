"""Real ID tokens through firebase-admin's own verify path (RS256 signatures checked against a
certificate served from loopback, revocation asked of an Auth API stand-in: tests/tokens.py),
and the instance's cache of verified claims: a token's signature is verified once, and
what must be checked on every request still is (expiry, revocation, a disabled account, a
token that is not the one verified)."""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path

import functions_framework
import pytest

from shared import edge
from shared.edge import auth
from shared.errors import Unauthenticated
from tests.tokens import PROJECT, GoogleStandIn

MAIN = str(Path(__file__).resolve().parents[2] / "functions" / "main.py")
UID = "token-user"


@pytest.fixture
def google(monkeypatch):
    import firebase_admin
    from firebase_admin import _token_gen, _user_mgt, credentials

    g = GoogleStandIn().start()
    for name in ("FIREBASE_AUTH_EMULATOR_HOST", "REDIS_URL", "FUNCTION_TARGET", "K_SERVICE", "K_CONFIGURATION"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AUTH_DISABLED", "false")
    monkeypatch.setenv("FIRESTORE_ENABLED", "false")
    monkeypatch.setenv("GCLOUD_PROJECT", PROJECT)
    monkeypatch.setattr(_token_gen, "ID_TOKEN_CERT_URI", f"{g.base_url}/certs")
    monkeypatch.setattr(_user_mgt.UserManager, "ID_TOOLKIT_URL", f"{g.base_url}/v1")
    edge.reset()  # drops any default app: the next one is built on the stand-in
    firebase_admin.initialize_app(credentials.Certificate(g.service_account()), {"projectId": PROJECT})
    yield g
    edge.reset()
    g.stop()


@pytest.fixture
def verify_calls(monkeypatch):
    """How often firebase-admin was asked: (plain verifications, revocation checks)."""
    calls = {"verify": 0, "revoked": 0}
    real = auth._verify

    def counting(token, *, check_revoked, skew):
        calls["revoked" if check_revoked else "verify"] += 1
        return real(token, check_revoked=check_revoked, skew=skew)

    monkeypatch.setattr(auth, "_verify", counting)
    return calls


def test_a_token_is_verified_once_then_its_claims_serve(google, verify_calls):
    token = google.token(UID, claims={auth.BACKEND_CLAIM: True})
    for _ in range(5):
        caller = auth.verify_caller(token)
        assert caller.uid == UID and caller.backend is True and caller.admin is False
    # the signature once; the account check once per TOKEN_CHECK_CACHE_S (60 s)
    assert verify_calls == {"verify": 1, "revoked": 1}
    assert google.hits["certs"] == 1 and google.hits["lookup"] == 1


def test_a_forged_token_is_refused_after_the_real_one_was_accepted(google, verify_calls):
    token = google.token(UID)
    assert auth.verify_caller(token).uid == UID
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims.update(sub="mallory", user_id="mallory")
    forged_payload = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    forged = f"{header}.{forged_payload}.{signature}"
    with pytest.raises(Unauthenticated, match="invalid ID token"):
        auth.verify_caller(forged)
    with pytest.raises(Unauthenticated, match="invalid ID token"):
        auth.verify_caller(forged)  # refused again: a refusal is never kept as an answer
    assert verify_calls["verify"] == 3


def test_an_expired_token_is_refused_though_it_was_accepted_before(google, monkeypatch):
    monkeypatch.setenv("TOKEN_CLOCK_SKEW_S", "0")
    edge.reset()
    import firebase_admin
    from firebase_admin import credentials

    firebase_admin.initialize_app(credentials.Certificate(google.service_account()), {"projectId": PROJECT})
    token = google.token(UID, ttl_s=2)
    assert auth.verify_caller(token).uid == UID
    time.sleep(2.2)
    with pytest.raises(Unauthenticated, match="expired"):
        auth.verify_caller(token)


def test_a_revoked_token_is_refused_at_its_next_account_check(google, monkeypatch):
    monkeypatch.setenv("TOKEN_CHECK_CACHE_S", "0")  # every request asks the Auth API
    token = google.token(UID, iat=time.time() - 10)
    assert auth.verify_caller(token).uid == UID
    google.revoke(UID)
    with pytest.raises(Unauthenticated, match="revoked"):
        auth.verify_caller(token)


def test_a_disabled_account_is_refused_at_its_next_account_check(google, monkeypatch):
    monkeypatch.setenv("TOKEN_CHECK_CACHE_S", "0")
    token = google.token(UID)
    assert auth.verify_caller(token).uid == UID
    google.disable(UID)
    with pytest.raises(Unauthenticated, match="disabled"):
        auth.verify_caller(token)


def test_the_edge_answers_a_real_token_and_refuses_a_bad_signature(google):
    client = functions_framework.create_app(target="get_context", source=MAIN).test_client()
    sid = "0123456789abcdef0123456789abcdef"
    token = google.token(UID)
    ok = client.get(f"/?session_id={sid}", headers={"Authorization": f"Bearer {token}"})
    assert ok.status_code == 404, ok.get_json()  # authenticated: the session is unknown
    other = GoogleStandIn()  # another key: a signature the certificate does not match
    other.kid = google.kid
    bad = client.get(f"/?session_id={sid}", headers={"Authorization": f"Bearer {other.token(UID)}"})
    assert bad.status_code == 401 and bad.get_json()["error"]["code"] == "unauthenticated"
