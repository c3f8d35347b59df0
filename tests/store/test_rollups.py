"""The reporting rollups against the Firestore emulator and a real redis-server: after
sessions whose trigger events are redelivered and one the sweep's repair counts, each day's
rollup equals a recount from the analytics documents, and the low-confidence list pages
newest first without a gap or a repeat, ties included."""

from __future__ import annotations

import random
import uuid
from typing import Any

from shared.core.manager import SessionManager
from shared.features.admin import Reports
from shared.features.sweep import repair_user_stats
from shared.features.triggers import handle_session_written
from shared.store.base import SYSTEM_END_REASONS
from shared.store.firestore import backfill, rollups
from shared.store.firestore.reports import ReportStore
from shared.store.firestore.scans import SessionScans
from tests.store.conftest import make_manager


class Clock:
    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def _manager(redis_url: str, clock: Clock) -> SessionManager:
    base = make_manager(redis_url)
    return SessionManager(base.settings, redis=base.redis, firestore=base.firestore, clock=clock)


def _session(m: SessionManager, uid: str, confidences: list[float | None], reason: str) -> str:
    sid = m.create_session({}, user_id=uid).session_id
    for i, conf in enumerate(confidences):
        m.add_message(sid, "user", f"question {i}?", user_id=uid)
        md: dict[str, Any] = {"sources": [f"faq_{i % 3}"], "collection": ["returns", "shipping"][i % 2]}
        if conf is not None:
            md["confidence"] = conf
        m.add_message(sid, "assistant", f"answer {i}", md, user_id=uid)
    # "timeout" is the sweep's own reason (the system ends, no user)
    m.end_session_with_analytics(sid, None, reason, user_id=None if reason in SYSTEM_END_REASONS else uid)
    return sid


def test_rollups_equal_a_recount_under_redelivery_and_repair(
    redis_server, firestore_emulator, uid, no_emulated_trigger
):
    day0 = 86400 * random.randint(21_000, 24_000)  # a day no other test writes
    clock = Clock(day0 + 3600)
    m = _manager(redis_server.url, clock)
    rng = random.Random(7)
    sids = []
    for n in range(9):
        clock.t = day0 + 86400 * (n % 3) + 3600  # three sessions on each of three days
        confs = [rng.choice([None, 0.05, 0.3, 0.49, 0.5, 0.72, 0.99, 1.0]) for _ in range(rng.randint(1, 5))]
        sids.append(_session(m, uid, confs, ["completed", "timeout"][n % 2]))
    for n, sid in enumerate(sids):
        doc = m.firestore.get_session(sid)
        if n % 3 == 2:
            continue  # this trigger run failed: the sweep's repair counts it
        handle_session_written(sid, {"status": "active"}, doc, f"e{n}", stats=m.stats)
        handle_session_written(sid, {"status": "active"}, doc, f"e{n}", stats=m.stats)  # redelivered
    repair_user_stats(SessionScans(m.firestore.fs), m.stats, clock.t + 60)
    repair_user_stats(SessionScans(m.firestore.fs), m.stats, clock.t + 60)  # a second repair counts nothing more

    expected: dict[str, dict[str, Any]] = {}
    for sid in sids:
        r = rollups.session_rollup(sid, m.firestore.get_session(sid), m.firestore.read_analytics(sid), 0.5)
        day = expected.setdefault(r.day, {})
        for k, v in r.increments().items():
            if isinstance(v, dict):
                sub = day.setdefault(k, {})
                for kk, vv in v.items():
                    sub[kk] = sub.get(kk, 0) + vv
            else:
                day[k] = day.get(k, 0) + v
    got = ReportStore(m.firestore.fs).rollup_days(sorted(expected))
    assert sorted(got) == sorted(expected) and len(expected) == 3
    for d, exp in expected.items():
        doc = {k: v for k, v in got[d].items() if k != "date"}
        assert doc.keys() == {k for k, v in exp.items() if v != {}}
        for k, v in exp.items():
            if isinstance(v, float):
                assert abs(doc[k] - v) < 1e-9, (d, k)
            elif v != {}:
                assert doc[k] == v, (d, k)


