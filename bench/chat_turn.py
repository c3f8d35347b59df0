"""Section 7: the chat turn. One `chat` call (user message, context, the `kb` responder,
answer) through HTTP, against what a client did before it: append + get_context + append,
three calls. Per turn: the client's latency and the servers' CPU (user + system, from /proc:
CPU time barely moves when other processes load the machine). Both paths run one after the
other in one run, against the same redis-server and functions-framework build; the figure
to read is the ratio.
"""

from __future__ import annotations

import http.client
import json
import time
from pathlib import Path
from typing import Any

from bench.common import ROOT, percentile, proc_cpu_ms
from bench.http_load import FunctionServer
from bench.store_ops import UID

QUESTIONS = [
    "How do I return an item I bought last week?",
    "How long does shipping take?",
    "Can I change my delivery address after ordering?",
    "I was charged twice, what do I do?",
    "How do I reset my password?",
    "Do you ship internationally?",
]


class _Client:
    def __init__(self, port: int) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
        headers = {"X-User-Id": UID}
        data = None
        if body is not None:
            data = json.dumps(body)
            headers["Content-Type"] = "application/json"
        self.conn.request(method, path, body=data, headers=headers)
        r = self.conn.getresponse()
        raw = r.read()
        return r.status, json.loads(raw) if raw else None


def _new_session(client: _Client) -> str:
    status, body = client.call("POST", "/", {"user_info": {"platform": "bench"}})
    assert status == 201, body
    return str(body["session_id"])


def section_chat(redis_url: str, *, turns: int, warmup: int) -> dict[str, Any]:
    main = Path(ROOT / "functions" / "main.py")
    servers = {
        t: FunctionServer(main, t, redis_url) for t in ("create_session", "chat", "append_message", "get_context")
    }
    for s in servers.values():
        s.start()
    try:
        create = _Client(servers["create_session"].port)
        chat, append, context = (_Client(servers[t].port) for t in ("chat", "append_message", "get_context"))

        def one_chat(sid: str, i: int) -> None:
            status, body = chat.call(
                "POST", "/", {"session_id": sid, "content": QUESTIONS[i % 6], "client_message_id": f"c{i}"}
            )
            assert status == 201, body

        def three_calls(sid: str, i: int) -> None:
            q = QUESTIONS[i % 6]
            status, body = append.call("POST", "/", {"session_id": sid, "role": "user", "content": q})
            assert status == 201, body
            status, body = context.call("GET", f"/?session_id={sid}")
            assert status == 200, body
            answer = {"confidence": 0.9, "sources": ["faq_returns"], "collection": "returns"}
            status, body = append.call(
                "POST", "/", {"session_id": sid, "role": "assistant", "content": "An answer.", "metadata": answer}
            )
            assert status == 201, body

        def measure(fn: Any, pids: list[int]) -> dict[str, Any]:
            lat: list[float] = []
            cpu: list[float] = []
            sid = ""
            for i in range(warmup + turns):
                if i % 40 == 0:  # a session holds a bounded buffer: a new one now and then
                    sid = _new_session(create)
                c0 = sum(proc_cpu_ms(p) for p in pids)
                t0 = time.perf_counter()
                fn(sid, i)
                t1 = time.perf_counter()
                c1 = sum(proc_cpu_ms(p) for p in pids)
                if i >= warmup:
                    lat.append((t1 - t0) * 1000)
                    cpu.append(c1 - c0)
            return {
                "latency_p50_ms": round(percentile(lat, 50), 2),
                "latency_p99_ms": round(percentile(lat, 99), 2),
                # per-turn CPU is tick-grained (10 ms): the mean over all turns is the figure
                "cpu_mean_ms": round(sum(cpu) / len(cpu), 2),
                "cpu_p50_ms": round(percentile(cpu, 50), 2),
                "cpu_p99_ms": round(percentile(cpu, 99), 2),
                "turns": len(lat),
            }

        pid = {t: s.pid or 0 for t, s in servers.items()}
        one = measure(one_chat, [pid["chat"]])
        separate = measure(three_calls, [pid["append_message"], pid["get_context"]])
    finally:
        for s in servers.values():
            s.stop()
    return {
        "chat (one call, kb responder)": one,
        "append + get_context + append (three calls, no responder)": separate,
        "latency_ratio_p50": round(one["latency_p50_ms"] / separate["latency_p50_ms"], 2),
        "cpu_ratio_mean": round(one["cpu_mean_ms"] / separate["cpu_mean_ms"], 2) if separate["cpu_mean_ms"] else None,
        "how": "sequential turns over keep-alive HTTP to functions-framework processes (one per function, "
        "AUTH_DISABLED, Firestore off, the bench's redis-server); CPU from /proc of the serving "
        "processes, before and after each turn",
    }
