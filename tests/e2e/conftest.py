"""End-to-end fixtures: the emulated functions over HTTP, real Auth emulator tokens, the
Firestore emulator's REST API, and control of the Redis the functions use.

Where the stack comes from: the environment that ``firebase emulators:exec`` (or the infra
harness) sets — FUNCTIONS_EMULATOR_HOST, FIREBASE_AUTH_EMULATOR_HOST,
FIRESTORE_EMULATOR_HOST, and REDIS_URL (the functions' Redis). E2E_FUNCTIONS_URL overrides
the functions' base URL. Without them these tests are skipped, not faked.

``redis_control`` stops and restarts that Redis (same port, empty, as after a failover).
The infra harness may override this fixture with its own handle.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

import pytest
import requests

PROJECT = os.environ.get("GCLOUD_PROJECT", "demo-chat-memory")
REGION = "us-central1"


def _base_url() -> str | None:
    if url := os.environ.get("E2E_FUNCTIONS_URL"):
        return url.rstrip("/")
    if host := os.environ.get("FUNCTIONS_EMULATOR_HOST"):
        host = host.removeprefix("http://")
        return f"http://{host}/{PROJECT}/{REGION}"
    return None


@dataclass
class User:
    uid: str
    token: str

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


class Api:
    """Thin HTTP client of the contract: one method per call, returns the response."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.s = requests.Session()

    def url(self, name: str) -> str:
        return f"{self.base}/{name}"

    def post(self, name: str, body: Any = None, user: User | None = None, **kw: Any) -> requests.Response:
        headers = {**(user.auth if user else {}), **kw.pop("headers", {})}
        return self.s.post(self.url(name), json=body, headers=headers, timeout=30, **kw)

    def get(self, name: str, params: dict[str, Any] | None = None, user: User | None = None, **kw: Any):
        headers = {**(user.auth if user else {}), **kw.pop("headers", {})}
        return self.s.get(self.url(name), params=params, headers=headers, timeout=30, **kw)

    def create(self, user: User, **user_info: Any) -> str:
        r = self.post("create_session", {"user_info": user_info or {"platform": "web"}}, user)
        assert r.status_code == 201, r.text
        return r.json()["session_id"]

    def append(self, user: User, sid: str, content: str, role: str = "user", **extra: Any) -> requests.Response:
        return self.post("append_message", {"session_id": sid, "role": role, "content": content, **extra}, user)


@pytest.fixture(scope="session")
def api() -> Api:
    base = _base_url()
    if not base:
        pytest.skip("no emulated functions (FUNCTIONS_EMULATOR_HOST or E2E_FUNCTIONS_URL)")
    api = Api(base)
    # The emulator loads Python functions lazily: wait until health answers.
    deadline = time.time() + 90
    while True:
        try:
            if api.get("health").status_code == 200:
                return api
        except requests.RequestException:
            pass
        if time.time() > deadline:
            pytest.fail("the emulated health function did not answer within 90 s")
        time.sleep(1)


@pytest.fixture
def new_user():
    host = os.environ.get("FIREBASE_AUTH_EMULATOR_HOST")
    if not host:
        pytest.skip("no Auth emulator (FIREBASE_AUTH_EMULATOR_HOST)")

    def make() -> User:
        r = requests.post(
            f"http://{host}/identitytoolkit.googleapis.com/v1/accounts:signUp?key=any",
            json={"returnSecureToken": True},
            timeout=10,
        )
        r.raise_for_status()
        body = r.json()
        return User(uid=body["localId"], token=body["idToken"])

    return make


@pytest.fixture
def user(new_user) -> User:
    return new_user()


class Firestore:
    """The Firestore emulator's REST API as the admin (``Bearer owner`` bypasses rules)."""

    def __init__(self, host: str) -> None:
        self.base = f"http://{host}/v1/projects/{PROJECT}/databases/(default)/documents"

    def get(self, path: str) -> dict[str, Any] | None:
        r = requests.get(f"{self.base}/{path}", headers={"Authorization": "Bearer owner"}, timeout=10)
        if r.status_code == 404:
            return None
        r.raise_for_status()
        return {k: _value(v) for k, v in r.json().get("fields", {}).items()}

    def wait_for(self, path: str, pred, timeout: float = 30) -> dict[str, Any]:
        deadline = time.time() + timeout
        doc = None
        while time.time() < deadline:
            doc = self.get(path)
            if doc is not None and pred(doc):
                return doc
            time.sleep(0.25)
        raise AssertionError(f"{path} did not reach the expected state in {timeout}s: {doc}")


