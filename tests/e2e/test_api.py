"""The HTTP contract end to end: the Functions emulator running functions/main.py, real
Auth emulator tokens, the Firestore emulator and a real redis-server.

Every response checked here is also validated against openapi.yaml (``contract``), so the
document and the running functions cannot drift apart unnoticed.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Any

import jsonschema_rs
import pytest
import yaml

from shared.settings import Settings
from shared.store.firestore.docs import kb_doc_id
from shared.store.firestore.rollups import shard_of
from tests.clients import Api, Reply, User
from tests.e2e.conftest import cmid
from tests.harness import settle_after_redis_restart

SPEC = yaml.safe_load((Path(__file__).resolve().parents[2] / "openapi.yaml").read_text())
GOOD_SID = "0123456789abcdef0123456789abcdef"


def contract(resp: Reply, op: str, status: int) -> dict[str, Any]:
    """Assert the status and validate the body against the spec's schema for it."""
    assert resp.status == status, f"{op}: {resp.status} {resp.text[:500]}"
    path = SPEC["paths"][f"/{op}"]
    method = next(iter(path))
    response = path[method]["responses"][str(status)]
    if "$ref" in response:
        response = SPEC["components"]["responses"][response["$ref"].rsplit("/", 1)[1]]
    schema = {**response["content"]["application/json"]["schema"], "components": SPEC["components"]}
    body = resp.body
    assert body is not None, f"{op}: not JSON: {resp.text[:500]}"
    jsonschema_rs.validator_for(schema).validate(body)
    for header in response.get("headers", {}):
        assert header in resp.headers, f"{op} {status} lacks {header}"
    return body


def test_spec_lists_every_function():
    assert set(SPEC["paths"]) == {
        "/create_session",
        "/append_message",
        "/get_context",
        "/get_history",
        "/end_session",
        "/get_user_stats",
        "/list_memories",
        "/search_memories",
        "/delete_memory",
        "/mcp",
        "/list_sessions",
        "/get_state",
        "/update_state",
        "/health",
        "/chat",
        "/admin_report",
        "/admin_low_confidence",
        "/admin_session",
        "/export_my_data",
        "/delete_session",
        "/delete_my_data",
        "/admin_erase_user",
    }


# -- the table, row by row ---------------------------------------------------------------------


def test_health(api: Api):
    body = contract(api.get("health"), "health", 200)
    assert body["status"] == "ok"
    assert body["layers"]["redis"]["status"] == "up" and body["layers"]["firestore"]["status"] == "up"


def test_conversation_round_trip(api: Api, user: User, firestore):
    r = api.post("create_session", {"user_info": {"platform": "web", "locale": "fr"}}, user)
    created = contract(r, "create_session", 201)
    assert created["user_id"] == user.uid and created["storage"] == "redis"
    sid = created["session_id"]

    body = contract(api.append(user, sid, "user", "What is the refund policy?"), "append_message", 201)
    assert body == {
        "session_id": sid,
        "message_count": 1,
        "summary_updated": False,
        "storage": "redis",
        "durable": True,
    }
    source = f"kb/refunds-{cmid()}"
    meta = {"sources": [source, "kb/terms"], "confidence": 0.9, "collection": "help"}
    body = contract(api.append(user, sid, "assistant", "30 days, full refund.", meta), "append_message", 201)
    assert body["message_count"] == 2

    ctx = contract(api.get("get_context", {"session_id": sid}, user), "get_context", 200)
    assert [m["content"] for m in ctx["messages"]] == ["What is the refund policy?", "30 days, full refund."]
    assert ctx["messages"][1]["metadata"]["sources"] == [source, "kb/terms"]
    assert "refund" in ctx["formatted_context"] and ctx["storage"] == "redis"

    one = contract(api.get("get_context", {"session_id": sid, "max_messages": 1}, user), "get_context", 200)
    assert [m["role"] for m in one["messages"]] == ["assistant"]

    hist = contract(api.get("get_history", {"session_id": sid, "limit": 10}, user), "get_history", 200)
    assert len(hist["messages"]) == 2 and hist["messages"][0]["role"] == "user"

    end = contract(api.post("end_session", {"session_id": sid, "agent_id": "agent-7"}, user), "end_session", 200)
    assert end["status"] == "ended" and end["message_count"] == 2 and end["queries_recorded"] == 1
    assert end["summary"] and end["summary"]["message_count"] == 2

    # The session document, as the core wrote it once at the end.
    doc = firestore.get(f"sessions/{sid}")
    assert doc["status"] == "ended" and doc["owner"] == user.uid and doc["agent_id"] == "agent-7"

    # The trigger fires for real on the end: user stats and KB usage appear.
    stats = firestore.wait_for(f"users/{user.uid}", lambda d: d.get("total_sessions") == 1)
    assert stats["total_messages"] == 2 and stats["total_queries"] == 1
    assert stats["recent_sessions"][0] == sid
    # the session's shard of the entry's usage (COUNTER_SHARDS: the functions' default)
    shard = shard_of(sid, Settings().counter_shards)
    kb = firestore.wait_for(f"kb_usage/{kb_doc_id(source)}/shards/{shard}", lambda d: d.get("use_count") == 1)
    assert kb["entry_id"] == source

    # ... and the caller reads its own stats over HTTP.
    mine = contract(api.get("get_user_stats", None, user), "get_user_stats", 200)
    assert (mine["user_id"], mine["total_sessions"], mine["total_queries"]) == (user.uid, 1, 1)
    assert mine["recent_sessions"] == [sid]