def test_the_low_confidence_list_pages_without_gaps_or_repeats(
    redis_server, firestore_emulator, uid, no_emulated_trigger
):
    day0 = 86400 * random.randint(24_001, 27_000)
    clock = Clock(day0 + 100)
    m = _manager(redis_server.url, clock)
    sids = []
    for n in range(4):
        clock.t = day0 + 100 + (n // 2)  # answers of two sessions share each timestamp: ties
        sid = _session(m, uid, [0.1, 0.2, 0.9, 0.3, 0.45, 0.05], "completed")
        handle_session_written(sid, {"status": "active"}, m.firestore.get_session(sid), f"w{n}", stats=m.stats)
        sids.append(sid)
    reports = Reports(ReportStore(m.firestore.fs), None)
    day = rollups.day_of(day0)
    seen: list[tuple[float, str, int]] = []
    cursor = None
    pages = 0
    while True:
        items, cursor = reports.low_confidence(day, day, 3, cursor, admin_uid="admin-pager")
        seen += [(it["timestamp"], it["session_id"], it["seq"]) for it in items]
        pages += 1
        if cursor is None:
            break
    assert len(seen) == 4 * 5 and len(set(seen)) == len(seen)  # five weak answers per session, each once
    assert [t for t, _, _ in seen] == sorted((t for t, _, _ in seen), reverse=True)
    assert pages >= 7
    report = reports.report(day, day)
    assert report["days"][0]["low_confidence"] == 20 and report["days"][0]["sessions"] == 4


def test_the_backfill_rebuilds_the_same_rollups_twice(redis_server, firestore_emulator, uid, no_emulated_trigger):
    day0 = 86400 * random.randint(27_001, 30_000)
    clock = Clock(day0 + 500)
    m = _manager(redis_server.url, clock)
    sids = [_session(m, uid, [0.2, 0.8, None], "completed") for _ in range(3)]
    for n, sid in enumerate(sids[:2]):  # the third is not counted yet: the backfill leaves it
        handle_session_written(sid, {"status": "active"}, m.firestore.get_session(sid), f"b{n}", stats=m.stats)
    day = rollups.day_of(clock.t)
    before = ReportStore(m.firestore.fs).rollup_days([day])[day]
    lost = m.firestore.db().collection("rollups").document(day)  # lost, or never written
    for shard in lost.collection(rollups.SHARDS).stream():
        shard.reference.delete()
    lost.delete()
    assert day not in ReportStore(m.firestore.fs).rollup_days([day])
    first = backfill.rebuild(m.stats, SessionScans(m.firestore.fs), 0.5, since_day=rollups.day_of(day0))
    assert first["not_counted_yet"] >= 1
    assert ReportStore(m.firestore.fs).rollup_days([day])[day] == before
    backfill.rebuild(m.stats, SessionScans(m.firestore.fs), 0.5, since_day=rollups.day_of(day0))
    assert ReportStore(m.firestore.fs).rollup_days([day])[day] == before


def test_reading_the_weak_answers_is_audited_with_the_sessions_it_handed_out(
    redis_server, firestore_emulator, uid, no_emulated_trigger
):
    """Issue 24, item 16: admin_low_confidence handed out users' questions with no audit."""
    day0 = 86400 * random.randint(27_001, 30_000)
    m = _manager(redis_server.url, Clock(day0 + 100))
    sid = _session(m, uid, [0.1, 0.2], "completed")
    handle_session_written(sid, {"status": "active"}, m.firestore.get_session(sid), "aud", stats=m.stats)
    store = ReportStore(m.firestore.fs)
    admin_uid = "admin-" + uuid.uuid4().hex[:8]
    day = rollups.day_of(day0)
    items, _ = Reports(store, None).low_confidence(day, day, 50, None, admin_uid=admin_uid)
    assert items
    assert any(it["session_id"] == sid for it in items)
    audit = [d.to_dict() for d in m.firestore.db().collection("admin_audit").where("admin", "==", admin_uid).stream()]
    assert len(audit) == 1 and audit[0]["action"] == "read_low_confidence", audit
    assert sid in audit[0]["session_ids"] and "query" not in audit[0] and "response" not in audit[0]
