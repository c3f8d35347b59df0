"""Section 4: cold start. A fresh functions-framework process, from exec to its first
answered request, for the empty function, get_context as shipped (Firestore and
firebase-admin imported only when needed) and get_context with them imported eagerly.
"""

from __future__ import annotations

import json
import socket
import statistics
import subprocess
import time
from typing import Any

from bench.common import ROOT, pin, proc_cpu_ms, python
from bench.http_load import FF, server_env
from bench.store_ops import UID, conversation, manager_for, settings_for
from tests.harness import free_port, stop_process

EAGER_MODULES = ("firebase_admin", "firebase_admin.firestore", "google.cloud.firestore")


def _first_answer(port: int, request: bytes, proc: subprocess.Popen[bytes], timeout: float = 60) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        except OSError:
            time.sleep(0.002)
            continue
        with s:
            s.sendall(request)
            buf = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                buf += chunk
            return int(buf.split(b" ", 2)[1])
    raise RuntimeError("no answer")


def one_cold_start(source: str, target: str, redis_url: str, request: bytes) -> tuple[float, float]:
    """(wall ms, CPU ms of the server's processes) from exec to the first full answer."""
    port = free_port()
    env = server_env(redis_url, target)
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        [FF, "--source", source, "--target", target, "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=ROOT,
        preexec_fn=pin(0),  # noqa: PLW1509 - only sched_setaffinity
    )
    try:
        status = _first_answer(port, request.replace(b"PORT", str(port).encode()), proc)
        ms = (time.perf_counter() - t0) * 1000
        cpu = proc_cpu_ms(proc.pid)
        if status not in (200, 201):  # 201: a chat turn stored
            raise RuntimeError(f"{target}: first answer was {status}")
        return ms, cpu
    finally:
        stop_process(proc)


_IMPORT_PROBE = r"""
import importlib.util, json, os, sys, time
sys.path.insert(0, {root!r})
os.environ["FUNCTION_TARGET"] = "get_context"
spec = importlib.util.spec_from_file_location("main", {main!r})
mod = importlib.util.module_from_spec(spec); spec.loader.exec_module(mod)
import shared.core.manager, shared.store.redis.client, redis  # what the first get_context loads
before = set(sys.modules)
sys.stderr.write("=== MARK ===\n"); sys.stderr.flush()
t = time.perf_counter()
for name in {mods!r}:
    __import__(name)
ms = (time.perf_counter() - t) * 1000
print(json.dumps({{"ms": ms, "extra": len(set(sys.modules) - before)}}))
"""


def import_evidence(runs: int) -> dict[str, Any]:
    code = _IMPORT_PROBE.format(root=str(ROOT), main=str(ROOT / "functions" / "main.py"), mods=list(EAGER_MODULES))
    env = server_env("redis://127.0.0.1:1/0", "get_context")
    times, extra = [], 0
    for _ in range(runs):
        out = subprocess.run(
            [python(), "-c", code], capture_output=True, text=True, env=env, check=True, preexec_fn=pin(0)
        )
        d = json.loads(out.stdout)
        times.append(d["ms"])
        extra = d["extra"]
    out = subprocess.run(
        [python(), "-X", "importtime", "-c", code],
        capture_output=True,
        text=True,
        env=env,
        check=True,
        preexec_fn=pin(0),
    )
    after = out.stderr.split("=== MARK ===", 1)[1]
    top: list[tuple[str, float]] = []
    for line in after.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        parts = line.split("|")
        if len(parts) != 3:
            continue
        cum_us, name = parts[1], parts[2]
        depth = (len(name) - len(name.lstrip(" ")) - 1) // 2
        name_stripped = name.strip()
        # below the modules asked for: what they pull in (cumulative, so nested entries overlap)
        if depth <= 4 and name_stripped not in EAGER_MODULES:
            top.append((name_stripped, int(cum_us) / 1000))
    top.sort(key=lambda x: -x[1])
    # firebase_admin itself: already loaded by firebase_functions on the lazy path?
    already = "firebase_admin" not in [ln.rsplit("|", 1)[-1].strip() for ln in after.splitlines()]
    return {
        "modules": list(EAGER_MODULES),
        "median_ms": statistics.median(times),
        "runs": runs,
        "extra_modules": extra,
        "top": top[:6],
        "firebase_admin_already_loaded": already,
    }


def section_coldstart(redis_url: str, *, runs: int) -> dict[str, Any]:
    m = manager_for(settings_for(redis_url))
    sid = conversation(m)
    get = f"GET /?session_id={sid} HTTP/1.1\r\nHost: 127.0.0.1:PORT\r\nX-User-Id: {UID}\r\nConnection: close\r\n\r\n"
    empty = "GET / HTTP/1.1\r\nHost: 127.0.0.1:PORT\r\nConnection: close\r\n\r\n"
    variants = {
        "empty function (framework floor)": (str(ROOT / "bench" / "fns" / "empty_main.py"), "empty", empty),
        "get_context as shipped (lazy Firestore/firebase-admin)": (
            str(ROOT / "functions" / "main.py"),
            "get_context",
            get,
        ),
        "get_context, firebase-admin + Firestore imported eagerly": (
            str(ROOT / "bench" / "fns" / "eager_main.py"),
            "get_context",
            get,
        ),
    }
    turn = json.dumps({"session_id": sid, "content": "How long does shipping take?"})
    chat = (
        f"POST / HTTP/1.1\r\nHost: 127.0.0.1:PORT\r\nX-User-Id: {UID}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(turn)}\r\nConnection: close\r\n\r\n{turn}"
    )
    # The first chat turn also imports the retrieval library and builds the FAQ's index.
    variants["chat as shipped (first turn: kb responder, index built)"] = (
        str(ROOT / "functions" / "main.py"),
        "chat",
        chat,
    )
    samples: dict[str, list[float]] = {k: [] for k in variants}
    cpu: dict[str, list[float]] = {k: [] for k in variants}
    for _ in range(runs):  # interleaved, so drift hits every variant alike
        for name, (source, target, req) in variants.items():
            wall, used = one_cold_start(source, target, redis_url, req.encode())
            samples[name].append(wall)
            cpu[name].append(used)
    results = {
        k: {
            "median_ms": statistics.median(v),
            "min_ms": min(v),
            "max_ms": max(v),
            "runs": len(v),
            "all_ms": [round(x) for x in v],
            "cpu_median_ms": statistics.median(cpu[k]),
        }
        for k, v in samples.items()
    }
    return {
        "results": results,
        "runs": runs,
        "imports": import_evidence(max(3, runs)),
        "how": "exec of functions-framework (gunicorn master imports the source, forks one worker) until "
        "the first request's full 200 answer; the client retries connect every 2 ms; the first "
        "get_context also opens the Redis connection and runs the read script",
    }
