"""Section 3: functions-framework serving one function, a load generator in another
process (bench/loadgen.py), next to an empty function on the same server.

The server is pinned to CPU 0 and the load generator and redis-server to CPU 1 (on a
machine with two or more cores), so the function gets one whole CPU, as `cpu: 1` gives
it in Cloud Functions, and the load generator does not steal it.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from bench.common import PROJECT, RESULTS, ROOT, percentile, pin, proc_cpu_ms, python, wait_port
from bench.store_ops import UID, conversation, manager_for, redis_pid, settings_for
from tests.harness import free_port, stop_process
from tests.tokens import GoogleStandIn

FF = str(Path(python()).parent / "functions-framework")


def server_env(redis_url: str, target: str, tokens: GoogleStandIn | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FUNCTION_", "K_"))}
    env.update(
        {
            "PYTHONPATH": str(ROOT),
            "REDIS_URL": redis_url,
            "AUTH_DISABLED": "true",
            "RATE_LIMIT_PER_MINUTE": "0",
            "MAX_ACTIVE_SESSIONS_PER_USER": "0",  # one bench user, many sessions
            "FIRESTORE_ENABLED": "false",
            "GCLOUD_PROJECT": PROJECT,
            "FUNCTION_TARGET": target,
            "PYTHONDONTWRITEBYTECODE": "1",
        }
    )
    env.pop("FIRESTORE_EMULATOR_HOST", None)
    # Under `make bench` the Auth emulator is up: firebase-admin would then accept unsigned
    # tokens without checking a signature. No server here talks to it.
    env.pop("FIREBASE_AUTH_EMULATOR_HOST", None)
    if tokens is not None:
        env["AUTH_DISABLED"] = "false"
        env["CM_BENCH_GOOGLE_URL"] = tokens.base_url
        env["CM_BENCH_SERVICE_ACCOUNT"] = json.dumps(tokens.service_account())
    return env


class FunctionServer:
    """functions-framework --source S --target T in its own process, logs to a file."""

    def __init__(
        self, source: Path, target: str, redis_url: str, *, cpu: int | None = 0, tokens: GoogleStandIn | None = None
    ) -> None:
        if tokens is not None:
            source = ROOT / "bench" / "fns" / "token_main.py"
        self.source, self.target, self.port = source, target, free_port()
        self.env = server_env(redis_url, target, tokens)
        self.token = tokens.token(UID) if tokens is not None else None
        self.cpu = cpu
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        log = open(RESULTS / f"server-{self.target}.log", "ab")  # noqa: SIM115 - closed with the process
        self.proc = subprocess.Popen(
            [
                FF,
                "--source",
                str(self.source),
                "--target",
                self.target,
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
            ],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
            preexec_fn=pin(self.cpu) if self.cpu is not None else None,  # noqa: PLW1509 - affinity only
        )
        wait_port(self.port, 60)

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def stop(self) -> None:
        if self.proc:
            stop_process(self.proc)


def load(  # noqa: PLR0913 - the load's knobs, keyword-only
    port: int,
    kind: str,
    sids: list[str],
    *,
    requests: int,
    warmup: int,
    connections: int,
    rounds: int,
    server_pid: int | None = None,
    token: str | None = None,
    token_file: str | None = None,
) -> dict[str, Any]:
    cmd = [
        python(),
        str(ROOT / "bench" / "loadgen.py"),
        "--port",
        str(port),
        "--kind",
        kind,
        "--sids",
        ",".join(sids),
        "--uid",
        UID,
        "--requests",
        str(requests),
        "--warmup",
        str(warmup),
        "--connections",
        str(connections),
        "--rounds",
        str(rounds),
        *(["--token", token] if token else []),
        *(["--token-file", token_file] if token_file else []),
    ]
    c0 = proc_cpu_ms(server_pid) if server_pid else 0.0
    res = subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=600, preexec_fn=pin(1))
    # the server's CPU (gunicorn master + worker) per request, warm-up included
    cpu_us = (proc_cpu_ms(server_pid) - c0) * 1000 / (warmup + requests * rounds) if server_pid else None
    raw = json.loads(res.stdout)
    rps = [len(r["lat_us"]) / r["wall_s"] for r in raw["rounds"]]
    p50 = [percentile(r["lat_us"], 50) / 1000 for r in raw["rounds"]]
    p99 = [percentile(r["lat_us"], 99) / 1000 for r in raw["rounds"]]
    statuses: dict[str, int] = {}
    for r in raw["rounds"]:
        for k, v in r["statuses"].items():
            statuses[k] = statuses.get(k, 0) + v
    return {
        "rps": statistics.median(rps),
        "server_cpu_us_per_req": cpu_us,
        "p50_ms": statistics.median(p50),
        "p99_ms": statistics.median(p99),
        "round_rps": [round(x) for x in rps],
        "statuses": statuses,
        "errors": sum(v for k, v in statuses.items() if not k.startswith("2")),
        "reconnects": sum(r["reconnects"] for r in raw["rounds"]),
        "connections": connections,
        "requests_per_round": requests,
    }


def _server_kind() -> str:
    try:
        import gunicorn  # noqa: F401

        threads = int(os.environ.get("THREADS", str((os.cpu_count() or 1) * 4)))
        workers = int(os.environ.get("WORKERS", "1"))
        return f"gunicorn gthread, {workers} worker x {threads} threads (functions-framework defaults)"
    except ImportError:
        return "werkzeug (gunicorn not installed)"


def section_http(redis_url: str, *, requests: int, warmup: int, connections: int, rounds: int) -> dict[str, Any]:
    # Sessions for the functions to work on, made in-process through the same Redis.
    m = manager_for(settings_for(redis_url))
    read_sids = [conversation(m) for _ in range(20)]
    # appends: user messages only (no analytics buffer to fill), ~30 per session per round
    append_sids = [
        m.create_session({"platform": "web"}, user_id=UID).session_id
        for _ in range(2 * max(10, (warmup + requests * rounds) // 30))
    ]
    rpid = redis_pid(redis_url)
    if rpid and pin(1):
        os.sched_setaffinity(rpid, {1})
    main_py = ROOT / "functions" / "main.py"
    plan: list[tuple[str, Path, str, str, list[str], bool]] = [
        ("empty function", ROOT / "bench" / "fns" / "empty_main.py", "empty", "empty", [], False),
        ("get_context", main_py, "get_context", "get_context", read_sids, False),
        ("append_message", main_py, "append_message", "append", append_sids[::2], False),
        # what production pays: a real RS256 ID token, verified by firebase-admin
        ("get_context, real ID token", main_py, "get_context", "get_context", read_sids, True),
        ("append_message, real ID token", main_py, "append_message", "append", append_sids[1::2], True),
    ]
    results: dict[str, Any] = {}
    tokens = GoogleStandIn().start()
    try:
        for label, source, target, kind, sids, signed in plan:
            srv = FunctionServer(source, target, redis_url, tokens=tokens if signed else None)
            srv.start()
            try:
                _check(srv, kind, sids)
                results[f"{label}, {connections} connections"] = load(
                    srv.port,
                    kind,
                    sids,
                    requests=requests,
                    warmup=warmup,
                    connections=connections,
                    rounds=rounds,
                    server_pid=srv.pid,
                    token=srv.token,
                )
                results[f"{label}, 1 connection"] = load(
                    srv.port,
                    kind,
                    sids,
                    requests=max(100, requests // 4),
                    warmup=50,
                    connections=1,
                    rounds=rounds,
                    server_pid=srv.pid,
                    token=srv.token,
                )
            finally:
                srv.stop()
        results["get_context, a new real ID token every request, 1 connection"] = _fresh_tokens(
            tokens, redis_url, read_sids, requests=max(100, requests // 4), rounds=rounds
        )
    finally:
        tokens.stop()
        if rpid and pin(1):
            os.sched_setaffinity(rpid, set(range(os.cpu_count() or 1)))
    for key, v in results.items():
        conns = key.rsplit(", ", 1)[1]
        floor = results[f"empty function, {conns}"]["rps"]
        v["vs_empty"] = v["rps"] / floor
        cpu_floor = results[f"empty function, {conns}"].get("server_cpu_us_per_req")
        if cpu_floor and v.get("server_cpu_us_per_req"):
            v["cpu_vs_empty"] = v["server_cpu_us_per_req"] / cpu_floor
    return {
        "results": results,
        "server": _server_kind()
        + ("; server pinned to CPU 0, load generator and redis-server to CPU 1" if pin(0) else ""),
        "load": (
            f"bench/loadgen.py in its own process (closed loop, keep-alive, {connections} or 1 connections), "
            f"{warmup} warm-up requests then {rounds} rounds of {requests} "
            f"(1 connection: {max(100, requests // 4)}); "
            "get_context: 8-message window + summary of 20-message sessions; append_message: user messages "
            "with a client_message_id, a rolling summary every 5th; AUTH_DISABLED with X-User-Id, "
            "RATE_LIMIT_PER_MINUTE=0, FIRESTORE_ENABLED=false (the Redis-healthy path touches no Firestore); "
            "the product's JSON request log on (to a file). Real ID token rows: AUTH_DISABLED=false, every request "
            "carries one RS256 Firebase ID token (1 h), verified by firebase-admin against a self-signed "
            "certificate served from loopback by tests/tokens.py (fetched once, cached per its Cache-Control "
            "max-age=3600 as Google's are); the revocation check asks the stand-in's Auth API (get_user) "
            "once per TOKEN_CHECK_CACHE_S (60 s), as in production; one token per client, reused as clients do "
            "(an instance verifies its signature once). 'A new real ID token every request': each request "
            "another token of the same user and issue time (the signature verified by firebase-admin every "
            "time, the account check cached): what a token not seen before costs"
        ),
    }


def _fresh_tokens(
    tokens: GoogleStandIn, redis_url: str, sids: list[str], *, requests: int, rounds: int
) -> dict[str, Any]:
    """What a token the instance has not seen costs: every request carries another token
    (same user and issue time, so the account check stays cached as for one client; only
    the signature is verified each time, by firebase-admin)."""
    warmup = 50
    iat = time.time() - 60
    minted = [tokens.token(UID, iat=iat, claims={"bench_n": i}) for i in range(warmup + requests * rounds)]
    with tempfile.NamedTemporaryFile("w", suffix=".tokens", delete=False) as f:
        f.write("\n".join(minted))
    srv = FunctionServer(ROOT / "functions" / "main.py", "get_context", redis_url, tokens=tokens)
    srv.start()
    try:
        _check(srv, "get_context", sids)
        return load(
            srv.port,
            "get_context",
            sids,
            requests=requests,
            warmup=warmup,
            connections=1,
            rounds=rounds,
            server_pid=srv.pid,
            token_file=f.name,
        )
    finally:
        srv.stop()
        os.unlink(f.name)


def _check(srv: FunctionServer, kind: str, sids: list[str]) -> None:
    """One request by hand before the load: a wrong setup fails here, loudly."""
    base = f"http://127.0.0.1:{srv.port}/"
    who = {"Authorization": f"Bearer {srv.token}"} if srv.token else {"X-User-Id": UID}
    if kind == "append":
        data = json.dumps({"session_id": sids[0], "role": "user", "content": "check"}).encode()
        req = urllib.request.Request(base, data=data, headers={**who, "Content-Type": "application/json"})
    elif kind == "get_context":
        req = urllib.request.Request(f"{base}?session_id={sids[0]}", headers=who)
    else:
        req = urllib.request.Request(base)
    deadline = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                body = json.loads(r.read())
                if kind != "empty" and body.get("storage") != "redis":
                    raise RuntimeError(f"{kind} was not served from redis: {body}")
                return
        except ConnectionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
