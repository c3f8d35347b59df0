"""What every section shares: statistics, the machine, sample payloads, processes it owns
(free ports and stopping a child come from tests/harness.py, as the tests' do)."""

from __future__ import annotations

import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests.harness import free_port, stop_process

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
FIRESTORE_JAR = Path("/usr/lib/google-cloud-sdk/platform/cloud-firestore-emulator/cloud-firestore-emulator.jar")
PROJECT = "demo-chat-memory"

# Realistic chat turns: a short question, a longer answer citing knowledge-base entries.
USER_TEXT = "How do I reset the password of my account if I no longer have access to the recovery e-mail?"
ASSISTANT_TEXT = (
    "You can reset it from the sign-in page: choose 'Forgot password', then 'I no longer have access to "
    "this e-mail'. We will ask two questions about your account and send a one-time code to the phone "
    "number on file. If no phone number is on file, open a support ticket with a photo ID; the team "
    "answers within one business day. After the reset, sign out of other devices from Settings > "
    "Security, and add a new recovery e-mail so this does not happen again."
)


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100), nearest rank on sorted values."""
    if not values:
        return float("nan")
    s = sorted(values)
    k = max(0, min(len(s) - 1, round(q / 100 * (len(s) - 1))))
    return s[k]


def summarize_rounds(
    rounds: list[list[float]], cpu: list[float] | None = None, server_cpu: list[float] | None = None
) -> dict[str, Any]:
    """Per round: median and p99. Reported: the median of the rounds' medians and p99s,
    and the spread of the round medians (how much repeating changed the answer); with
    the CPU µs per op of this thread (``cpu``) and of redis-server (``server_cpu``)."""
    meds = [statistics.median(r) for r in rounds]
    p99s = [percentile(r, 99) for r in rounds]
    extra: dict[str, Any] = {}
    if cpu:
        extra["cpu_us"] = statistics.median(cpu)
    if server_cpu:
        extra["server_cpu_us"] = statistics.median(server_cpu)
    return extra | {
        "median": statistics.median(meds),
        "p99": statistics.median(p99s),
        "rounds": len(rounds),
        "n_per_round": len(rounds[0]) if rounds else 0,
        "round_medians": [round(m, 1) for m in meds],
    }


def time_ops(fn: Callable[[int], Any], n: int, *, warmup: int, rounds: int) -> dict[str, Any]:
    """Run fn(i) warmup times untimed, then `rounds` rounds of n timed calls (µs each)."""
    for i in range(warmup):
        fn(i)
    out: list[list[float]] = []
    i = warmup
    clock = time.perf_counter_ns
    for _ in range(rounds):
        samples: list[float] = []
        for _ in range(n):
            t0 = clock()
            fn(i)
            samples.append((clock() - t0) / 1000)
            i += 1
        out.append(samples)
    return summarize_rounds(out)


def machine() -> dict[str, Any]:
    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    redis_version = ""
    if shutil.which("redis-server"):
        out = subprocess.run(["redis-server", "--version"], capture_output=True, text=True, check=False).stdout
        redis_version = next((w.split("=", 1)[1] for w in out.split() if w.startswith("v=")), out.strip())
    from importlib.metadata import version

    def v(pkg: str) -> str:
        try:
            return version(pkg)
        except Exception:  # noqa: BLE001 - a missing package is reported as such
            return "absent"

    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "os": f"{platform.system()} {platform.release()}",
        "redis_server": redis_version,
        "redis_py": v("redis"),
        "functions_framework": v("functions-framework"),
        "gunicorn": v("gunicorn"),
        "firebase_functions": v("firebase-functions"),
        "google_cloud_firestore": v("google-cloud-firestore"),
    }


def busy_probe(seconds: float = 0.5) -> dict[str, Any]:
    """How busy the machine is while the bench itself sleeps: other processes' load,
    which this shared machine may carry. Share of all cores in use, from /proc/stat."""

    def snap() -> tuple[int, int]:
        vals = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        idle = vals[3] + (vals[4] if len(vals) > 4 else 0)
        return sum(vals), idle

    try:
        t1, i1 = snap()
        time.sleep(seconds)
        t2, i2 = snap()
        busy = 1 - (i2 - i1) / max(1, t2 - t1)
    except (OSError, ValueError, IndexError):
        return {}
    return {"busy_pct": round(busy * 100), "loadavg_1m": round(os.getloadavg()[0], 2)}


_TICK_MS = 1000 / os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 10.0


def proc_cpu_ms(pid: int, *, descendants: bool = True) -> float:
    """CPU time (user + system, ms) used so far by a live process and its live
    descendants, from /proc (tick resolution, 10 ms). 0.0 where /proc is missing.
    CPU time, unlike wall time, barely moves when other processes load the machine."""
    total = 0.0
    todo = [pid]
    while todo:
        p = todo.pop()
        try:
            stat = Path(f"/proc/{p}/stat").read_text()
            fields = stat.rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) * _TICK_MS
            if descendants:
                for task in Path(f"/proc/{p}/task").iterdir():
                    kids = (task / "children").read_text().split()
                    todo.extend(int(k) for k in kids)
        except (OSError, ValueError, IndexError):
            continue
    return total


def pin(cpu: int) -> Callable[[], None] | None:
    """A preexec_fn pinning a child to one CPU (None on a one-core machine)."""
    if (os.cpu_count() or 1) < 2 or not hasattr(os, "sched_setaffinity"):
        return None
    return lambda: os.sched_setaffinity(0, {cpu})


def wait_port(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.01)
    raise RuntimeError(f"nothing listens on port {port} after {timeout}s")


class FirestoreEmulator:
    """The installed Cloud Firestore emulator on a free loopback port, or the one
    FIRESTORE_EMULATOR_HOST already names. ``skip_reason`` says why there is none."""

    def __init__(self) -> None:
        self.proc: subprocess.Popen[bytes] | None = None
        self.host = os.environ.get("FIRESTORE_EMULATOR_HOST", "")
        self.skip_reason = ""

    def start(self) -> bool:
        if self.host:
            return True
        java = shutil.which("java")
        if not FIRESTORE_JAR.exists() or not java:
            self.skip_reason = f"no Firestore emulator: {FIRESTORE_JAR} exists={FIRESTORE_JAR.exists()}, java={java}"
            return False
        port = free_port()
        RESULTS.mkdir(parents=True, exist_ok=True)
        log = open(RESULTS / "firestore-emulator.log", "wb")  # noqa: SIM115 - lives as long as the process
        self.proc = subprocess.Popen(
            [
                java,
                "-cp",
                str(FIRESTORE_JAR),
                "com.google.cloud.datastore.emulator.firestore.CloudFirestore",
                "--host=127.0.0.1",
                f"--port={port}",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self.skip_reason = (
                    f"Firestore emulator exited with {self.proc.returncode} (see bench/results/firestore-emulator.log)"
                )
                return False
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=0.5) as r:
                    if r.status == 200:
                        self.host = f"127.0.0.1:{port}"
                        return True
            except OSError:
                time.sleep(0.2)
        self.skip_reason = "Firestore emulator did not answer within 60 s"
        self.stop()
        return False

    def stop(self) -> None:
        if self.proc:
            stop_process(self.proc)


def python() -> str:
    return sys.executable


@contextmanager
def firestore_on_emulator() -> Iterator[Any]:
    """A Firestore client on a fresh emulator (FIRESTORE_EMULATOR_HOST pointing at it
    meanwhile), or, as a str, the reason there is none."""
    emu = FirestoreEmulator()
    if not emu.start():
        yield emu.skip_reason
        return
    old = os.environ.get("FIRESTORE_EMULATOR_HOST")
    os.environ["FIRESTORE_EMULATOR_HOST"] = emu.host
    try:
        from google.auth.credentials import AnonymousCredentials
        from google.cloud import firestore

        from shared.store.firestore.client import bound_rpc_deadlines

        yield bound_rpc_deadlines(firestore.Client(project=PROJECT, credentials=AnonymousCredentials()), 5.0)
    finally:
        if old is None:
            os.environ.pop("FIRESTORE_EMULATOR_HOST", None)
        else:
            os.environ["FIRESTORE_EMULATOR_HOST"] = old
        emu.stop()


def counting_pool(url: str, **kw: Any) -> tuple[Any, Any]:
    """A Redis connection pool whose connections count their round trips: (the connection
    class, whose ``sends`` is the count, one per pool; the pool)."""
    import redis

    from tests.store.test_redis_layer import CountingConnection

    conn_cls: Any = type("BenchCounting", (CountingConnection,), {"sends": 0})
    pool = redis.ConnectionPool.from_url(
        url, connection_class=conn_cls, decode_responses=True, health_check_interval=0, **kw
    )
    return conn_cls, pool