def _value(v: dict[str, Any]) -> Any:
    ((kind, raw),) = v.items()
    if kind == "integerValue":
        return int(raw)
    if kind == "doubleValue":
        return float(raw)
    if kind == "arrayValue":
        return [_value(x) for x in raw.get("values", [])]
    if kind == "mapValue":
        return {k: _value(x) for k, x in raw.get("fields", {}).items()}
    if kind == "nullValue":
        return None
    return raw


@pytest.fixture(scope="session")
def firestore() -> Firestore:
    host = os.environ.get("FIRESTORE_EMULATOR_HOST")
    if not host:
        pytest.skip("no Firestore emulator (FIRESTORE_EMULATOR_HOST)")
    return Firestore(host)


class RedisControl:
    """Stop and restart the functions' Redis on its port: an outage, not a data loss.

    stop() saves a snapshot into the server's own dir and shuts it down; start() brings a
    server back on the same port from that snapshot, as a Memorystore instance coming
    back after maintenance would.
    """

    def __init__(self, url: str) -> None:
        u = urlparse(url)
        self.host, self.port = u.hostname or "127.0.0.1", u.port or 6379
        self.proc: subprocess.Popen[bytes] | None = None
        self.dir: str | None = None
        self.dbfilename = "dump.rdb"

    def _cli(self, *args: str) -> str:
        r = subprocess.run(
            ["redis-cli", "-h", self.host, "-p", str(self.port), *args],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
        return r.stdout

    def stop(self) -> None:
        self.dir = self._cli("config", "get", "dir").split()[-1]
        self.dbfilename = self._cli("config", "get", "dbfilename").split()[-1]
        self._cli("shutdown", "save")
        if self.proc is not None:
            self.proc.wait(timeout=10)
            self.proc = None
        self._wait(up=False)

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [
                shutil.which("redis-server") or "redis-server",
                "--port",
                str(self.port),
                "--bind",
                self.host,
                "--save",
                "",
                "--appendonly",
                "no",
                "--dbfilename",
                self.dbfilename,
                *(["--dir", self.dir] if self.dir else []),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        self._wait(up=True)

    def _wait(self, up: bool) -> None:
        deadline = time.time() + 10
        while time.time() < deadline:
            r = subprocess.run(
                ["redis-cli", "-h", self.host, "-p", str(self.port), "ping"],
                capture_output=True,
                text=True,
                timeout=5,
                check=False,
            )
            if (r.stdout.strip() == "PONG") == up:
                return
            time.sleep(0.1)
        raise AssertionError(f"redis on {self.port} did not go {'up' if up else 'down'}")


@pytest.fixture
def redis_control() -> Iterator[RedisControl]:
    url = os.environ.get("REDIS_URL")
    if not url:
        pytest.skip("REDIS_URL (the functions' Redis) is not set")
    ctl = RedisControl(url)
    yield ctl
    # A test that failed between stop() and start() must not leave the stack without Redis.
    try:
        ctl._wait(up=True)
    except AssertionError:
        ctl.start()


@pytest.fixture
def core_env(monkeypatch) -> Iterator[None]:
    """In-process access to the same stores as the emulated functions (trigger, sweep)."""
    from shared.session_manager import reset_manager
    from shared.settings import reset_settings
    from shared.store import firestore_client, redis_client

    monkeypatch.setenv("GCLOUD_PROJECT", PROJECT)
    monkeypatch.delenv("FIRESTORE_ENABLED", raising=False)
    for reset in (reset_settings, reset_manager, redis_client.reset_client, firestore_client.reset_client):
        reset()
    yield
    for reset in (reset_settings, reset_manager, redis_client.reset_client, firestore_client.reset_client):
        reset()


def cmid() -> str:
    return uuid.uuid4().hex
