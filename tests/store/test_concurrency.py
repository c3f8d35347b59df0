"""Several instances at once: threads and processes appending to one session."""

from __future__ import annotations

import multiprocessing as mp
from concurrent.futures import ThreadPoolExecutor

from tests.store import workers
from tests.store.conftest import make_manager


def test_concurrent_appends_from_threads_exactly_once_summaries(redis_server, uid):
    m = make_manager(redis_server.url, firestore=False)
    sid = m.create_session({}, user_id=uid).session_id
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda i: m.add_message(sid, "user", f"t{i}", user_id=uid), range(80)))
    seqs = sorted(r.seq for r in results)
    assert seqs == list(range(1, 81))  # every message kept, count exact
    claims = [r.seq for r in results if r.seq % 5 == 0]
    assert len(claims) == 16
    # exactly one summary per 5 messages was produced or superseded by a later one,
    # never two for the same window: the stored summary covers the last claim
    assert m.get_context_for_llm(sid).summary.message_count == 80
    assert sum(r.summary_updated for r in results) <= 16


def test_concurrent_appends_from_processes(redis_server, uid):
    m = make_manager(redis_server.url, firestore=False)
    sid = m.create_session({}, user_id=uid).session_id
    ctx = mp.get_context("spawn")
    with ctx.Pool(3) as pool:
        parts = pool.starmap(workers.append_many, [(redis_server.url, sid, uid, w, 20) for w in range(3)])
    seqs = sorted(s for p in parts for s, _ in p)
    assert seqs == list(range(1, 61))
    summaries = [s for p in parts for s, updated in p if updated]
    assert all(s % 5 == 0 for s in summaries)
    assert len(set(summaries)) == len(summaries)  # no window summarised twice
    assert m.get_context_for_llm(sid).summary.message_count == 60
    hist = m.get_history(sid, 8).messages
    assert [x.seq for x in hist] == list(range(53, 61))


def test_analytics_buffer_is_read_by_another_instance(redis_server, firestore_emulator, uid):
    """One process converses, this one ends the session: the buffer lives in Redis."""
    ctx = mp.get_context("spawn")
    with ctx.Pool(1) as pool:
        sid = pool.apply(workers.converse, (redis_server.url, uid, 6))
    m = make_manager(redis_server.url)
    end = m.end_session_with_analytics(sid, "agent-7", user_id=uid)
    assert (end.queries_recorded, end.message_count) == (6, 12)
    rows = m.firestore.read_analytics(sid)
    assert [(q["query"], q["response"], q["sources"]) for q in rows] == [
        (f"question {i}", f"answer {i}", [f"kb_{i}"]) for i in range(6)
    ]
    assert all(q["confidence"] == 0.5 and q["collection"] == "faq" for q in rows)
