"""Reliability suite (issue 5): the running functions under the Emulator Suite, with the
stack's real redis-server and Firestore emulator made to fail, plus fuzzing.

Every scenario records its figures in ``REPORT``; they are printed at the end of the
session (whatever ``-s`` says) and written to ``artifacts/reliability.json``.

Size: ``CM_RELIABILITY_SCALE`` (default 1, the CI size) multiplies sessions, messages and
fuzzing examples.
"""

from __future__ import annotations

import base64
import json
import math
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests import harness
from tests.clients import PROXY_FAILURES, Api, User

ROOT = Path(__file__).resolve().parents[2]
SCALE = float(os.environ.get("CM_RELIABILITY_SCALE", "1") or 1)
ARTIFACT = ROOT / "artifacts" / "reliability.json"


def scaled(n: int, minimum: int = 1) -> int:
    return max(minimum, round(n * SCALE))


# -- the report ---------------------------------------------------------------------------


@dataclass
class Figure:
    scenario: str
    name: str
    value: Any
    target: str = ""
    ok: bool | None = None  # None: informational


@dataclass
class Report:
    figures: list[Figure] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, scenario: str, name: str, value: Any, target: str = "", ok: bool | None = None) -> None:
        with self.lock:
            self.figures = [f for f in self.figures if (f.scenario, f.name) != (scenario, name)]
            self.figures.append(Figure(scenario, name, value, target, ok))


REPORT = Report()


@pytest.fixture(scope="session")
def report() -> Report:
    return REPORT


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: Any) -> None:
    if not REPORT.figures:
        return
    REPORT.add(
        "emulator",
        "answers the emulator's proxy wrote (500 ECONNRESET: lost its worker socket)",
        sorted(PROXY_FAILURES) or 0,
        "0",
        not PROXY_FAILURES,
    )
    tr = terminalreporter
    tr.write_sep("=", "chat-memory reliability figures")
    width = max(len(f"{f.scenario}: {f.name}") for f in REPORT.figures)
    for f in REPORT.figures:
        mark = "" if f.ok is None else ("  ok" if f.ok else "  MISSED")
        target = f"  (target {f.target})" if f.target else ""
        tr.write_line(f"{f'{f.scenario}: {f.name}':<{width}}  {f.value}{target}{mark}")
    ARTIFACT.parent.mkdir(parents=True, exist_ok=True)
    ARTIFACT.write_text(
        json.dumps(
            {
                "scale": SCALE,
                "generated_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "command": os.environ.get("CM_RELIABILITY_COMMAND", "make reliability"),
                "figures": [f.__dict__ for f in REPORT.figures],
            },
            indent=2,
            default=str,
        )
        + "\n"
    )
    tr.write_line(f"written to {ARTIFACT.relative_to(ROOT)}")


# -- the HTTP client (tests/clients.py; the ``api`` fixture is tests/conftest.py's) -----------


# The functions a scenario drives in parallel, each needing that many warm workers.
_WARMED = ("append_message", "get_context")


def warm_up(api: Api, parallel: int) -> float:
    """Start ``parallel`` workers of each function a scenario drives in parallel, so cold
    starts (2-3 s each under the Functions emulator, one Python worker per concurrent
    request) do not count as latency. One pass of the conversation (each function once per
    user) does not guarantee it: the threads drift apart and reuse each other's workers.
    So each function then gets bursts of ``parallel`` requests released together, until
    the emulator holds that many of its workers (counted in /proc)."""
    from concurrent.futures import ThreadPoolExecutor

    t0 = time.perf_counter()
    users = [api.new_user() for _ in range(parallel)]
    sids: dict[str, str] = {}

    def one(u: User) -> None:
        sid = api.new_session(u)
        api.append(u, sid, "user", "warm up")
        api.context(u, sid)
        api.history(u, sid)
        api.end(u, sid)
        api.call("GET", "health")
        sids[u.uid] = api.new_session(u)  # for the bursts below

    with ThreadPoolExecutor(parallel) as ex:
        list(ex.map(one, users))
    for fn in _WARMED:
        for _ in range(8):
            if emulator_workers().get(fn, 0) >= parallel:
                break
            gate = threading.Barrier(parallel)

            def burst(u: User, fn: str = fn, gate: threading.Barrier = gate) -> None:
                gate.wait()
                if fn == "append_message":
                    api.append(u, sids[u.uid], "user", "warm up")
                else:
                    api.context(u, sids[u.uid])

            with ThreadPoolExecutor(parallel) as ex:
                list(ex.map(burst, users))
    with ThreadPoolExecutor(parallel) as ex:
        list(ex.map(lambda u: api.end(u, sids[u.uid]), users))
    return time.perf_counter() - t0


_warm: dict[int, float] = {}


