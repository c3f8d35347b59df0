"""Sections 1, 2 and 6: the store in-process against real redis-server processes.

Every operation goes through the product's own code (RedisLayer, SessionManager) on a
client built by ``shared.store.redis.client.build`` (the product's timeouts and retry);
the floor (PING) and the straightforward variant (bench/naive.py) use that same client.
"""

from __future__ import annotations

import os
import random
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from bench import naive
from bench.common import ASSISTANT_TEXT, PROJECT, USER_TEXT, summarize_rounds
from shared.core.manager import SessionManager
from shared.settings import Settings
from shared.store.base import AppendRequest, StoredMessage
from shared.store.firestore.layer import FirestoreLayer
from shared.store.redis import client as redis_client
from shared.store.redis.layer import RedisLayer

MESSAGES_PER_SESSION = 20  # a conversation of 10 turns; then the bench moves to a new session
UID = "bench-user"


def settings_for(url: str, *, cluster: bool = False, firestore: bool = False) -> Settings:
    # One bench user holds thousands of sessions: the per-user cap is for real users.
    return Settings(
        redis_url=url,
        redis_cluster=cluster,
        firestore_enabled=firestore,
        gcp_project=PROJECT,
        max_active_sessions_per_user=0,
    )


def manager_for(settings: Settings, client: Any = None, fs_client: Any = None) -> SessionManager:
    client = client if client is not None else redis_client.build(settings)
    return SessionManager(
        settings, redis=RedisLayer(settings, client=client), firestore=FirestoreLayer(settings, client=fs_client)
    )


def turn(k: int) -> tuple[str, str, dict[str, Any] | None, str | None]:
    """The k-th message of a conversation: (role, content, metadata, client_message_id).
    Users' messages carry a client message id, as the web console sends; answers cite
    knowledge-base entries."""
    if k % 2 == 0:
        return "user", f"{USER_TEXT} ({k})", None, uuid.uuid4().hex[:20]
    return "assistant", ASSISTANT_TEXT, {"sources": [f"kb_{k % 3}", "kb_faq"], "confidence": 0.82}, None


def conversation(m: SessionManager, n_messages: int = MESSAGES_PER_SESSION) -> str:
    sid = m.create_session({"platform": "web", "locale": "en"}, user_id=UID).session_id
    for k in range(n_messages):
        role, content, md, cmid = turn(k)
        m.add_message(sid, role, content, md, client_message_id=cmid, user_id=UID)
    return sid


