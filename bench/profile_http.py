#!/usr/bin/env python3
"""Where the HTTP edge's CPU goes: section 3's load, sampled by py-spy (issue 15).

Starts its own redis-server, builds the section's sessions, serves one function with
functions-framework (the same FunctionServer as section 3: one gunicorn worker pinned to
CPU 0), attaches py-spy to the worker and runs bench/loadgen.py against it. Prints the
top functions by own share (the frame on top of the stack) and by cumulative share (the
frame anywhere on the stack) of the worker's samples of threads that were running: a
sample whose top frame is a wait (the gthread pool's threads on their queue, the event
loop in select, a request thread in recv for Redis's reply) is dropped. py-spy's own idle
detection and --gil both misattribute here (threads blocked in C are counted as running;
--gil's holder is often stale).

    (py-spy is in requirements-dev.txt: measuring only, never deployed)
    flock /tmp/stack.lock .venv/bin/python bench/profile_http.py --target get_context
        [--auth token] [--requests 6000] [--top 25] [--raw out.txt]

--auth token: a real RS256 ID token verified by firebase-admin (tests/tokens.py), as in
section 3's "real token" rows.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.common import python  # noqa: E402

PYSPY = str(Path(python()).parent / "py-spy")
_FRAME = re.compile(r"^(?P<fn>.*?) \((?P<file>[^()]*?)(?::\d+)?\)$")


def _short(frame: str) -> str:
    m = _FRAME.match(frame)
    if not m:
        return frame
    path = m.group("file")
    for marker in ("site-packages/", "lib/python3.11/", str(ROOT) + "/"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    return f"{m.group('fn')} ({path})"


# A thread whose top frame is one of these is waiting (py-spy cannot tell idle threads here:
# the gthread pool's threads blocked on their queue, the event loop in select, a request
# thread in recv for Redis's reply); its samples are dropped.
_WAITING = (
    "_worker (concurrent/futures/thread.py)",
    "select (selectors.py)",
    "EpollSelector.select (selectors.py)",
    "_PollLikeSelector.select (selectors.py)",
    "wait (threading.py)",
    "Condition.wait (threading.py)",
    "_HiredisParser.read_from_socket (redis/_parsers/hiredis.py)",
    "SocketBuffer._read_from_socket (redis/_parsers/socket.py)",
)


def summarize(raw: str, top: int) -> tuple[int, list[tuple[str, float, float]]]:
    """(samples, [(function, own share, cumulative share)]) from py-spy's raw (collapsed)
    output, over the samples of threads that were not waiting."""
    own: Counter[str] = Counter()
    cum: Counter[str] = Counter()
    total = 0
    for line in raw.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        frames = [_short(f) for f in stack.split(";")]
        if frames[-1] in _WAITING:
            continue
        # gunicorn's worker loop in the main thread is the accept/poll loop; the request
        # threads' stacks start at threading's bootstrap. Both are the worker's CPU.
        total += n
        own[frames[-1]] += n
        for f in set(frames):
            cum[f] += n
    names = sorted(cum, key=lambda f: -cum[f])
    rows = [(f, own[f] / total, cum[f] / total) for f in names]
    by_own = sorted(rows, key=lambda r: -r[1])[:top]
    return total, by_own + [r for r in rows[: top * 2] if r not in by_own][:top]


def main() -> int:  # noqa: PLR0915 - one linear script
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--target", default="get_context", choices=["get_context", "append_message", "empty"])
    ap.add_argument("--auth", default="off", choices=["off", "token"])
    ap.add_argument("--requests", type=int, default=6000)
    ap.add_argument("--connections", type=int, default=8)
    ap.add_argument("--rate", type=int, default=997, help="py-spy samples per second")
    ap.add_argument("--top", type=int, default=25)
    ap.add_argument("--raw", type=Path, help="keep py-spy's collapsed stacks here")
    a = ap.parse_args()

    from bench import http_load
    from bench.store_ops import UID, conversation, manager_for, settings_for
    from tests.harness import RedisServer

    redis_srv = RedisServer()
    redis_srv.start()
    tokens = None
    try:
        m = manager_for(settings_for(redis_srv.url))
        kind = {"get_context": "get_context", "append_message": "append", "empty": "empty"}[a.target]
        if kind == "get_context":
            sids = [conversation(m) for _ in range(20)]
        elif kind == "append":
            sids = [m.create_session({"platform": "web"}, user_id=UID).session_id for _ in range(a.requests // 30 + 20)]
        else:
            sids = []
        source = ROOT / ("bench/fns/empty_main.py" if kind == "empty" else "functions/main.py")
        target = "empty" if kind == "empty" else a.target
        if a.auth == "token":
            from tests.tokens import GoogleStandIn

            tokens = GoogleStandIn().start()
        srv = http_load.FunctionServer(source, target, redis_srv.url, tokens=tokens)
        srv.start()
        try:
            http_load._check(srv, kind, sids)  # noqa: SLF001 - the section's own sanity check
            worker = _worker_pid(srv.pid)
            raw = Path(a.raw or tempfile.mktemp(prefix="cm-pyspy-", suffix=".txt"))
            spy = subprocess.Popen(
                [PYSPY, "record", "--pid", str(worker), "--format", "raw", "-r", str(a.rate), "-o", str(raw)],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )
            time.sleep(1.0)  # py-spy attached
            res = http_load.load(
                srv.port,
                kind,
                sids,
                requests=a.requests,
                warmup=0,
                connections=a.connections,
                rounds=1,
                server_pid=srv.pid,
                token=srv.token,
            )
            spy.send_signal(signal.SIGINT)
            _, err = spy.communicate(timeout=60)
            samples, rows = summarize(raw.read_text(), a.top)
        finally:
            srv.stop()
    finally:
        if tokens:
            tokens.stop()
        redis_srv.stop()
    print(
        f"{a.target}, auth {a.auth}: {res['rps']:.0f} req/s, server CPU {res['server_cpu_us_per_req']:.0f} µs/req "
        f"(under py-spy), {samples} samples, statuses {res['statuses']}"
    )
    print("| function | own | cumulative |\n|---|---|---|")
    for name, o, c in rows:
        print(f"| {name} | {o:.1%} | {c:.1%} |")
    if not a.raw:
        os.unlink(raw)
    return 0


def _worker_pid(master: int | None) -> int:
    assert master is not None
    for _ in range(100):
        kids = Path(f"/proc/{master}/task/{master}/children").read_text().split()
        if kids:
            return int(kids[0])
        time.sleep(0.05)
    return master  # no separate worker (werkzeug)


if __name__ == "__main__":
    sys.exit(main())
