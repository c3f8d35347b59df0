"""Scenario 2: Firestore down mid-run, through the running functions.

How Firestore is taken down: the stack's Firestore emulator process (the one at
FIRESTORE_EMULATOR_HOST, found by its listening socket and checked to be the Firestore
emulator) is frozen with SIGSTOP and resumed with SIGCONT. Its port still accepts TCP
connections but nothing answers — the way an unreachable backend behind a load balancer
or a network partition looks — and no data is lost, as with a real Firestore outage.
(Killing the emulator would lose its in-memory data and restarting it is not possible
under ``emulators:exec``.) The process is always resumed, also on failure and at exit.

Promises: appends and reads go on from Redis; ``end_session`` answers 503 and leaves the
session usable; once Firestore is back a retried end writes the analytics exactly once and
the trigger counts the session once.
"""

from __future__ import annotations

import atexit
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.clients import Api
from tests.reliability.conftest import Report, doc, kb_usage, p99, poll

pytestmark = [pytest.mark.reliability, pytest.mark.slow]

SCENARIO = "firestore down"


def pid_listening_on(port: int) -> int | None:
    """The pid of the process with a listening TCP socket on ``port`` (Linux /proc)."""
    inodes: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            cols = line.split()
            if int(cols[1].rsplit(":", 1)[1], 16) == port and cols[3] == "0A":  # LISTEN
                inodes.add(cols[9])
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            for fd in (proc / "fd").iterdir():
                link = os.readlink(fd)
                if link.startswith("socket:[") and link[8:-1] in inodes:
                    return int(proc.name)
        except OSError:
            continue
    return None


class FrozenFirestore:
    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.frozen = False
        atexit.register(self.thaw)

    def freeze(self) -> None:
        os.kill(self.pid, signal.SIGSTOP)
        self.frozen = True

    def thaw(self) -> None:
        if self.frozen:
            try:
                os.kill(self.pid, signal.SIGCONT)
            except ProcessLookupError:
                pass
            self.frozen = False


@pytest.fixture
def firestore_process() -> Iterator[FrozenFirestore]:
    host = os.environ.get("FIRESTORE_EMULATOR_HOST", "")
    if not host:
        pytest.fail("FIRESTORE_EMULATOR_HOST is not set: run with `make reliability`")
    pid = pid_listening_on(int(host.rsplit(":", 1)[1]))
    if pid is None:
        pytest.fail(f"no process listens on {host}")
    cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    if "firestore" not in cmdline.lower():
        pytest.fail(f"the process on {host} is not the Firestore emulator: {cmdline[:200]}")
    fs = FrozenFirestore(pid)
    try:
        yield fs
    finally:
        fs.thaw()


def pair(api: Api, user: Any, sid: str, i: int, kb: str) -> list[Any]:
    return [
        api.append(user, sid, "user", f"question {i}?"),
        api.append(user, sid, "assistant", f"answer {i}.", {"sources": [kb], "confidence": 0.7}),
        api.context(user, sid),
    ]