# -- idempotency and repeats ------------------------------------------------------------------


def test_append_is_idempotent_with_client_message_id(api: Api, user: User):
    sid = api.new_session(user)
    key = cmid()
    first = contract(api.append(user, sid, "user", "once", cmid=key), "append_message", 201)
    again = contract(api.append(user, sid, "user", "once", cmid=key), "append_message", 201)
    assert again == first
    hist = api.get("get_history", {"session_id": sid}, user).body
    assert [m["content"] for m in hist["messages"]] == ["once"]


def test_repeated_end_answers_the_same_and_changes_nothing(api: Api, user: User, firestore):
    sid = api.new_session(user)
    api.append(user, sid, "user", "hi")
    first = contract(api.post("end_session", {"session_id": sid}, user), "end_session", 200)
    doc1 = firestore.get(f"sessions/{sid}")
    second = contract(api.post("end_session", {"session_id": sid, "reason": "other"}, user), "end_session", 200)
    assert second == first
    assert firestore.get(f"sessions/{sid}") == doc1
    r = api.append(user, sid, "user", "too late")
    assert contract(r, "append_message", 409)["error"]["code"] == "failed_precondition"


def test_concurrent_appends_keep_every_message(api: Api, user: User):
    sid = api.new_session(user)
    n_threads, per_thread = 8, 5
    results: list[int] = []
    errors: list[str] = []
    lock = threading.Lock()

    def worker(t: int) -> None:
        for i in range(per_thread):
            r = api.append(user, sid, "user", f"t{t}-m{i}")
            with lock:
                if r.status == 201:
                    results.append(r.body["message_count"])
                else:
                    errors.append(f"{r.status} {r.text}")

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(n_threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    total = n_threads * per_thread
    assert not errors
    assert sorted(results) == list(range(1, total + 1))  # every append got its own number
    # Redis keeps the last MESSAGE_WINDOW messages of an active session (8 by default):
    # history shows those, in acceptance order, each once.
    hist = api.get("get_history", {"session_id": sid, "limit": 100}, user).body
    seqs = [m["seq"] for m in hist["messages"]]
    assert seqs == list(range(total - len(seqs) + 1, total + 1)) and len(seqs) >= 8
    assert len({m["content"] for m in hist["messages"]}) == len(seqs)


# -- auth and ownership -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer"},
        {"Authorization": "Basic dXNlcjpwYXNz"},
        {"Authorization": "Bearer abc.def.ghi"},
        {"Authorization": "Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0."},
    ],
)
def test_unauthenticated_is_401(api: Api, headers):
    r = api.get("get_history", {"session_id": GOOD_SID}, headers=headers)
    assert contract(r, "get_history", 401)["error"]["code"] == "unauthenticated"
    r = api.post("create_session", {}, headers=headers)
    contract(r, "create_session", 401)


def test_other_user_gets_403_and_never_the_data(api: Api, new_user):
    alice, mallory = new_user(), new_user()
    sid = api.new_session(alice)
    api.append(alice, sid, "user", "alice's secret")
    for r, op in [
        (api.get("get_context", {"session_id": sid}, mallory), "get_context"),
        (api.get("get_history", {"session_id": sid}, mallory), "get_history"),
        (api.append(mallory, sid, "user", "intrusion"), "append_message"),
        (api.post("end_session", {"session_id": sid}, mallory), "end_session"),
    ]:
        assert contract(r, op, 403)["error"]["code"] == "permission_denied"
        assert "secret" not in r.text
    hist = api.get("get_history", {"session_id": sid}, alice).body
    assert [m["content"] for m in hist["messages"]] == ["alice's secret"]


