"""Clients of the running stack for the e2e and reliability tests: the emulated functions
over HTTP with real Auth-emulator users (``Api``), and the Firestore emulator's REST API
read as the admin (``Firestore``). The fixtures that hand them out are tests/conftest.py's.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import requests
import requests.adapters
import urllib3

HTTP_NOT_FOUND = 404


@dataclass
class User:
    uid: str
    token: str
    refresh_token: str = ""

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@dataclass
class Reply:
    status: int
    body: Any  # the JSON body, None if there is none
    latency_s: float
    text: str
    headers: Any  # case-insensitive (requests' CaseInsensitiveDict)

    @property
    def server_s(self) -> float | None:
        """The function's own time (its Server-Timing header), without the emulator's
        routing and the start of a new worker process."""
        _, _, dur = (self.headers.get("Server-Timing") or "").partition(";dur=")
        try:
            return float(dur) / 1000
        except ValueError:
            return None


PROXY_FAILURES: list[str] = []
_PROXY_FAILURES_LOCK = threading.Lock()


def _emulator_proxy_failure(status: int, body: Any) -> bool:
    """A 500 written by the Functions emulator's proxy (``{"code": "ECONNRESET"}``), not by a
    function: every answer of ours has the ``{"error": {...}}`` shape."""
    return (
        status == 500 and isinstance(body, dict) and "error" not in body and str(body.get("code", "")).startswith("E")
    )


# Node's HTTP servers (the Functions and Auth emulators) close a kept-alive connection after
# 5 s of silence (server.keepAliveTimeout). A request written on such a connection as the
# server closes it dies with ECONNRESET, with no answer, and is not safely retried (it may be
# a create). So a connection idle longer than this is closed, not reused: the next request
# opens a new one (loopback: microseconds). The bound sits well inside the server's 5 s.
IDLE_REUSE_S = 2.0


class _FreshPool(urllib3.HTTPConnectionPool):
    """A connection pool that never hands out a connection idle past IDLE_REUSE_S."""

    def _put_conn(self, conn: Any) -> None:
        if conn is not None:
            conn.cm_idle_since = time.monotonic()
        super()._put_conn(conn)

    def _get_conn(self, timeout: float | None = None) -> Any:
        conn = super()._get_conn(timeout)
        since = getattr(conn, "cm_idle_since", None)
        if since is not None and time.monotonic() - since > IDLE_REUSE_S:
            conn.close()  # it connects again when the request is sent
        return conn


class _FreshAdapter(requests.adapters.HTTPAdapter):
    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {**self.poolmanager.pool_classes_by_scheme, "http": _FreshPool}


def http_session() -> requests.Session:
    """A ``requests.Session`` that reuses a connection only while the server surely keeps it."""
    s = requests.Session()
    s.mount("http://", _FreshAdapter())
    return s


class Api:
    """The emulated functions over HTTP: one method per call of the contract, each returning
    a ``Reply``. One ``requests.Session`` per thread (``http_session``)."""

    def __init__(self, base_url: str, auth_host: str | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.auth_host = auth_host
        self._local = threading.local()

    @property
    def http(self) -> requests.Session:
        s = getattr(self._local, "session", None)
        if s is None:
            s = self._local.session = http_session()
        return s

    def url(self, fn: str) -> str:
        return f"{self.base_url}/{fn}"

    def new_user(self, *, backend: bool = True) -> User:
        """A new anonymous user of the Auth emulator, with a real ID token. ``backend``: it
        holds the chat backend claim (it may write assistant and system turns, as the
        chat backend of a deployment does); False: an end user (user turns only)."""
        if not self.auth_host:
            raise RuntimeError("no Auth emulator host (FIREBASE_AUTH_EMULATOR_HOST)")
        base = f"http://{self.auth_host}"
        r = self.http.post(
            f"{base}/identitytoolkit.googleapis.com/v1/accounts:signUp?key=any",
            json={"returnSecureToken": True},
            timeout=10,
        )
        r.raise_for_status()
        data = r.json()
        user = User(data["localId"], data["idToken"], data["refreshToken"])
        if backend:
            self.set_claims(user.uid, {"chat_backend": True})
            user.token = self.refreshed_token(user.refresh_token)
        return user

    def set_claims(self, uid: str, claims: dict[str, Any]) -> None:
        """Custom claims through the emulator's admin API (``Bearer owner``)."""
        project = os.environ.get("GCLOUD_PROJECT", "demo-chat-memory")
        r = self.http.post(
            f"http://{self.auth_host}/identitytoolkit.googleapis.com/v1/projects/{project}/accounts:update",
            json={"localId": uid, "customAttributes": json.dumps(claims)},
            headers={"Authorization": "Bearer owner"},
            timeout=10,
        )
        r.raise_for_status()

    def refreshed_token(self, refresh_token: str) -> str:
        """A new ID token (with the user's current custom claims)."""
        r = self.http.post(
            f"http://{self.auth_host}/securetoken.googleapis.com/v1/token?key=any",
            data={"grant_type": "refresh_token", "refresh_token": refresh_token},
            timeout=10,
        )
        r.raise_for_status()
        return str(r.json()["id_token"])

    def call(
        self,
        method: str,
        fn: str,
        *,
        user: User | None = None,
        json_body: Any = None,
        params: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        data: Any = None,
        timeout: float = 40.0,
    ) -> Reply:
        h = dict(user.headers if user else {})
        h.update(headers or {})
        t0 = time.perf_counter()
        r = self.http.request(
            method, self.url(fn), json=json_body, params=params, headers=h, data=data, timeout=timeout
        )
        latency = time.perf_counter() - t0
        try:
            body = r.json()
        except ValueError:
            body = None
        if _emulator_proxy_failure(r.status_code, body):
            # The emulator lost its socket to the worker (scripts/node_no_keepalive.cjs says
            # why that should not happen any more): counted apart, and a failure all the same.
            with _PROXY_FAILURES_LOCK:
                PROXY_FAILURES.append(fn)
        return Reply(r.status_code, body, latency, r.text, r.headers)

    def post(self, fn: str, body: Any = None, user: User | None = None, **kw: Any) -> Reply:
        return self.call("POST", fn, user=user, json_body=body, **kw)

    def get(self, fn: str, params: dict[str, Any] | None = None, user: User | None = None, **kw: Any) -> Reply:
        return self.call("GET", fn, user=user, params=params, **kw)

    # the contract, one helper per function
    def create(self, user: User, user_info: dict[str, Any] | None = None) -> Reply:
        return self.post("create_session", {"user_info": user_info or {"platform": "web"}}, user)

    def append(
        self,
        user: User,
        sid: str,
        role: str,
        content: str,
        metadata: dict[str, Any] | None = None,
        cmid: str | None = None,
    ) -> Reply:
        body: dict[str, Any] = {"session_id": sid, "role": role, "content": content}
        if metadata is not None:
            body["metadata"] = metadata
        if cmid is not None:
            body["client_message_id"] = cmid
        return self.post("append_message", body, user)

    def chat(self, user: User, sid: str, content: str, cmid: str | None = None) -> Reply:
        body: dict[str, Any] = {"session_id": sid, "content": content}
        if cmid is not None:
            body["client_message_id"] = cmid
        return self.post("chat", body, user)

    def context(self, user: User, sid: str, n: int = 8) -> Reply:
        return self.get("get_context", {"session_id": sid, "max_messages": n}, user)

    def history(self, user: User, sid: str, limit: int | None = None) -> Reply:
        params: dict[str, Any] = {"session_id": sid}
        if limit:
            params["limit"] = limit
        return self.get("get_history", params, user)

    def end(self, user: User, sid: str, agent_id: str | None = "agent-test") -> Reply:
        body: dict[str, Any] = {"session_id": sid}
        if agent_id:
            body["agent_id"] = agent_id
        return self.post("end_session", body, user)

    def new_session(self, user: User) -> str:
        r = self.create(user)
        assert r.status == 201, r.text
        return str(r.body["session_id"])

    def wait_until_up(self, timeout: float = 90.0) -> None:
        """The emulator starts a Python function's process on its first request: wait for one."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                if self.get("health").status == 200:  # noqa: PLR2004 - HTTP OK
                    return
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"the emulated health function at {self.base_url} did not answer in {timeout:.0f} s")
            time.sleep(1)


# -- the Firestore emulator's REST API ----------------------------------------------------------

_SCALARS: dict[str, Callable[[Any], Any]] = {
    "integerValue": int,
    "doubleValue": float,
    "nullValue": lambda _: None,
}


def decode_value(v: dict[str, Any]) -> Any:
    """One Firestore REST value as plain Python (timestamps and references stay strings)."""
    ((kind, raw),) = v.items()
    if kind == "arrayValue":
        return [decode_value(x) for x in raw.get("values", [])]
    if kind == "mapValue":
        return decode_fields(raw)
    return _SCALARS.get(kind, lambda x: x)(raw)


def decode_fields(document: dict[str, Any] | None) -> dict[str, Any]:
    """A REST document's (or map's) fields as a dict."""
    return {k: decode_value(v) for k, v in (document or {}).get("fields", {}).items()}


class Firestore:
    """The Firestore emulator's REST API as the admin (``Bearer owner`` bypasses rules)."""

    def __init__(self, host: str, project: str) -> None:
        self.base = f"http://{host}/v1/projects/{project}/databases/(default)/documents"

    def get(self, path: str) -> dict[str, Any] | None:
        r = requests.get(f"{self.base}/{path}", headers={"Authorization": "Bearer owner"}, timeout=10)
        if r.status_code == HTTP_NOT_FOUND:
            return None
        r.raise_for_status()
        return decode_fields(r.json())

    def list_documents(self, collection: str, page_size: int = 300) -> list[dict[str, Any]]:
        """A collection's documents (the first page: enough for a test's own few)."""
        r = requests.get(
            f"{self.base}/{collection}", params={"pageSize": page_size}, headers={"Authorization": "Bearer owner"},
            timeout=10,
        )  # fmt: skip
        r.raise_for_status()
        return [decode_fields(d) for d in r.json().get("documents", [])]

    def wait_for(self, path: str, pred: Callable[[dict[str, Any]], bool], timeout: float = 30) -> dict[str, Any]:
        deadline = time.time() + timeout
        doc = None
        while time.time() < deadline:
            doc = self.get(path)
            if doc is not None and pred(doc):
                return doc
            time.sleep(0.25)
        raise AssertionError(f"{path} did not reach the expected state in {timeout}s: {doc}")
