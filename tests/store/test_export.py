"""A user's export against real Redis and the Firestore emulator: with a canary in every
message, the export holds every canary the user wrote, wherever it is (an ended session's
final window and analytics, an active session's window and buffered analytics in Redis, the
messages Firestore held while Redis was down, a session created while Firestore was down),
paged without a gap or a repeat, and nothing of another user's."""

from __future__ import annotations

import json
import time
import tracemalloc
import uuid

import pytest

from shared.cursor import encode_cursor
from shared.errors import InvalidArgument
from shared.features.export import DataRights
from shared.store.firestore.reports import ReportStore
from tests.store.conftest import dead_firestore_client, make_manager


def canary() -> str:
    return "canary-" + uuid.uuid4().hex[:12]


def converse(m, sid: str, uid: str, n: int, written: list[str]) -> None:
    for _ in range(n):
        q, a = canary(), canary()
        m.add_message(sid, "user", f"question {q}", user_id=uid)
        m.add_message(sid, "assistant", f"answer {a}", {"sources": ["faq_x"], "confidence": 0.7}, user_id=uid)
        written += [q, a]


def test_the_export_holds_every_canary_the_user_wrote(redis_server_persistent, firestore_emulator, uid):
    m = make_manager(redis_server_persistent.url)
    other = "u-" + uuid.uuid4().hex[:12]
    written: list[str] = []
    ended = m.create_session({}, user_id=uid).session_id
    converse(m, ended, uid, 3, written)
    m.end_session_with_analytics(ended, user_id=uid)
    active = m.create_session({}, user_id=uid).session_id
    converse(m, active, uid, 2, written)
    redis_server_persistent.kill()  # an outage: these go to Firestore's pending messages
    converse(m, active, uid, 1, written)
    redis_server_persistent.start()
    time.sleep(m.settings.redis_breaker_cooldown_s + 0.1)  # the breaker lets Redis be tried again
    live = m.firestore
    m.firestore = type(live)(m.settings, client=dead_firestore_client())
    no_doc = m.create_session({}, user_id=uid).session_id  # Firestore down: Redis only
    converse(m, no_doc, uid, 1, written)
    m.firestore = live
    theirs = m.create_session({}, user_id=other).session_id
    foreign: list[str] = []
    converse(m, theirs, other, 1, foreign)

    rights = DataRights(m, ReportStore(m.firestore.fs), m.stats)
    pages, cursor = [], None
    while True:
        page = rights.export(uid, cursor=cursor, limit=1)
        pages.append(page)
        cursor = page["next_cursor"]
        if cursor is None:
            break
    text = json.dumps(pages)
    assert [c for c in written if c not in text] == []
    assert [c for c in foreign if c in text] == [] and other not in text
    ids = [s["session_id"] for p in pages for s in p["sessions"]]
    assert sorted(ids) == sorted({ended, active, no_doc}) and len(ids) == 3  # no gap, no repeat
    by_id = {s["session_id"]: s for p in pages for s in p["sessions"]}
    assert by_id[ended]["status"] == "ended" and len(by_id[ended]["analytics"]) == 3
    assert len(by_id[active]["analytics"]) == 3  # two buffered in Redis, one held in Firestore
    assert pages[0]["user"]["recent_sessions"] is not None


BIG = 30_000  # bytes of filler per message: 16 question/answer pairs make a session of ~1.5 MiB


def heavy_user(m, uid: str, n: int, written: list[str]) -> list[str]:
    """n ended sessions, every other one ~1.5 MiB of JSON (final window + analytics), the
    rest ~0.2 MiB: a page holds several small ones, a big one spans pages."""
    sids = []
    for i in range(n):
        sid = m.create_session({}, user_id=uid).session_id
        for _ in range(16 if i % 2 == 0 else 3):
            q, a = canary(), canary()
            m.add_message(sid, "user", f"question {q} " + "q" * BIG, user_id=uid)
            m.add_message(sid, "assistant", f"answer {a} " + "a" * BIG, {"confidence": 0.7}, user_id=uid)
            written += [q, a]
        m.end_session_with_analytics(sid, user_id=uid)
        sids.append(sid)
    return sids


def all_pages(rights, uid: str) -> tuple[list[dict], list[int], list[int]]:
    """Every page from the first, with the JSON bytes of each (as the edge writes it) and
    the peak of traced memory while each was built."""
    pages, sizes, peaks, cursor = [], [], [], None
    while True:
        tracemalloc.start()
        try:
            page = rights.export(uid, cursor=cursor)
            peaks.append(tracemalloc.get_traced_memory()[1])
        finally:
            tracemalloc.stop()
        sizes.append(len(json.dumps(page, ensure_ascii=False, separators=(",", ":")).encode()))
        pages.append(page)
        cursor = page["next_cursor"]
        if cursor is None or len(pages) > 500:
            return pages, sizes, peaks


