"""A backend acting for a user (issue 22), with real signed tokens of both kinds: a Firebase ID
token holding the backend claim, and a Google service account's ID token (RS256, Google's
issuer, our audience), both verified by the product's own paths against certificates served
from loopback (tests/tokens.py). The functions run in-process (functions-framework's app of
functions/main.py), on this test's redis-server and the Firestore emulator."""

from __future__ import annotations

import logging
import uuid
from pathlib import Path
from typing import Any

import functions_framework
import pytest

from shared import edge
from shared.edge import service_accounts
from tests.tokens import PROJECT, GoogleStandIn

MAIN = str(Path(__file__).resolve().parents[2] / "functions" / "main.py")
AUDIENCE = "https://us-central1-demo-chat-memory.cloudfunctions.net"
BACKEND_SA = "agent@demo-chat-memory.iam.gserviceaccount.com"


@pytest.fixture
def google(monkeypatch, redis_server, firestore_emulator):
    import firebase_admin
    from firebase_admin import _token_gen, _user_mgt, credentials

    g = GoogleStandIn().start()
    for name in ("FIREBASE_AUTH_EMULATOR_HOST", "FUNCTION_TARGET", "K_SERVICE", "K_CONFIGURATION"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AUTH_DISABLED", "false")
    monkeypatch.setenv("REDIS_URL", redis_server.url)
    monkeypatch.setenv("FIRESTORE_ENABLED", "true")
    monkeypatch.setenv("GCLOUD_PROJECT", PROJECT)
    monkeypatch.setenv("BACKEND_SERVICE_ACCOUNTS", f"other@x.iam.gserviceaccount.com, {BACKEND_SA.upper()}")
    monkeypatch.setenv("BACKEND_TOKEN_AUDIENCES", AUDIENCE)
    monkeypatch.setattr(_token_gen, "ID_TOKEN_CERT_URI", f"{g.base_url}/certs")
    monkeypatch.setattr(_user_mgt.UserManager, "ID_TOOLKIT_URL", f"{g.base_url}/v1")
    monkeypatch.setattr(service_accounts, "GOOGLE_CERTS_URL", f"{g.base_url}/certs")
    edge.reset()
    firebase_admin.initialize_app(credentials.Certificate(g.service_account()), {"projectId": PROJECT})
    yield g
    edge.reset()
    g.stop()


class Fns:
    """The functions of main.py in this process, called with a bearer token."""

    def __init__(self) -> None:
        self.apps: dict[str, Any] = {}

    def _client(self, fn: str) -> Any:
        if fn not in self.apps:
            self.apps[fn] = functions_framework.create_app(target=fn, source=MAIN).test_client()
        return self.apps[fn]

    def post(self, fn: str, token: str, body: dict[str, Any]) -> tuple[int, Any]:
        r = self._client(fn).post("/", json=body, headers={"Authorization": f"Bearer {token}"})
        return r.status_code, r.get_json()

    def get(self, fn: str, token: str, **params: Any) -> tuple[int, Any]:
        r = self._client(fn).get("/", query_string=params, headers={"Authorization": f"Bearer {token}"})
        return r.status_code, r.get_json()


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def http_log() -> Any:
    """The edge's line per request, as records (a handler on its logger)."""
    logger, handler = logging.getLogger("chat_memory.http"), _Records()
    logger.addHandler(handler)
    yield handler.records
    logger.removeHandler(handler)


@pytest.fixture
def fns(google) -> Fns:
    return Fns()


def backend_token(g: GoogleStandIn) -> str:
    return g.token("chat-backend", claims={"chat_backend": True})


def sa_token(g: GoogleStandIn, **kw: Any) -> str:
    return g.google_id_token(kw.pop("email", BACKEND_SA), kw.pop("audience", AUDIENCE), **kw)


@pytest.mark.parametrize("kind", ["firebase_claim", "service_account"])
def test_a_backend_writes_a_users_session_which_is_theirs(google, fns, kind, http_log):
    token = backend_token(google) if kind == "firebase_claim" else sa_token(google)
    alice, bob = google.token("alice"), google.token("bob")
    status, created = fns.post("create_session", token, {"user_id": "alice"})
    assert status == 201 and created["user_id"] == "alice", created
    sid = created["session_id"]
    assert (
        fns.post("append_message", token, {"user_id": "alice", "session_id": sid, "role": "user", "content": "hi"})[0]
        == 201
    )
    status, reply = fns.post(
        "append_message",
        token,
        {
            "user_id": "alice",
            "session_id": sid,
            "role": "assistant",
            "content": "hello, Alice",
            "client_message_id": "a1",
        },
    )
    assert status == 201, reply
    # the user reads her own session, the backend's turn in it; another user cannot
    status, ctx = fns.get("get_context", alice, session_id=sid)
    assert status == 200 and [m["role"] for m in ctx["messages"]] == ["user", "assistant"]
    assert fns.get("get_context", bob, session_id=sid)[0] in (403, 404)
    # the backend reads it for her, and for nobody else
    assert fns.get("get_context", token, session_id=sid, user_id="alice")[0] == 200
    assert fns.get("get_context", token, session_id=sid, user_id="bob")[0] in (403, 404)
    status, ended = fns.post("end_session", token, {"user_id": "alice", "session_id": sid})
    assert status == 200 and ended["status"] == "ended", ended
    # every backend action is logged with the backend and the user it acted for
    actor = BACKEND_SA if kind == "service_account" else "chat-backend"
    acted = [r for r in http_log if getattr(r, "acting_backend", None) == actor]
    assert {getattr(r, "function", None) for r in acted} >= {
        "create_session",
        "append_message",
        "get_context",
        "end_session",
    }
    assert all(getattr(r, "user_id", None) in ("alice", "bob") for r in acted)


def test_an_end_user_may_not_name_a_user_nor_write_the_assistants_turn(google, fns):
    alice = google.token("alice")
    for body in ({"user_id": "bob"}, {"user_id": "alice"}):
        status, err = fns.post("create_session", alice, body)
        assert status == 403 and err["error"]["code"] == "permission_denied" and "user_id" in err["error"]["message"]
    status, err = fns.get("get_context", alice, session_id="0" * 32, user_id="bob")
    assert status == 403, err
    sid = fns.post("create_session", alice, {})[1]["session_id"]
    status, err = fns.post("append_message", alice, {"session_id": sid, "role": "assistant", "content": "forged"})
    assert status == 403, err


def test_a_backend_names_a_valid_user_and_only_where_it_may(google, fns):
    token = backend_token(google)
    for bad in ("", "../x", "a" * 200, 7, None, ["alice"]):
        status, err = fns.post("create_session", token, {"user_id": bad})
        assert status == 400 and err["error"]["details"]["field"] == "user_id", (bad, err)
    # not on the user's own data rights nor the admin's functions
    for fn in ("delete_my_data",):
        status, err = fns.post(fn, token, {"user_id": "alice"})
        assert status == 400 and err["error"]["details"]["field"] == "user_id", err
    status, err = fns.get("export_my_data", token, user_id="alice")
    assert status == 400 and err["error"]["details"]["field"] == "user_id", err
    assert fns.get("admin_report", token, user_id="alice")[0] == 400


def test_an_admins_erasure_still_names_the_user_it_erases(google, fns):
    """admin_erase_user's own field is user_id: it is the function's, not a backend's acting-for."""
    uid = "erased-" + uuid.uuid4().hex[:8]
    alice, admin = google.token(uid), google.token("the-admin", claims={"admin": True})
    sid = fns.post("create_session", alice, {})[1]["session_id"]
    status, receipt = fns.post("admin_erase_user", admin, {"user_id": uid})
    assert status == 200 and receipt["complete"] and receipt["erased"]["sessions"] == 1, receipt
    assert fns.get("get_context", alice, session_id=sid)[0] == 404
    assert fns.post("admin_erase_user", alice, {"user_id": "bob"})[0] == 403  # not an admin


def test_a_service_account_acts_only_for_a_user_and_only_ours_with_our_audience(google, fns):
    ok = sa_token(google)
    status, err = fns.post("create_session", ok, {})
    assert status == 400 and err["error"]["details"]["field"] == "user_id", err
    assert fns.get("admin_report", ok)[0] == 403
    assert fns.post("delete_my_data", ok, {})[0] == 403
    refused = {
        "another audience": sa_token(google, audience="https://elsewhere.example"),
        "an account not listed": sa_token(google, email="stranger@demo-chat-memory.iam.gserviceaccount.com"),
        "expired": sa_token(google, ttl_s=-120),
        "not a Google issuer": sa_token(google, iss="https://evil.example"),
        "email not verified": sa_token(google, claims={"email_verified": False}),
    }
    other = GoogleStandIn()  # another key under the same kid: a signature Google's certificate does not match
    other.kid = google.kid
    refused["another key"] = other.google_id_token(BACKEND_SA, AUDIENCE)
    for why, token in refused.items():
        status, err = fns.post("create_session", token, {"user_id": "alice"})
        assert status == 401 and err["error"]["code"] == "unauthenticated", (why, err)
    assert fns.post("create_session", ok, {"user_id": "alice"})[0] == 201


def test_service_account_tokens_are_refused_when_none_is_configured(google, fns, monkeypatch):
    monkeypatch.setenv("BACKEND_SERVICE_ACCOUNTS", "")
    edge.reset()
    status, err = Fns().post("create_session", sa_token(google), {"user_id": "alice"})
    assert status == 401, err
