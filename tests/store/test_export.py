"""A user's export against real Redis and the Firestore emulator: with a canary in every
message, the export holds every canary the user wrote, wherever it is (an ended session's
final window and analytics, an active session's window and buffered analytics in Redis, the
messages Firestore held while Redis was down, a session created while Firestore was down),
paged without a gap or a repeat, and nothing of another user's."""

from __future__ import annotations

import json
import time
import uuid

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
