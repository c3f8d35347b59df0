"""Scenario 5: hostile input.

- Schema-driven fuzzing (schemathesis) of every HTTP function from ``openapi.yaml`` against
  the running functions, with real tokens: never a 5xx, never a stack trace in a body, every
  answer conforms to the document (status, content type, schema).
- Property-based fuzzing (hypothesis) of the store API, ``SessionManager`` on a real
  redis-server and the Firestore emulator: anything either succeeds or raises a
  ``ChatMemoryError``; session ids that try key or path injection are refused and never
  become a Redis key (``SCAN``) or a Firestore document.
- Size limits over HTTP: 413 above each limit, accepted at it.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import checks as sc

from tests import harness
from tests.clients import Api, User
from tests.reliability.conftest import REPORT, SCALE, Report

pytestmark = [pytest.mark.reliability]

SCENARIO = "hostile input"
ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = max(5, round(25 * SCALE))
TRACE = re.compile(r"Traceback|File \"|line \d+, in|Exception:|Error:", re.I)

schema = schemathesis.openapi.from_path(ROOT / "openapi.yaml")


class Fuzz:
    """Tokens rotate so that fuzzing does not trip the per-user rate limit; half of the
    generated session ids are swapped for a real session of the current user, so that the
    handlers behind the 404 are reached too."""

    per_user = 60

    def __init__(self) -> None:
        self.api: Api | None = None
        self.lock = threading.Lock()
        self.count = itertools.count()
        self.user: User | None = None
        self.sid = ""
        self.requests = 0
        self.statuses: dict[int, int] = {}
        self.traces: list[str] = []

    def next(self) -> tuple[User, str, int]:
        assert self.api is not None
        with self.lock:
            n = next(self.count)
            if self.user is None or n % self.per_user == 0:
                self.user = self.api.new_user()
                self.sid = self.api.new_session(self.user)
            return self.user, self.sid, n


FUZZ = Fuzz()


@pytest.fixture(scope="module")
def fuzz(api: Api) -> Iterator[Fuzz]:
    FUZZ.api = api
    yield FUZZ
    REPORT.add(SCENARIO, "schemathesis requests", FUZZ.requests)
    REPORT.add(SCENARIO, "statuses seen", dict(sorted(FUZZ.statuses.items())))
    REPORT.add(
        SCENARIO,
        "5xx answers",
        sum(v for k, v in FUZZ.statuses.items() if k >= 500),
        "0",
        not any(k >= 500 for k in FUZZ.statuses),
    )
    REPORT.add(SCENARIO, "bodies with a stack trace", len(FUZZ.traces), "0", not FUZZ.traces)


@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)
def test_schemathesis(case: Any, fuzz: Fuzz, functions_base_url: str) -> None:
    user, sid, n = fuzz.next()
    if n % 2 == 0:
        if isinstance(case.body, dict) and "session_id" in case.body:
            case.body["session_id"] = sid
        if isinstance(case.query, dict) and "session_id" in case.query:
            case.query["session_id"] = sid
    headers = {} if case.operation.path == "/health" else {"Authorization": f"Bearer {user.token}"}
    response = case.call(base_url=functions_base_url, headers=headers, timeout=30)
    with fuzz.lock:
        fuzz.requests += 1
        fuzz.statuses[response.status_code] = fuzz.statuses.get(response.status_code, 0) + 1
        if TRACE.search(response.text or ""):
            fuzz.traces.append(f"{case.operation.label} {response.status_code}: {response.text[:200]}")
    assert not TRACE.search(response.text or ""), response.text[:500]
    case.validate_response(
        response,
        checks=[
            sc.not_a_server_error,
            sc.status_code_conformance,
            sc.content_type_conformance,
            sc.response_schema_conformance,
        ],
    )


# -- the store API under hypothesis ----------------------------------------------------------

INJECTIONS = [
    "",
    " ",
    "*",
    "..",
    "../sessions",
    "a/b",
    "{x}",
    "}{",
    "cm:{x}:meta",
    "x\r\nFLUSHALL",
    "%2e%2e",
    "0" * 31,
    "0" * 33,
    "A" * 32,
    "g" * 32,
    "0" * 32 + "\n",
    "0" * 32 + "}",
    "{" + "0" * 30 + "}",
    "0" * 16 + "/" + "0" * 15,
    "sessions/" + "0" * 32,
    "\x00" * 32,
    "０" * 32,
]
session_ids = st.one_of(
    st.sampled_from(INJECTIONS), st.text(max_size=80), st.from_regex(r"[0-9a-f]{32}", fullmatch=True)
)
json_leaf = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), st.text(max_size=40))
json_any = st.recursive(
    json_leaf,
    lambda c: st.one_of(st.lists(c, max_size=4), st.dictionaries(st.text(max_size=10), c, max_size=4)),
    max_leaves=12,
)
anything = st.one_of(json_any, st.binary(max_size=20), st.tuples(st.integers()))
KEY_RE = re.compile(
    r"^cm:(\{[0-9a-f]{32}\}:(meta|log|sum|end)|rl:\{[A-Za-z0-9_.:@-]{1,138}\}:\d+"
    r"|user:\{[A-Za-z0-9_.:@-]{1,128}\}:sessions)$"
)


@pytest.fixture(scope="module")
def store(fsdb: Any) -> Iterator[Any]:
    from shared.core.manager import SessionManager
    from shared.settings import Settings
    from shared.store.firestore.layer import FirestoreLayer
    from shared.store.redis.layer import RedisLayer

    srv = harness.RedisServer().start()
    st_ = Settings(
        redis_url=srv.url,
        redis_breaker_cooldown_s=0.2,
        gcp_project=os.environ.get("GCLOUD_PROJECT", harness.PROJECT_ID),
    )
    manager = SessionManager(st_, redis=RedisLayer(st_), firestore=FirestoreLayer(st_))
    uid = "fuzz-" + uuid.uuid4().hex[:8]
    real = manager.create_session({"platform": "fuzz"}, user_id=uid).session_id
    yield manager, srv, uid, real
    srv.cleanup()


STORE_CALLS = {"ok": 0, "refused": 0}


def _call(fn: Any, *args: Any, **kwargs: Any) -> None:
    from shared.errors import ChatMemoryError

    try:
        fn(*args, **kwargs)
        STORE_CALLS["ok"] += 1
    except ChatMemoryError:
        STORE_CALLS["refused"] += 1


@settings(
    max_examples=max(30, round(150 * SCALE)), deadline=None, database=None, suppress_health_check=list(HealthCheck)
)
@given(
    sid=session_ids,
    role=st.one_of(st.sampled_from(["user", "assistant", "system"]), anything),
    content=st.one_of(st.text(max_size=200), anything),
    metadata=st.one_of(st.none(), json_any, anything),
    cmid=st.one_of(st.none(), st.text(max_size=140), anything),
    n=st.one_of(st.none(), st.integers(), anything),
    user_info=st.one_of(st.none(), json_any, anything),
    use_real=st.booleans(),
)
def test_store_api_never_raises_anything_else(
    store: Any, sid: Any, role: Any, content: Any, metadata: Any, cmid: Any, n: Any, user_info: Any, use_real: bool
) -> None:
    manager, _, uid, real = store
    target = real if use_real else sid
    _call(manager.add_message, target, role, content, metadata, client_message_id=cmid, user_id=uid)
    _call(manager.get_context_for_llm, target, n, user_id=uid)
    _call(manager.get_context_for_llm, target, token_budget=n, user_id=uid)
    _call(manager.get_history, target, n, user_id=uid)
    _call(manager.get_session, target, user_id=uid)
    _call(manager.create_session, user_info, user_id=uid if use_real else sid)
    if not use_real:
        _call(manager.end_session_with_analytics, sid, agent_id=cmid, reason=role, user_id=uid)


def feed_injections(manager: Any, uid: str, real: str) -> None:
    """Every injection in every place the store takes an id or a key part: as the session,
    as the user (owner, rate-limit and per-user keys), as the idempotency key, and in an
    end's agent and reason."""
    for bad in INJECTIONS:
        _call(manager.create_session, {"platform": bad}, user_id=bad)
        _call(manager.add_message, bad, "user", bad, client_message_id=bad, user_id=uid)
        _call(manager.add_message, real, "user", bad, {bad: bad}, client_message_id=bad, user_id=uid)
        _call(manager.add_message, real, "user", bad, user_id=bad)
        _call(manager.get_context_for_llm, bad, user_id=uid)
        _call(manager.get_history, bad, user_id=bad)
        _call(manager.get_session, bad, user_id=uid)
        _call(manager.end_session_with_analytics, bad, agent_id=bad, reason=bad, user_id=uid)


