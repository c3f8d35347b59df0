"""End-to-end fixtures on top of the shared harness (tests/conftest.py): the emulated
functions over HTTP (``functions_base_url``), real Auth emulator tokens
(``auth_emulator_host``), the Firestore emulator's REST API (``firestore_emulator``), and
the functions' own Redis (``stack_redis``) for outages.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

PROJECT = os.environ.get("GCLOUD_PROJECT", "demo-chat-memory")


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
def api(functions_base_url: str) -> Api:
    api = Api(functions_base_url)
    # The emulator starts a Python function's process on its first request: wait for one.
    deadline = time.time() + 90
    while True:
        try:
            if api.get("health").status_code == 200:
                return api
        except requests.RequestException:
            pass
        if time.time() > deadline:
            pytest.fail(f"the emulated health function at {functions_base_url} did not answer within 90 s")
        time.sleep(1)


@pytest.fixture
def new_user(auth_emulator_host: str):
    host = auth_emulator_host

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


@pytest.fixture
def firestore(firestore_emulator: str) -> Firestore:
    return Firestore(firestore_emulator)


class RedisOutage:
    """Take the functions' Redis away and bring it back on the same port.

    stop() first asks the server to SAVE a snapshot into its --dir, so start() brings it
    back with its data: an outage (maintenance, a network partition), not a data loss.
    """

    def __init__(self, srv: Any) -> None:
        self.srv = srv

    def stop(self) -> None:
        def cli(*cmd: str) -> list[str]:
            out = subprocess.run(
                ["redis-cli", "-p", str(self.srv.port), *cmd], capture_output=True, text=True, timeout=30, check=True
            ).stdout
            return out.split()

        assert cli("SAVE") == ["OK"]
        # The harness restarts the server with --dir data_dir: put the snapshot there
        # (``dir`` is a protected setting in Redis 7, so it cannot be changed live).
        src = Path(cli("CONFIG", "GET", "dir")[-1]) / cli("CONFIG", "GET", "dbfilename")[-1]
        dst = Path(self.srv.data_dir) / "dump.rdb"
        if src.resolve() != dst.resolve():
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst)
        self.srv.stop()
        assert not self.srv.is_up()

    def start(self) -> None:
        self.srv.start()


@pytest.fixture
def redis_outage(stack_redis: Any) -> RedisOutage:
    return RedisOutage(stack_redis)


@pytest.fixture
def core_env(monkeypatch) -> Iterator[None]:
    """In-process access to the same stores as the emulated functions (trigger, sweep)."""
    from shared import instance

    monkeypatch.setenv("GCLOUD_PROJECT", PROJECT)
    monkeypatch.delenv("FIRESTORE_ENABLED", raising=False)
    assert os.environ.get("REDIS_URL"), "REDIS_URL (the functions' Redis) must be set for in-process core calls"
    instance.reset()
    yield
    instance.reset()


def cmid() -> str:
    return uuid.uuid4().hex