def test_unknown_session_is_404(api: Api, user: User):
    for r, op in [
        (api.get("get_context", {"session_id": GOOD_SID}, user), "get_context"),
        (api.get("get_history", {"session_id": GOOD_SID}, user), "get_history"),
        (api.append(user, GOOD_SID, "user", "x"), "append_message"),
        (api.post("end_session", {"session_id": GOOD_SID}, user), "end_session"),
    ]:
        assert contract(r, op, 404)["error"]["code"] == "not_found"


# -- every other error ------------------------------------------------------------------------


def test_bad_input_is_400_never_500(api: Api, user: User):
    sid = api.new_session(user)
    cases = [
        ("append_message", {"session_id": "../etc", "role": "user", "content": "x"}),
        ("append_message", {"session_id": sid, "role": "wizard", "content": "x"}),
        ("append_message", {"session_id": sid, "role": "user", "content": "   "}),
        ("append_message", {"session_id": sid, "role": "user", "content": ["x"]}),
        ("append_message", {"session_id": sid, "role": "user", "content": "x", "metadata": "m"}),
        ("append_message", {"session_id": sid, "role": "user", "content": "x", "client_message_id": "bad id!"}),
        ("end_session", {"session_id": sid, "reason": "DROP TABLE"}),
        ("create_session", {"user_info": "me"}),
        ("create_session", {"user_info": {"platform": "p" * 65}}),
    ]
    for op, body in cases:
        contract(api.post(op, body, user), op, 400)
    json_headers = {**user.headers, "Content-Type": "application/json"}
    for raw in (b"{not json", b"[1,2]", b'{"a": NaN}'):
        contract(api.call("POST", "append_message", data=raw, headers=json_headers), "append_message", 400)
    bad_params: list[dict[str, Any]] = [
        {"session_id": sid, "max_messages": 0},
        {"session_id": sid, "max_messages": 9},
        {"session_id": sid, "max_messages": "x"},
        {"session_id": "nope"},
        {},
    ]
    for params in bad_params:
        contract(api.get("get_context", params, user), "get_context", 400)
    contract(api.get("get_history", {"session_id": sid, "limit": 0}, user), "get_history", 400)


def test_405_413_415(api: Api, user: User):
    for op, method in [
        ("create_session", "GET"),
        ("append_message", "PUT"),
        ("get_context", "POST"),
        ("get_history", "DELETE"),
        ("end_session", "GET"),
        ("health", "POST"),
    ]:
        r = api.call(method, op, user=user)
        assert r.status == 405 and r.body["error"]["code"] == "method_not_allowed", (op, r.text)
        assert "OPTIONS" in r.headers["Allow"]
    sid = api.new_session(user)
    huge = {"session_id": sid, "role": "user", "content": "x" * (70 * 1024)}
    contract(api.post("append_message", huge, user), "append_message", 413)
    big_content = {"session_id": sid, "role": "user", "content": "y" * (33 * 1024)}
    contract(api.post("append_message", big_content, user), "append_message", 413)
    r = api.call(
        "POST",
        "append_message",
        data="session_id=x",
        headers={**user.headers, "Content-Type": "application/x-www-form-urlencoded"},
    )
    contract(r, "append_message", 415)


def test_rate_limit_429_with_retry_after(api: Api, user: User):
    # Cheap requests (an invalid session id is refused after auth and the rate limit).
    statuses = []
    for _ in range(1000):
        r = api.get("get_context", {"session_id": "x"}, user)
        statuses.append(r.status)
        if r.status == 429:
            break
    assert statuses[-1] == 429, f"no 429 after {len(statuses)} requests"
    body = contract(r, "get_context", 429)
    assert body["error"]["code"] == "rate_limited"
    assert 1 <= int(r.headers["Retry-After"]) <= 60
    assert set(statuses[:-1]) == {400}


# -- CORS -------------------------------------------------------------------------------------


def test_cors_preflight_and_headers(api: Api, user: User):
    # The stack's allowed origins reach both the emulated functions and this process.
    allowed = [o.strip() for o in os.environ.get("CORS_ORIGINS", "").split(",") if o.strip() not in ("", "*")]
    if not allowed:
        pytest.fail("CORS_ORIGINS must list the web origins of the stack (the functions read the same variable)")
    origin = allowed[0]
    r = api.call(
        "OPTIONS",
        "append_message",
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization,content-type",
        },
    )
    assert r.status == 204, r.text
    assert r.headers["Access-Control-Allow-Origin"] == origin
    assert "POST" in r.headers["Access-Control-Allow-Methods"]
    assert "authorization" in r.headers["Access-Control-Allow-Headers"].lower()
    r = api.get("get_history", {"session_id": GOOD_SID}, user, headers={"Origin": origin})
    assert r.headers["Access-Control-Allow-Origin"] == origin
    r = api.call(
        "OPTIONS",
        "append_message",
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
    )
    assert r.status == 403 and "Access-Control-Allow-Origin" not in r.headers