def test_a_heavy_users_export_comes_in_pages_bounded_by_bytes(redis_server, firestore_emulator, uid):
    budget = 1024 * 1024
    m = make_manager(redis_server.url, export_page_max_bytes=budget)
    other = "u-" + uuid.uuid4().hex[:12]
    written: list[str] = []
    sids = heavy_user(m, uid, 32, written)
    foreign: list[str] = []
    theirs = m.create_session({}, user_id=other).session_id
    converse(m, theirs, other, 1, foreign)

    pages, sizes, peaks = all_pages(DataRights(m, ReportStore(m.firestore.fs), m.stats), uid)
    total = sum(sizes)
    figures = f"pages={len(pages)} answer bytes={sizes[:3]}... total={total} peaks={max(peaks)}"
    print(figures, f"largest page={max(sizes)}")
    assert max(sizes) <= budget, figures
    # A page's memory follows the budget, not the user's data (~24 MiB of it here; before
    # the pages were bounded: one page of 25.1 MB, a peak of 26 MB).
    assert max(peaks) <= 6 * budget, figures
    assert total > 20 * budget and len(pages) >= total // budget, figures

    # Reassembled, each session once, in order, its parts back to back; every message and
    # analytics entry exactly once.
    merged: dict[str, dict] = {}
    order: list[str] = []
    for p in pages:
        for s in p["sessions"]:
            if s["session_id"] in merged:
                assert order[-1] == s["session_id"], "a session's parts are consecutive"
                merged[s["session_id"]]["messages"] += s["messages"]
                merged[s["session_id"]]["analytics"] += s["analytics"]
            else:
                merged[s["session_id"]] = s
                order.append(s["session_id"])
    assert order == sids
    for i, sid in enumerate(sids):
        pairs = 16 if i % 2 == 0 else 3
        s = merged[sid]
        aseqs = [q["seq"] for q in s["analytics"]]
        assert aseqs == sorted(set(aseqs)) and len(aseqs) == pairs, sid
        seqs = [x["seq"] for x in s["messages"]]
        assert seqs == sorted(set(seqs)) and len(seqs) == min(2 * pairs, m.settings.message_window), sid
    text = json.dumps(pages)
    assert [c for c in written if c not in text] == []
    assert [c for c in foreign if c in text] == [] and other not in text


def test_the_totals_are_zeros_before_the_first_ended_session(redis_server, firestore_emulator, uid):
    """As get_user_stats answers: 0, not null, while the user has no stats document."""
    m = make_manager(redis_server.url)
    sid = m.create_session({}, user_id=uid).session_id
    converse(m, sid, uid, 1, [])
    page = DataRights(m, ReportStore(m.firestore.fs), m.stats).export(uid)
    stats = m.get_user_stats(uid)
    assert (
        page["user"]
        == {
            "total_sessions": 0,
            "total_messages": 0,
            "total_queries": 0,
            "last_active_at": None,
            "recent_sessions": [],
        }
        == {k: v for k, v in stats.model_dump().items() if k != "user_id"}
    )


def test_a_cursor_naming_another_users_session_is_a_400_naming_the_field(redis_server, firestore_emulator, uid):
    m = make_manager(redis_server.url)
    other = "u-" + uuid.uuid4().hex[:12]
    theirs = m.create_session({}, user_id=other).session_id
    foreign: list[str] = []
    converse(m, theirs, other, 2, foreign)
    ended = m.create_session({}, user_id=other).session_id
    converse(m, ended, other, 2, foreign)
    m.end_session_with_analytics(ended, user_id=other)
    mine = m.create_session({}, user_id=uid).session_id
    converse(m, mine, uid, 1, [])
    reports = ReportStore(m.firestore.fs)
    rights = DataRights(m, reports, m.stats)
    for sid in (theirs, ended):
        ts = float(reports.session(sid)["created_at"])
        for cursor in (encode_cursor(ts, sid, 0), encode_cursor(ts, sid)):
            with pytest.raises(InvalidArgument) as err:
                rights.export(uid, cursor=cursor)
            assert err.value.details == {"field": "cursor"}
    # The caller's own session at another created_at than it has: not a cursor given out.
    ts = float(reports.session(mine)["created_at"])
    with pytest.raises(InvalidArgument):
        rights.export(uid, cursor=encode_cursor(ts + 1, mine, 0))
    page = rights.export(uid, cursor=encode_cursor(ts, mine, 1))  # after the question (seq 1): the answer
    assert [s["session_id"] for s in page["sessions"]] == [mine] and len(page["sessions"][0]["messages"]) == 1
    assert not [c for c in foreign if c in json.dumps(page)]


def test_exports_at_once_on_one_instance_are_capped(firestore_emulator, uid, monkeypatch):
    """A page may take a few times EXPORT_PAGE_MAX_BYTES while it is built; with 80 requests
    at once on a 512 MiB instance only a few of them may be exports. A slot held (as an export
    in progress holds it) makes the next one past EXPORT_MAX_CONCURRENT a 503 with
    Retry-After, and the slot's release lets it through."""
    from shared import edge
    from shared.edge import api
    from tests.unit.test_http_edge import client, error_code

    for name in ("FUNCTION_TARGET", "FIREBASE_AUTH_EMULATOR_HOST", "REDIS_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("FIRESTORE_ENABLED", raising=False)
    monkeypatch.setenv("AUTH_DISABLED", "true")
    monkeypatch.setenv("EXPORT_MAX_CONCURRENT", "2")
    monkeypatch.setenv("EXPORT_SLOT_WAIT_S", "0")
    edge.reset()
    try:
        get = client("export_my_data").get
        assert get("/", headers={"X-User-Id": uid}).status_code == 200
        held = [api.export_slots().acquire(blocking=False) for _ in range(2)]
        assert held == [True, True]
        busy = get("/", headers={"X-User-Id": uid})
        assert busy.status_code == 503 and error_code(busy) == "unavailable"
        assert int(busy.headers["Retry-After"]) >= 1
        api.export_slots().release()
        assert get("/", headers={"X-User-Id": uid}).status_code == 200
        api.export_slots().release()
    finally:
        edge.reset()