def test_no_injected_key_or_document(store: Any, fsdb: Any, report: Report) -> None:
    """Every Redis key has the strict shape, and every session document id is 32 hex
    characters: after the injection list of its own (so it holds when run alone), and
    after the property test when the module runs whole."""
    manager, srv, uid, real = store
    feed_injections(manager, uid, real)
    import redis

    client = redis.Redis.from_url(srv.url, decode_responses=True)
    keys = list(client.scan_iter(count=1000))
    bad = [k for k in keys if not KEY_RE.fullmatch(k)]
    injected = [k for k in keys for i in INJECTIONS if i and i not in ("..",) and i in k and not KEY_RE.fullmatch(k)]
    docs = [d.id for d in fsdb.collection("sessions").list_documents(page_size=500)]
    bad_docs = [d for d in docs if not re.fullmatch(r"[0-9a-f]{32}", d)]
    report.add(
        SCENARIO,
        "store API calls (hypothesis and the injection list): succeeded / refused with ChatMemoryError",
        f"{STORE_CALLS['ok']} / {STORE_CALLS['refused']}",
    )
    report.add(SCENARIO, "Redis keys outside the strict shape", len(bad), "0", not bad)
    report.add(SCENARIO, "session documents with a foreign id", len(bad_docs), "0", not bad_docs)
    assert keys, "the fuzzed store wrote nothing at all"
    assert not bad, bad[:10]
    assert not injected, injected[:10]
    assert not bad_docs, bad_docs[:10]