# -- trigger redelivery, sweep, outage --------------------------------------------------------


def test_redelivered_trigger_event_counts_nothing(api: Api, user: User, firestore, core_env):
    from shared.features.triggers import handle_session_written
    from shared.instance import get_instance

    sid = api.new_session(user)
    api.append(user, sid, "user", "q")
    api.append(user, sid, "assistant", "a", {"sources": ["kb/x"]})
    api.post("end_session", {"session_id": sid}, user)
    stats = firestore.wait_for(f"users/{user.uid}", lambda d: d.get("total_sessions") == 1)
    after = firestore.get(f"sessions/{sid}")
    before = {**after, "status": "active"}
    # The same transition delivered again (at-least-once), under two event ids.
    counted = get_instance().stats()
    assert handle_session_written(sid, before, after, "redelivered-1", stats=counted) is False
    assert handle_session_written(sid, before, after, "redelivered-1", stats=counted) is False
    time.sleep(0.5)
    assert firestore.get(f"users/{user.uid}") == stats


def test_sweep_ends_idle_sessions(api: Api, user: User, firestore, core_env):
    from shared.features.sweep import sweep_idle_sessions
    from shared.instance import get_instance
    from shared.settings import get_settings

    sid = api.new_session(user)
    api.append(user, sid, "user", "anyone there?")
    future = time.time() + get_settings().session_idle_timeout_s + 60
    inst = get_instance()
    result = sweep_idle_sessions(inst.manager(), inst.scans(), inst.stats(), now=future)
    assert result["ended"] >= 1, result
    doc = firestore.get(f"sessions/{sid}")
    assert doc["status"] == "ended" and doc["end_reason"] == "timeout"
    firestore.wait_for(f"users/{user.uid}", lambda d: d.get("total_sessions") == 1)
    # Ended sessions answer reads, refuse appends.
    assert api.get("get_history", {"session_id": sid}, user).status == 200
    assert api.append(user, sid, "user", "hello?").status == 409


def test_redis_outage_mid_conversation(api: Api, user: User, redis_outage):
    sid = api.new_session(user)
    for i in range(3):
        assert contract(api.append(user, sid, "user", f"before-{i}"), "append_message", 201)["storage"] == "redis"

    redis_outage.stop()
    try:
        during = []
        for i in range(3):
            body = contract(api.append(user, sid, "user", f"during-{i}"), "append_message", 201)
            assert body["storage"] != "redis", body
            during.append(body)
        ctx = contract(api.get("get_context", {"session_id": sid}, user), "get_context", 200)
        assert ctx["storage"] != "redis"
        # health probes the stores at most once per HEALTH_CACHE_S: poll until it has seen the outage
        deadline = time.time() + 30
        while (health := contract(api.get("health"), "health", 200))["status"] != "degraded":
            if time.time() > deadline:
                break
            time.sleep(0.25)
        assert health["status"] == "degraded"
    finally:
        redis_outage.start()

    # Redis is back (after the breaker's cool-down): nothing is lost, order is kept. The
    # client retries with one client_message_id, as a real client should.
    key = cmid()
    deadline = time.time() + 20
    while True:
        r = api.append(user, sid, "user", "after-0", cmid=key)
        if r.status == 201 and r.body["storage"] == "redis" or time.time() > deadline:
            break
        time.sleep(0.5)
    assert contract(r, "append_message", 201)["storage"] == "redis"
    # get_context is another service: its instance may still be inside its own breaker's
    # cool-down and answer from Firestore, which never held a message Redis took (a fresh-clone
    # run beside another saw that answer end at during-2). The order is asserted once it too
    # answers from Redis, as the append was awaited above.
    while True:
        ctx = contract(api.get("get_context", {"session_id": sid}, user), "get_context", 200)
        if ctx["storage"] == "redis" or time.time() > deadline:
            break
        time.sleep(0.5)
    assert ctx["storage"] == "redis", ctx["storage"]
    hist = contract(api.get("get_history", {"session_id": sid, "limit": 100}, user), "get_history", 200)
    contents = [m["content"] for m in hist["messages"]]
    expected = [f"before-{i}" for i in range(3)] + [f"during-{i}" for i in range(3)] + ["after-0"]
    assert contents == expected, contents
    assert [m["content"] for m in ctx["messages"]] == expected[-len(ctx["messages"]) :]
    settle_after_redis_restart()  # every instance back on Redis before the next test