class AppendFeed:
    """Hands out (sid, k) so that every session gets MESSAGES_PER_SESSION appends, in
    conversation order, then the next session: the analytics buffer never fills and the
    rolling summary falls every 5th append as in real use. Sessions are created up
    front (``ops`` appends' worth), so creation is neither timed nor counted."""

    def __init__(
        self, m: SessionManager, ops: int = 0, *, live: list[str] | None = None, per_session: int = MESSAGES_PER_SESSION
    ):
        self.live = live
        self.per = per_session
        n = 0 if live is not None else ops // per_session + 2
        self.sids = [m.create_session({"platform": "web"}, user_id=UID).session_id for _ in range(n)]
        self.i = 0

    def next(self) -> tuple[str, int]:
        self.i += 1
        if self.live is not None:
            # live sessions from a prefill: a random one each time, the conversation goes on
            return random.choice(self.live), self.i
        j = self.i - 1
        return self.sids[j // self.per], j % self.per


def layer_append_fn(m: SessionManager, feed: AppendFeed) -> Callable[[int], Any]:
    layer = m.redis

    def op(_i: int) -> Any:
        sid, k = feed.next()
        role, content, md, cmid = turn(k)
        now = time.time()
        msg = StoredMessage(0, cmid or uuid.uuid4().hex[:20], role, content, now, md)
        out = layer.append(AppendRequest(sid, msg, UID, cmid, now))
        assert out.status == "ok", out.status
        return out

    return op


def manager_append_fn(m: SessionManager, feed: AppendFeed) -> Callable[[int], Any]:
    def op(_i: int) -> Any:
        sid, k = feed.next()
        role, content, md, cmid = turn(k)
        return m.add_message(sid, role, content, md, client_message_id=cmid, user_id=UID)

    return op


def naive_append_fn(m: SessionManager, feed: AppendFeed) -> Callable[[int], Any]:
    s = m.settings
    r = m.redis.client()
    keys_of = m.redis.keys

    def op(_i: int) -> Any:
        sid, k = feed.next()
        role, content, md, cmid = turn(k)
        now = time.time()
        msg = StoredMessage(0, cmid or uuid.uuid4().hex[:20], role, content, now, md)
        out = naive.append(
            r,
            keys_of(sid),
            UID,
            role,
            msg.tail_json(),
            msg.mid,
            ttl=s.session_ttl_s,
            interval=s.summary_interval,
            ana_max=s.analytics_buffer_max,
            now=repr(now),
        )
        assert out[0] == "ok", out
        return out

    return op


def read_fns(m: SessionManager, sids: list[str]) -> dict[str, Callable[[int], Any]]:
    layer = m.redis
    w = m.settings.message_window
    ttl = m.settings.session_ttl_s
    r = layer.client()
    n = len(sids)

    def layer_read(i: int) -> Any:
        out = layer.read(sids[i % n], UID, w)
        assert out.status == "ok"
        return out

    def manager_read(i: int) -> Any:
        return m.get_context_for_llm(sids[i % n], user_id=UID)

    def naive_read(i: int) -> Any:
        return naive.read(r, layer.keys(sids[i % n]), UID, w, ttl)

    return {"layer": layer_read, "manager": manager_read, "naive": naive_read}


def interleaved(
    variants: dict[str, Callable[[int], Any]],
    n: int,
    *,
    warmup: int,
    rounds: int,
    server_cpu: Callable[[], float] | None = None,
) -> dict[str, dict[str, Any]]:
    """Time each variant in rounds, the rounds interleaved (A B C A B C ...), so slow
    drift of the machine hits every variant alike. Wall µs per call; and per round the
    CPU µs per call of this thread and of Redis (``server_cpu``: its CPU seconds so far),
    which other load on a shared machine moves far less than wall time."""
    for fn in variants.values():
        for i in range(warmup):
            fn(i)
    samples: dict[str, list[list[float]]] = {k: [] for k in variants}
    cpu: dict[str, list[float]] = {k: [] for k in variants}
    srv: dict[str, list[float]] = {k: [] for k in variants}
    clock = time.perf_counter_ns
    for r in range(rounds):
        for name, fn in variants.items():
            base = warmup + r * n
            s: list[float] = []
            c0 = time.thread_time_ns()
            s0 = server_cpu() if server_cpu else 0.0
            for i in range(base, base + n):
                t0 = clock()
                fn(i)
                s.append((clock() - t0) / 1000)
            cpu[name].append((time.thread_time_ns() - c0) / 1000 / n)
            if server_cpu:
                srv[name].append((server_cpu() - s0) * 1e6 / n)
            samples[name].append(s)
    return {k: summarize_rounds(v, cpu[k], srv[k]) for k, v in samples.items()}


def redis_pid(url: str) -> int | None:
    """The local redis-server's pid, or None."""
    import redis

    try:
        return int(redis.Redis.from_url(url).info("server")["process_id"])
    except Exception:  # noqa: BLE001 - used for CPU pinning, best effort
        return None


def redis_cpu(client: Any, cluster: bool = False) -> Callable[[], float]:
    """CPU seconds Redis has used so far (INFO cpu: getrusage, µs resolution), summed
    over the primaries of a cluster. The INFO call itself costs a few µs per round."""

    def read() -> float:
        if cluster:
            info = client.info("cpu", target_nodes=client.PRIMARIES)
            return sum(float(v["used_cpu_sys"]) + float(v["used_cpu_user"]) for v in info.values())
        info = client.info("cpu")
        return float(info["used_cpu_sys"]) + float(info["used_cpu_user"])

    return read


# ---------------------------------------------------------------- section 1
@contextmanager
def placement(server_pid: int | None, me: set[int] | None, server: set[int] | None) -> Iterator[None]:
    """Pin this process and redis-server to CPUs for a while (None: leave as is)."""
    if server_pid is None or me is None or server is None or not hasattr(os, "sched_setaffinity"):
        yield
        return
    old_me, old_srv = os.sched_getaffinity(0), os.sched_getaffinity(server_pid)
    os.sched_setaffinity(0, me)
    os.sched_setaffinity(server_pid, server)
    try:
        yield
    finally:
        os.sched_setaffinity(0, old_me)
        os.sched_setaffinity(server_pid, old_srv)


PLACEMENTS: dict[str, tuple[set[int], set[int]]] = {
    # On a VM a loopback round trip to another core pays a cross-core wake-up (measured
    # here: PING 38 µs on one core, ~95 µs across cores); unpinned, the scheduler picks
    # either, and the floor jumps between the two. Both are measured, each pinned.
    "client and redis-server on one core": ({0}, {0}),
    "client and redis-server on two cores": ({0}, {1}),
}


def section_store(url: str, *, n: int, warmup: int, rounds: int) -> dict[str, Any]:
    s = settings_for(url)
    m = manager_for(s)
    client = m.redis.client()
    read_sids = [conversation(m) for _ in range(50)]
    reads = read_fns(m, read_sids)
    pid = redis_pid(url)
    places = PLACEMENTS if (os.cpu_count() or 1) >= 2 and pid else {"unpinned (one core)": (None, None)}
    by_place: dict[str, Any] = {}
    for place, (me, srv) in places.items():
        total = warmup + n * rounds
        variants: dict[str, Callable[[int], Any]] = {
            "ping": lambda _i: client.ping(),
            "append (RedisLayer, 1 script)": layer_append_fn(m, AppendFeed(m, total)),
            "context read (RedisLayer, 1 script)": reads["layer"],
            "add_message (SessionManager)": manager_append_fn(m, AppendFeed(m, total)),
            "get_context_for_llm (SessionManager)": reads["manager"],
            "append, straightforward (1 cmd/step)": naive_append_fn(m, AppendFeed(m, total)),
            "context read, straightforward": reads["naive"],
        }
        with placement(pid, me, srv):
            res = interleaved(variants, n, warmup=warmup, rounds=rounds, server_cpu=redis_cpu(client))
        floor = res["ping"]["median"]
        for v in res.values():
            v["x_ping"] = round(v["median"] / floor, 2)
        by_place[place] = res
    return {
        "placements": by_place,
        "client_cpu": {
            "add_message (SessionManager)": client_cpu_breakdown(manager_append_fn(m, AppendFeed(m, 3200)), 3000),
            "get_context_for_llm (SessionManager)": client_cpu_breakdown(reads["manager"], 3000),
            "ping": client_cpu_breakdown(lambda _i: client.ping(), 3000),
        },
        "workload": (
            f"{MESSAGES_PER_SESSION}-message conversations (user {len(USER_TEXT)} chars with a client "
            f"message id, assistant {len(ASSISTANT_TEXT)} chars citing 2 KB entries); reads of a full "
            f"{s.message_window}-message window plus summary over 50 sessions; a rolling summary every "
            f"{s.summary_interval}th append (SessionManager rows include it)"
        ),
        "client": "redis_client.build(settings): one pooled connection, socket_timeout 0.5 s, decode_responses",
    }


# Where the client's CPU goes, by the file a function lives in (cProfile's own time).
_PARTS = (
    ("redis-py (connection pool, command packing, reply reading)", ("site-packages/redis/", "hiredis")),
    ("socket calls (the wait for the reply included)", ("_socket.socket",)),
    ("pydantic validation", ("pydantic",)),
    ("JSON (orjson, json)", ("orjson", "/json/")),
    ("our Redis layer (shared/store)", ("shared/store/",)),
    ("input checks (shared/core/models.py)", ("shared/core/models.py",)),
    ("context formatting (shared/core/context.py)", ("shared/core/context.py",)),
    ("rolling summary (shared/summar*)", ("shared/core/summar",)),
    ("manager, recovery, memo (shared/core/manager.py, recovery.py)", ("shared/core/manager", "shared/core/recovery")),
)


def client_cpu_breakdown(fn: Callable[[int], Any], n: int) -> dict[str, Any]:
    """Profile ``n`` calls of ``fn`` (after 200 unprofiled) and split the client's own time by
    part. cProfile slows Python code more than C code, so the shares lean towards Python: read
    them as where the time goes, the µs column as an upper bound."""
    import cProfile
    import pstats

    for i in range(200):
        fn(i)
    prof = cProfile.Profile()
    prof.enable()
    for i in range(n):
        fn(i)
    prof.disable()
    stats = pstats.Stats(prof).stats
    parts: dict[str, float] = {}
    total = 0.0
    for (filename, _line, func), (_cc, _nc, tottime, _ct, _callers) in stats.items():
        where = f"{filename}:{func}"
        if "method 'poll'" in func or "select" in func:
            continue  # waiting for the reply, not work
        total += tottime
        part = next((name for name, keys in _PARTS if any(k in where for k in keys)), "other (builtins, stdlib)")
        parts[part] = parts.get(part, 0.0) + tottime
    return {
        "profiled_us_per_op": round(total / n * 1e6, 1),
        "parts": {k: round(v / n * 1e6, 1) for k, v in sorted(parts.items(), key=lambda kv: -kv[1])},
    }


# ---------------------------------------------------------------- section 2
def _commandstats(admin: Any) -> tuple[dict[str, int], dict[str, float]]:
    """Calls per command, and server time (µs) per command, since the last RESETSTAT."""
    info = admin.info("commandstats")
    calls = {k.removeprefix("cmdstat_"): int(v["calls"]) for k, v in info.items()}
    usec = {k.removeprefix("cmdstat_"): float(v["usec"]) for k, v in info.items()}
    return calls, usec


def append_commands_by_kind(m: SessionManager, admin: Any, k: int) -> dict[str, dict[str, float]]:
    """Redis commands of each RedisLayer append, counted one append at a time and grouped by
    kind: a user message, an answer, and an append that claims a rolling summary (which also
    reads the summarizer's input), in 20-message sessions and 300 messages into one."""
    kinds: dict[str, list[int]] = {}

    def count(fn: Callable[[int], Any], i: int, where: str) -> None:
        admin.config_resetstat()
        out = fn(i)
        stats, _ = _commandstats(admin)
        n = sum(v for c, v in stats.items() if c not in ("config|resetstat", "config", "info"))
        kind = "summary claim" if out.summary_due else ("answer" if i % 2 else "user message")
        kinds.setdefault(f"{kind}{where}", []).append(n)

    short = layer_append_fn(m, AppendFeed(m, k))
    for i in range(k):
        count(short, i, "")
    skip = 300
    long = layer_append_fn(m, AppendFeed(m, skip + k, per_session=skip + k))
    for i in range(skip):
        long(i)
    for i in range(skip, skip + k):
        count(long, i, f", {skip}+ messages into a session")
    return {
        kind: {"appends": len(v), "mean": round(sum(v) / len(v), 2), "max": max(v)} for kind, v in sorted(kinds.items())
    }


def section_roundtrips(url: str, *, k: int = 100) -> dict[str, Any]:
    import redis

    from bench.common import counting_pool

    s = settings_for(url)
    conn_cls, pool = counting_pool(url, socket_timeout=s.redis_socket_timeout_s)
    m = manager_for(s, client=redis.Redis(connection_pool=pool))
    admin = redis.Redis.from_url(url, decode_responses=True)
    read_sids = [conversation(m) for _ in range(5)]
    reads = read_fns(m, read_sids)
    total = 100 + k
    ops: dict[str, Callable[[int], Any]] = {
        "create_session (SessionManager)": lambda _i: m.create_session({"platform": "web"}, user_id=UID),
        "append (RedisLayer)": layer_append_fn(m, AppendFeed(m, total)),
        "context read (RedisLayer)": reads["layer"],
        "add_message (SessionManager; every 5th also stores the summary)": manager_append_fn(m, AppendFeed(m, total)),
        "get_context_for_llm (SessionManager)": reads["manager"],
        "append, straightforward": naive_append_fn(m, AppendFeed(m, total)),
        "context read, straightforward": reads["naive"],
    }
    out: dict[str, Any] = {}
    for name, fn in ops.items():
        # 100 ops first (scripts loaded; appends start the counted window at a session's
        # first message, so k=100 counts 5 whole conversations)
        for i in range(100):
            fn(i)
        conn_cls.sends = 0
        admin.config_resetstat()
        for i in range(100, 100 + k):
            fn(i)
        sends = conn_cls.sends
        stats, usec = _commandstats(admin)
        for c in ("config|resetstat", "config", "info"):
            stats.pop(c, None)
            usec.pop(c, None)
        total_cmds = sum(stats.values())
        # EVALSHA's time includes the commands the script ran; without scripts, the sum.
        server_us = usec["evalsha"] if "evalsha" in usec else sum(usec.values())
        out[name] = {
            "round_trips_per_op": round(sends / k, 2),
            "commands_per_op": round(total_cmds / k, 2),
            "server_us_per_op": round(server_us / k, 1),
            "by_command": {c: round(v / k, 2) for c, v in sorted(stats.items(), key=lambda kv: -kv[1])},
        }
    return {
        "ops": k,
        "results": out,
        "append_by_kind": append_commands_by_kind(m, admin, k),
        "note": "round trips = socket sends counted in the client; commands = INFO commandstats deltas "
        "(commands run inside Lua scripts included) over the same ops; server µs = commandstats usec "
        "(EVALSHA's includes the commands it ran)",
    }