def test_firestore_down(  # noqa: PLR0915 - one scenario, read top to bottom
    api: Api, fsdb: Any, firestore_process: FrozenFirestore, report: Report
) -> None:
    user = api.new_user()
    kb = f"kb_fsdown_{user.uid[:6]}"
    a = api.new_session(user)
    before = [r for i in range(2) for r in pair(api, user, a, i, kb)]
    assert all(r.status in (200, 201) for r in before)

    firestore_process.freeze()
    try:
        t_down = time.monotonic()
        during = [r for i in range(2, 6) for r in pair(api, user, a, i, kb)]
        created = api.create(user)  # a session born while Firestore is down
        b = (created.body or {}).get("session_id", "")
        during += [created] + ([r for i in range(2) for r in pair(api, user, b, i, kb)] if b else [])
        end_a = api.end(user, a)
        end_b = api.end(user, b) if b else None
        # The refused end leaves the session open: the conversation goes on.
        after_end = pair(api, user, a, 6, kb)
        down_for = time.monotonic() - t_down
    finally:
        firestore_process.thaw()
    t_up = time.monotonic()

    failed = [f"{r.status} {r.text[:100]}" for r in during + after_end if r.status not in (200, 201)]
    not_redis = [
        r.body.get("storage") for r in during + after_end if r.status in (200, 201) and r.body.get("storage") != "redis"
    ]
    lat = [r.latency_s for r in during + after_end if r is not created]
    honest = [r.status for r in (end_a, end_b) if r is not None]

    # Firestore is back: retried ends (bounded) until they succeed.
    def ended(sid: str) -> Any:
        r = api.end(user, sid)
        return r if r.status == 200 else None

    res_a = poll(lambda: ended(a), 40, 1.0)
    recovered_s = time.monotonic() - t_up
    res_b = poll(lambda: ended(b), 40, 1.0) if b else None
    ana_a = doc(fsdb, f"analytics/{a}") or {}
    time.sleep(1.0)
    again = [api.end(user, a), api.end(user, b)] if b else [api.end(user, a)]
    ana_a2 = doc(fsdb, f"analytics/{a}") or {}

    answers_a = [f"answer {i}." for i in range(7)]
    got_a = [q.get("response") for q in ana_a.get("queries") or []]
    missing = [x for x in answers_a if x not in got_a]
    dupes = len(got_a) - len(set(got_a))
    ana_b = doc(fsdb, f"analytics/{b}") if b else None
    got_b = [q.get("response") for q in (ana_b or {}).get("queries") or []]
    missing_b = [x for x in ("answer 0.", "answer 1.") if b and x not in got_b]

    want_sessions = 2 if b else 1

    def counted() -> bool:
        d = doc(fsdb, f"users/{user.uid}")
        return bool(d and d.get("total_sessions", 0) >= want_sessions)

    poll(counted, 30)
    time.sleep(1.0)
    u = doc(fsdb, f"users/{user.uid}") or {}
    kb_count = kb_usage(fsdb, kb)["session_count"]

    s = SCENARIO
    report.add(s, "how", "stack Firestore emulator frozen (SIGSTOP) then resumed (SIGCONT)")
    report.add(s, "outage length (s)", round(down_for, 1))
    report.add(s, "appends/reads/creates failed while Firestore down", len(failed), "0", not failed)
    report.add(s, "answers not from redis while Firestore down", len(not_redis), "0", not not_redis)
    # A figure of the report, not a bound: latency depends on the machine's load.
    report.add(s, "p99 latency of appends/reads while Firestore down (ms)", round(p99(lat) * 1000, 1))
    report.add(
        s,
        "create_session latency while Firestore down (ms; pays FIRESTORE_TIMEOUT_S)",
        round(created.latency_s * 1000, 1),
    )
    report.add(
        s,
        "end_session latency while Firestore down (ms)",
        [round(r.latency_s * 1000, 1) for r in (end_a, end_b) if r is not None],
    )
    report.add(s, "end_session while Firestore down", honest, "503", all(x == 503 for x in honest))
    report.add(s, "time from Firestore back to a successful retried end (s)", round(recovered_s, 1))
    report.add(
        s,
        "answers missing from analytics / duplicated",
        f"{len(missing) + len(missing_b)} / {dupes}",
        "0 / 0",
        not missing and not missing_b and not dupes,
    )
    rewritten = ana_a2.get("ended_at") != ana_a.get("ended_at")
    report.add(s, "analytics rewritten by a later retried end", rewritten, "False", not rewritten)
    counted_ok = u.get("total_sessions") == want_sessions and kb_count == want_sessions
    report.add(
        s,
        "trigger counted each session once (users, kb_usage)",
        f"sessions {u.get('total_sessions')}, kb {kb_count}",
        f"{want_sessions}, {want_sessions}",
        counted_ok,
    )

    assert not failed, failed
    assert created.status == 201 and b, created.text
    assert not not_redis, not_redis
    assert all(x == 503 for x in honest), [(r.status, r.text[:100]) for r in (end_a, end_b) if r is not None]
    assert res_a is not None, "the retried end did not succeed after Firestore came back"
    assert res_b is not None or not b, "the retried end of the session born in the outage did not succeed"
    assert all(r.status == 200 for r in again)
    assert res_a.body["message_count"] == 14, res_a.body
    assert not missing and not missing_b and not dupes, (missing, missing_b, got_a)
    assert not rewritten
    assert counted_ok, (u, kb_count)