# -- size limits over HTTP ------------------------------------------------------------------------


def test_size_limits(api: Api, report: Report) -> None:
    user = api.new_user()
    sid = api.new_session(user)
    cases = [
        (
            "content at 32 KiB (UTF-8, 2-byte chars)",
            api.call(
                "POST",
                "append_message",
                user=user,
                headers={"Content-Type": "application/json"},
                data=json.dumps(
                    {"session_id": sid, "role": "user", "content": "é" * 16384}, ensure_ascii=False
                ).encode(),
            ),
            201,
        ),
        (
            "content 32 KiB + 1 byte (UTF-8)",
            api.call(
                "POST",
                "append_message",
                user=user,
                headers={"Content-Type": "application/json"},
                data=json.dumps(
                    {"session_id": sid, "role": "user", "content": "é" * 16384 + "a"}, ensure_ascii=False
                ).encode(),
            ),
            413,
        ),
        ("content 32 KiB + 1", api.append(user, sid, "user", "a" * 32769), 413),
        ("metadata over 8 KiB", api.append(user, sid, "assistant", "x", {"blob": "a" * 8200}), 413),
        ("user_info over 4 KiB", api.create(user, {"blob": "a" * 4200}), 413),
        (
            "body over 64 KiB",
            api.call(
                "POST",
                "append_message",
                user=user,
                data=b"{" + b" " * 70000 + b"}",
                headers={"Content-Type": "application/json"},
            ),
            413,
        ),
        (
            "chunked body over 64 KiB",
            api.call(
                "POST",
                "append_message",
                user=user,
                data=iter([b'{"session_id": "' + b"a" * 40000, b"b" * 40000 + b'"}']),
                headers={"Content-Type": "application/json"},
            ),
            413,
        ),
    ]
    wrong = {name: (r.status, r.text[:120]) for name, r, want in cases if r.status != want}
    report.add(SCENARIO, "size limits not enforced as documented", len(wrong), "0", not wrong)
    assert not wrong, wrong


# -- values a layer cannot store ---------------------------------------------------------------------


def test_values_a_layer_cannot_store_get_400_naming_the_field(api: Api, report: Report) -> None:
    user = api.new_user()
    sid = api.new_session(user)
    api.append(user, sid, "user", "question?")
    raw = {  # JSON text as sent: 1e999 parses to infinity, the integer to 400 digits
        "metadata.confidence": '{"confidence": 1e999}',
        "metadata.n": '{"n": ' + "9" * 400 + "}",
        "metadata.__x__": '{"__x__": 1}',
        "metadata.sources[0]": '{"sources": [["a"]]}',
        'metadata.a[""]': '{"a": {"": 1}}',
        "metadata.d" + ".n" * 9: '{"d": ' + '{"n": ' * 11 + "1" + "}" * 11 + "}",
    }
    wrong = {}
    for field, metadata in raw.items():
        body = f'{{"session_id": "{sid}", "role": "assistant", "content": "answer", "metadata": {metadata}}}'
        r = api.call(
            "POST", "append_message", user=user, headers={"Content-Type": "application/json"}, data=body.encode()
        )
        err = (r.body or {}).get("error", {}) if isinstance(r.body, dict) else {}
        if (r.status, err.get("code"), (err.get("details") or {}).get("field")) != (400, "invalid_argument", field):
            wrong[field] = (r.status, r.text[:200])
    r = api.create(user, {"__x__": "v", "platform": "web"})
    if r.status != 400 or (r.body["error"].get("details") or {}).get("field") != "user_info.__x__":
        wrong["user_info.__x__"] = (r.status, r.text[:200])
    # the session still reads and ends, with nothing of the refused appends in it
    hist = api.call("GET", "get_history", user=user, params={"session_id": sid})
    end = api.end(user, sid)
    report.add(SCENARIO, "unstorable values not refused with 400 naming the field", len(wrong), "0", not wrong)
    assert not wrong, wrong
    assert hist.status == 200 and [m["role"] for m in hist.body["messages"]] == ["user"]
    assert end.status == 200 and end.body["message_count"] == 1
