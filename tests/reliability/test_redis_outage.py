"""Scenario 1: the stack's Redis killed (SIGKILL) under load and restarted.

Given N users, each with a session, appending a user question and an assistant answer
(with KB sources) and reading the context over HTTP, paced so that the run spans the
outage; when the functions' redis-server is killed mid-run and started again; then no
request fails, no accepted message is missing from the final context window or from the
analytics written at the end, answers return to ``storage: redis``, and the circuit
breaker keeps latency low while Redis is down.

The restart keeps Redis' data (AOF, as Memorystore with persistence): with an empty
restart, messages that only Redis held are gone by design (docs/operations.md, "When something is
down"); that case is ``test_redis_restarted_empty`` below.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import pytest

from tests.clients import Api, User
from tests.reliability.conftest import Report, doc, emulator_workers, p99, poll, scaled

pytestmark = [pytest.mark.reliability, pytest.mark.slow]

SCENARIO = "redis killed under load"
WINDOW = 8


@dataclass
class Sent:
    seq: int
    role: str
    content: str
    t: float


@dataclass
class Run:
    user: User
    sid: str
    accepted: list[Sent] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    # (t, latency seen by the client, the function's own time, fn, storage)
    samples: list[tuple[float, float, float, str, str]] = field(default_factory=list)


def drive(api: Api, run: Run, messages: int, start: float, interval: float, offset: float) -> None:
    for i in range(messages):
        due = start + offset + i * interval
        delay = due - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        role = "user" if i % 2 == 0 else "assistant"
        content = f"{run.sid[:6]} message {i} " + ("question?" if role == "user" else "answer.")
        meta = {"confidence": 0.9, "sources": [f"kb_rel_{i % 3}"], "collection": "rel"} if role == "assistant" else None
        t = time.monotonic()
        try:
            r = api.append(run.user, run.sid, role, content, meta, cmid=f"m{i}")
        except Exception as exc:  # noqa: BLE001 - a transport error is a failed request
            run.failures.append(f"append {i}: {type(exc).__name__}")
            continue
        run.samples.append((t, r.latency_s, _own(r), "append", (r.body or {}).get("storage", "")))
        if r.status != 201:
            run.failures.append(f"append {i}: {r.status} {r.text[:120]}")
        else:
            run.accepted.append(Sent(int(r.body["message_count"]), role, content, t))
        t = time.monotonic()
        try:
            c = api.context(run.user, run.sid)
        except Exception as exc:  # noqa: BLE001
            run.failures.append(f"context {i}: {type(exc).__name__}")
            continue
        run.samples.append((t, c.latency_s, _own(c), "context", (c.body or {}).get("storage", "")))
        if c.status != 200:
            run.failures.append(f"context {i}: {c.status} {c.text[:120]}")


def _own(r: Any) -> float:
    own = r.server_s
    return r.latency_s if own is None else own


def run_outage(  # noqa: PLR0915 - one scenario, read top to bottom
    api: Api, redis: Any, fsdb: Any, *, sessions: int, messages: int, duration: float, down_at: float, down_for: float
) -> dict[str, Any]:
    users = [api.new_user() for _ in range(sessions)]
    runs = [Run(u, api.new_session(u)) for u in users]
    interval = duration / messages
    start = time.monotonic() + 0.5
    marks: dict[str, float] = {}

    def chaos() -> None:
        time.sleep(max(0.0, start + down_at - time.monotonic()))
        marks["down"] = time.monotonic()
        redis.kill()
        time.sleep(max(0.0, start + down_at + down_for - time.monotonic()))
        redis.start()
        marks["up"] = time.monotonic()

    workers_before = emulator_workers()
    with ThreadPoolExecutor(sessions + 1) as ex:
        chaos_f = ex.submit(chaos)
        futures = [
            ex.submit(drive, api, r, messages, start, interval, interval * k / sessions) for k, r in enumerate(runs)
        ]
        for f in futures:
            f.result()
        chaos_f.result()

    workers_after = emulator_workers()
    down, up = marks["down"], marks["up"]
    samples = [s for r in runs for s in r.samples]
    failures = [f"{r.sid[:8]} {f}" for r in runs for f in r.failures]
    # The breaker's job is the function's own latency; the client's also holds the
    # emulator's routing and any worker it had to start (reported apart).
    during = [own for t, _, own, _, _ in samples if down <= t < up]
    during_client = [lat for t, lat, _, _, _ in samples if down <= t < up]
    after = sorted((t, st) for t, _, _, _, st in samples if t >= up)
    first_redis = next((t - up for t, st in after if st == "redis"), None)
    # Answered while the SIGKILLed Redis was certainly away (a margin after the kill).
    redis_answers_down = sum(1 for t, _, _, _, st in samples if down + 0.2 <= t < up and st == "redis")
    last_not_redis = [r.sid[:8] for r in runs if r.samples and r.samples[-1][4] != "redis"]
    last_other = max((t - up for t, st in after if st != "redis"), default=0.0)

    # The end: context window, then analytics (one transaction per session).
    missing_ctx: list[str] = []
    missing_ana: list[str] = []
    seq_dupes: list[str] = []
    out_of_order: list[str] = []
    ends_failed: list[str] = []
    for r in runs:
        ctx = api.context(r.user, r.sid)
        got = [m["content"] for m in (ctx.body or {}).get("messages", [])]
        # The final numbering (after the merge) must be unique and increasing. What an
        # append answered during the outage is provisional: only Redis knew the count.
        final = [m["seq"] for m in (ctx.body or {}).get("messages", [])]
        if final != sorted(set(final)):
            seq_dupes.append(f"{r.sid[:8]}: {final}")
        # One thread per session appends in turn: acceptance order is the order sent.
        last = [s.content for s in r.accepted[-WINDOW:]]
        missing_ctx.extend(f"{r.sid[:8]} {c!r}" for c in last if c not in got)
        if got != last:
            out_of_order.append(
                f"{r.sid[:8]}: context {[c.split()[2] for c in got]} != accepted {[c.split()[2] for c in last]}"
            )
        end = api.end(r.user, r.sid)
        if end.status != 200:
            ends_failed.append(f"{r.sid[:8]}: {end.status} {end.text[:120]}")
            continue
        ana = doc(fsdb, f"analytics/{r.sid}") or {}
        responses = {q.get("response") for q in ana.get("queries") or []}
        for s in r.accepted:
            if s.role == "assistant" and s.content not in responses:
                missing_ana.append(f"{r.sid[:8]} seq {s.seq}")
    # The trigger counts each session once into its user's stats.
    stats_wrong = []
    for r in runs:
        u = poll(lambda r=r: doc(fsdb, f"users/{r.user.uid}"), 30)
        if not u or u.get("total_sessions") != 1:
            stats_wrong.append(f"{r.user.uid}: {u and u.get('total_sessions')}")

    accepted = sum(len(r.accepted) for r in runs)
    return {
        "requests": len(samples) + sum(1 for f in failures if "Error" in f),
        "failures": failures,
        "accepted": accepted,
        "missing_ctx": missing_ctx,
        "missing_ana": missing_ana,
        "seq_dupes": seq_dupes,
        "out_of_order": out_of_order,
        "ends_failed": ends_failed,
        "stats_wrong": stats_wrong,
        "p99_down_ms": round(p99(during) * 1000, 1),
        "max_down_ms": round(max(during, default=0) * 1000, 1),
        "p99_down_client_ms": round(p99(during_client) * 1000, 1),
        "workers_started": {
            fn: n - workers_before.get(fn, 0) for fn, n in workers_after.items() if n > workers_before.get(fn, 0)
        },
        "requests_down": len(during),
        "first_redis_s": first_redis,
        "all_redis_s": round(last_other, 2),
        "redis_answers_down": redis_answers_down,
        "last_not_redis": last_not_redis,
        "non_redis_answers": sum(1 for *_, st in samples if st != "redis"),
    }


@pytest.fixture(scope="module")
def outage(api: Api, warm: Any, fsdb: Any, stack_redis_module: Any, report: Report) -> dict[str, Any]:
    sessions, messages = scaled(8, 2), scaled(20, 10)
    warm(sessions)
    out = run_outage(
        api,
        stack_redis_module,
        fsdb,
        sessions=sessions,
        messages=messages,
        duration=max(16.0, messages * 0.8),
        down_at=4.0,
        down_for=7.0,
    )
    s = SCENARIO
    report.add(s, "size", f"{sessions} sessions x {messages} messages, Redis down 7 s (SIGKILL, AOF restart)")
    report.add(s, "requests", out["requests"])
    report.add(s, "requests failed", len(out["failures"]), "0", not out["failures"])
    report.add(
        s, "accepted messages missing from context (last 8)", len(out["missing_ctx"]), "0", not out["missing_ctx"]
    )
    report.add(s, "accepted answers missing from analytics", len(out["missing_ana"]), "0", not out["missing_ana"])
    report.add(s, "sessions counted != once in user stats", len(out["stats_wrong"]), "0", not out["stats_wrong"])
    report.add(s, "sessions with a duplicated seq", len(out["seq_dupes"]), "0", not out["seq_dupes"])
    report.add(
        s,
        "sessions whose final context is not the last 8 in acceptance order",
        len(out["out_of_order"]),
        "0",
        not out["out_of_order"],
    )
    report.add(s, "answers not from redis (outage)", out["non_redis_answers"])
    report.add(s, "requests while Redis down", out["requests_down"])
    # Latency is a figure of the report, not a test's bound: it depends on the machine's load.
    report.add(s, "p99 latency while Redis down, the function's own (ms, Server-Timing)", out["p99_down_ms"])
    report.add(s, "max latency while Redis down, the function's own (ms)", out["max_down_ms"])
    report.add(s, "p99 latency while Redis down, at the client (ms)", out["p99_down_client_ms"])
    report.add(s, "emulator workers started during the run (cold starts)", out["workers_started"] or 0)
    first = out["first_redis_s"]
    report.add(s, "first storage=redis answer after restart (s)", None if first is None else round(first, 2))
    report.add(s, "last non-redis answer after restart (s)", out["all_redis_s"])
    report.add(s, "answers from redis to requests started while it was down", out["redis_answers_down"])
    report.add(
        s, "sessions whose last answer was not from redis", out["last_not_redis"], "0", not out["last_not_redis"]
    )
    return out


def test_no_request_failed(outage: dict[str, Any]) -> None:
    assert not outage["failures"], outage["failures"][:10]
    assert not outage["ends_failed"], outage["ends_failed"]


def test_no_accepted_message_missing(outage: dict[str, Any]) -> None:
    assert not outage["missing_ctx"], outage["missing_ctx"][:20]
    assert not outage["missing_ana"], outage["missing_ana"][:20]
    assert not outage["stats_wrong"], outage["stats_wrong"]


def test_requests_while_redis_is_down_are_served_by_the_other_layers(outage: dict[str, Any]) -> None:
    """What cannot depend on the machine's load: requests were made while Redis was down and
    every one was answered (test_no_request_failed). Which layer answered one that started
    in the outage depends on when the emulator ran it (a queued request may run after the
    restart, from Redis: seen under load), so it is a figure of the report, as is latency."""
    assert outage["requests_down"] > 0


def test_answers_return_to_redis_after_restart(outage: dict[str, Any]) -> None:
    assert outage["first_redis_s"] is not None, "no answer came from Redis after the restart"
    assert not outage["last_not_redis"], outage["last_not_redis"]


def test_seq_unique_and_context_in_acceptance_order(outage: dict[str, Any]) -> None:
    assert not outage["seq_dupes"], outage["seq_dupes"]
    assert not outage["out_of_order"], outage["out_of_order"]


def test_outage_append_on_another_instance_keeps_acceptance_order(firestore_emulator: str, tmp_path: Any) -> None:
    """Two instances (two managers, each with its own Redis client and breaker) on a real
    redis-server and the Firestore emulator. Instance a saw nothing of the outage and
    appends first after it. During an outage only Redis knows the session's count, so the
    number an outage append answers is provisional; the merge renumbers it after what Redis
    held, and the final sequence is unique and in acceptance order. No mocks."""
    import os
    import uuid

    from shared.core.manager import SessionManager
    from shared.settings import Settings
    from shared.store.firestore.layer import FirestoreLayer
    from shared.store.redis.layer import RedisLayer
    from tests.harness import RedisServer

    srv = RedisServer(persistent=True, data_dir=tmp_path / "redis").start()
    try:

        def instance() -> SessionManager:
            st = Settings(
                redis_url=srv.url,
                redis_breaker_cooldown_s=0.2,
                gcp_project=os.environ.get("GCLOUD_PROJECT", "demo-chat-memory"),
            )
            return SessionManager(st, redis=RedisLayer(st), firestore=FirestoreLayer(st))

        a, b = instance(), instance()
        uid = "u-" + uuid.uuid4().hex[:10]
        sid = a.create_session({}, user_id=uid).session_id
        for i in range(3):
            assert a.add_message(sid, "user", f"before {i}", user_id=uid).seq == i + 1
        srv.kill()
        r = b.add_message(sid, "user", "during the outage, on instance b", user_id=uid)
        assert r.storage == "firestore"
        srv.start()
        time.sleep(0.3)
        after = a.add_message(sid, "user", "after", user_id=uid)
        ctx = a.get_context_for_llm(sid, user_id=uid)
        assert after.seq == 5, f"the outage message should have been merged (as 4) before 'after' (got {after.seq})"
        assert [m.content for m in ctx.messages][-2:] == ["during the outage, on instance b", "after"]
        assert [m.seq for m in ctx.messages] == [1, 2, 3, 4, 5]
        for other in (a, b):
            hist = other.get_history(sid, user_id=uid)
            assert [m.seq for m in hist.messages] == [1, 2, 3, 4, 5]
    finally:
        srv.cleanup()
