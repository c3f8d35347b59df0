"""Scenario 4: many parallel appends to one session from several processes (each its own
HTTP connection pool; the emulator spreads them over several append_message instances).

Every message is kept in order of acceptance (seq unique and contiguous, each process' own
messages in the order it sent them), ``message_count`` is exact and there is one rolling
summary per 5 messages. All messages are assistant answers so that the analytics written
at the end list every one of them with its seq: that is how "every message kept" is read
back (Redis holds only the last 8).
"""

from __future__ import annotations

import multiprocessing as mp
from typing import Any

import pytest

from tests.clients import Api, User
from tests.reliability.conftest import Report, doc, scaled

pytestmark = [pytest.mark.reliability, pytest.mark.slow]

SCENARIO = "concurrent appends, one session"


def _worker(args: tuple[str, str, str, str, int, int]) -> list[tuple[str, int, int, bool, str]]:
    base_url, auth_host, token, sid, proc, count = args
    api = Api(base_url, auth_host)
    user = User("", token)
    out = []
    for i in range(count):
        content = f"p{proc} m{i}: answer."
        r = api.append(
            user, sid, "assistant", content, {"sources": [f"kb_cc_{proc}"], "confidence": 0.5}, cmid=f"p{proc}-m{i}"
        )
        body = r.body or {}
        out.append(
            (
                content,
                r.status,
                int(body.get("message_count") or 0),
                bool(body.get("summary_updated")),
                r.text[:200] if r.status != 201 else "",
            )
        )
    return out


def test_parallel_appends_across_processes(api: Api, warm: Any, fsdb: Any, report: Report) -> None:
    procs, per = scaled(4, 2), scaled(15, 5)
    # The rate limit (RATE_LIMIT_PER_MINUTE, 120 by default) counts per user: stay under it.
    per = min(per, 100 // procs)
    n = procs * per
    warm(procs)
    user = api.new_user()
    sid = api.new_session(user)
    ctx = mp.get_context("spawn")
    with ctx.Pool(procs) as pool:
        results = pool.map(_worker, [(api.base_url, api.auth_host, user.token, sid, p, per) for p in range(procs)])
    rows = [r for res in results for r in res]
    failed = [r for r in rows if r[1] != 201]
    seqs = sorted(r[2] for r in rows if r[1] == 201)
    per_proc_ordered = all([r[2] for r in res] == sorted(r[2] for r in res) for res in results)
    summaries = sum(1 for r in rows if r[3])
    end = api.end(user, sid)
    ana = doc(fsdb, f"analytics/{sid}") or {}
    by_seq = {q.get("seq"): q.get("response") for q in ana.get("queries") or []}
    accepted = {r[2]: r[0] for r in rows if r[1] == 201}
    lost = [s for s, c in accepted.items() if by_seq.get(s) != c]

    s = SCENARIO
    report.add(s, "size", f"{procs} processes x {per} appends")
    report.add(s, "appends failed", len(failed), "0", not failed)
    contiguous = seqs == list(range(1, n + 1))
    report.add(s, "seq unique and contiguous 1..N", contiguous, "True", contiguous)
    report.add(s, "each process' messages in the order it sent them", per_proc_ordered, "True", per_proc_ordered)
    count = (end.body or {}).get("message_count")
    report.add(s, "message_count at end", count, str(n), count == n)
    report.add(s, "summary_updated answers", summaries, str(n // 5), summaries == n // 5)
    report.add(s, "accepted messages missing or misplaced in analytics", len(lost), "0", not lost)
    assert not failed, failed[:5]
    assert seqs == list(range(1, n + 1)), seqs
    assert per_proc_ordered
    assert end.status == 200 and count == n, end.text
    assert not lost, lost[:10]
    assert summaries == n // 5