@pytest.fixture(scope="session")
def warm(api: Api) -> Any:
    def ensure(parallel: int) -> float:
        if _warm.get(parallel) is None and not any(p >= parallel for p in _warm):
            _warm[parallel] = warm_up(api, parallel)
        return _warm.get(parallel, 0.0)

    return ensure


# -- Firestore emulator, read from the test process ---------------------------------------------


@pytest.fixture(scope="session")
def fsdb() -> Any:
    """A Firestore client on the stack's emulator (reads for assertions)."""
    host = os.environ.get("FIRESTORE_EMULATOR_HOST")
    if not host:
        pytest.fail("FIRESTORE_EMULATOR_HOST is not set: run with `make reliability` / `make test`")
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import firestore

    return firestore.Client(
        project=os.environ.get("GCLOUD_PROJECT") or harness.PROJECT_ID, credentials=AnonymousCredentials()
    )


def doc(db: Any, path: str) -> dict[str, Any] | None:
    snap = db.document(path).get(timeout=10)
    return snap.to_dict() if snap.exists else None


def kb_usage(db: Any, entry_doc_id: str) -> dict[str, int]:
    """A KB entry's usage as the counting wrote it: its shards (and its own document) summed."""
    ref = db.collection("kb_usage").document(entry_doc_id)
    docs = [s.to_dict() or {} for s in ref.collection("shards").stream(timeout=10)]
    docs += [doc(db, f"kb_usage/{entry_doc_id}") or {}]
    return {k: sum(int(d.get(k) or 0) for d in docs) for k in ("use_count", "session_count")}


def poll(fn: Any, timeout: float, interval: float = 0.25) -> Any:
    """Call ``fn`` until it returns a truthy value or ``timeout`` passes; returns the last value."""
    deadline = time.monotonic() + timeout
    value = fn()
    while not value and time.monotonic() < deadline:
        time.sleep(interval)
        value = fn()
    return value


# -- tokens ------------------------------------------------------------------------------------


def b64(data: dict[str, Any] | bytes) -> str:
    raw = data if isinstance(data, bytes) else json.dumps(data, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def jwt_claims(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    return dict(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))))


def forge(claims: dict[str, Any], header: dict[str, Any] | None = None, signature: str = "") -> str:
    return f"{b64(header or {'alg': 'none', 'typ': 'JWT'})}.{b64(claims)}.{signature}"


def emulator_workers() -> dict[str, int]:
    """Python worker processes of the emulated functions, per function (FUNCTION_TARGET).

    The Functions emulator runs one request per worker process and starts a new one (2-3 s
    of imports) whenever a request finds every worker of its function busy: a latency figure
    taken while workers are being started measures the emulator, not the functions.
    """
    bundle = os.environ.get("CM_BUNDLE", "")
    counts: dict[str, int] = {}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            argv = (proc / "cmdline").read_bytes().decode(errors="replace").split("\0")
            # the worker itself, not the shell the emulator starts it from
            if not any(a.endswith("/functions-framework") for a in argv[1:2]):
                continue
            if bundle and not os.readlink(proc / "cwd").startswith(bundle):
                continue
            env = dict(
                kv.split("=", 1)
                for kv in (proc / "environ").read_bytes().decode(errors="replace").split("\0")
                if "=" in kv
            )
        except OSError:
            continue  # exited meanwhile
        target = env.get("FUNCTION_TARGET", "?")
        counts[target] = counts.get(target, 0) + 1
    return counts


def p99(values: list[float]) -> float:
    if not values:
        return 0.0
    s = sorted(values)
    return s[min(len(s) - 1, math.ceil(0.99 * len(s)) - 1)]


@pytest.fixture(scope="module")
def stack_redis_module() -> Iterator[harness.RedisServer]:
    """The stack's Redis, restarted with AOF (appendfsync always) for the duration of a test,
    as Memorystore with persistence: a kill and restart keeps what Redis had accepted.
    Put back as the stack runs it afterwards."""
    stack_redis = harness.stack_redis()
    if stack_redis is None:
        pytest.fail("CM_STACK_REDIS_PORT is not set: run with `make reliability` / `make test`")
    assert stack_redis is not None
    was_persistent = stack_redis.persistent
    if not was_persistent:
        stack_redis.stop()
        stack_redis.persistent = True
        stack_redis.start()
        harness.settle_after_redis_restart()
    yield stack_redis
    if not was_persistent:
        if stack_redis.is_up():
            stack_redis.stop()
        stack_redis.persistent = False
    if not stack_redis.is_up():
        stack_redis.start()
    harness.settle_after_redis_restart()


def pytest_configure(config: Any) -> None:
    config.addinivalue_line(
        "markers", "reliability: issue 5's fault, load, duplicate-event and hostile-input scenarios"
    )
