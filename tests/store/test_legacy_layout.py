"""Sessions written by the six-key layout (before issue 15) survive the deploy of the
three-key one: moved on their first operation, or by scripts/migrate_redis_layout.py, with
nothing they held lost. The old sessions are written by the old scripts themselves
(tests/store/legacy/*_v1.lua, copied from the commit before the change), with the old
code's arguments."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import redis

from shared.store.base import QueryRecord, StoredMessage
from tests.store.conftest import make_manager

ROOT = Path(__file__).resolve().parents[2]
LEGACY = Path(__file__).parent / "legacy"


class OldCode:
    """An instance of the code before issue 15, as far as Redis sees it: its append and
    summary scripts, run with the arguments it passed."""

    def __init__(self, url: str, sid: str, uid: str) -> None:
        self.r = redis.Redis.from_url(url, decode_responses=True)
        self.sid, self.uid = sid, uid
        base = f"cm:{{{sid}}}"
        self.keys = [f"{base}:{k}" for k in ("meta", "msgs", "pend", "ana", "cmid", "sum")]
        self.append_src = (LEGACY / "append_v1.lua").read_text()
        self.summary_src = (LEGACY / "store_summary_v1.lua").read_text()

    def append(self, role: str, content: str, mid: str, metadata: dict[str, Any] | None = None) -> Any:
        msg = StoredMessage(0, mid, role, content, time.time(), metadata)
        tail = json.dumps({k: v for k, v in asdict(msg).items() if k != "seq"}, separators=(",", ":"))[1:]
        ana_tail = QueryRecord.from_answer(0, mid, None, msg).tail_json() if role == "assistant" else ""
        content_json = json.dumps(content) if role == "user" else ""
        args = [self.uid, role, tail, mid, 8, 7200, 5, 1000, repr(msg.timestamp),
                content_json, ana_tail, 100, 2 << 20, 1 << 20, 200, 1 << 20]  # fmt: skip
        return self.r.eval(self.append_src, 6, *self.keys, *args)

    def store_summary(self, text: str, covered: int) -> Any:
        summary = json.dumps({"text": text, "message_count": covered, "updated_at": time.time()})
        return self.r.eval(self.summary_src, 6, *self.keys, summary, covered, 7200)

    def converse(self, first: int, last: int) -> None:
        """Messages first..last (odd: the user asks, even: the assistant answers)."""
        for k in range(first, last + 1):
            if k % 2:
                out = self.append("user", f"question {k}", f"c-{k}")
            else:
                out = self.append("assistant", f"answer {k}", f"s-{k}", {"sources": ["kb_1"], "confidence": 0.8})
            assert out[0] == "ok" and int(out[1]) == k, out


def old_session(m: Any, url: str, uid: str) -> tuple[str, OldCode]:
    """A session the old code created (no layout mark) and conversed 20 messages in, with
    a summary of the first 10 stored (so its pending list holds 11..20)."""
    sid = m.create_session({"platform": "web"}, user_id=uid).session_id
    old = OldCode(url, sid, uid)
    old.r.hdel(old.keys[0], "v")
    old.converse(1, 20)
    assert old.store_summary("the first ten", 10) == 1
    assert old.r.llen(old.keys[3]) == 10  # the old buffer: ten pairs
    return sid, old


def test_an_old_session_moves_on_its_first_operation_and_loses_nothing(redis_server, firestore_emulator, uid):
    m = make_manager(redis_server.url)
    sid, old = old_session(m, redis_server.url, uid)

    ctx = m.get_context_for_llm(sid, user_id=uid)
    assert [x.seq for x in ctx.messages] == list(range(13, 21))
    assert ctx.summary is not None and ctx.summary.text == "the first ten"
    assert old.r.exists(*old.keys[1:5]) == 0  # the old lists and id map are gone
    # exactly once across the move: a retry of the session's first message is recognised
    again = m.add_message(sid, "user", "question 1", client_message_id="c-1", user_id=uid)
    assert (again.duplicate, again.seq) == (True, 1)
    assert m.add_message(sid, "user", "question 21", client_message_id="c-21", user_id=uid).seq == 21
    m.add_message(sid, "assistant", "answer 22", {"sources": ["kb_2"], "confidence": 0.9}, user_id=uid)

    snap = m.redis.begin_end(sid, uid)
    assert [(q.seq, q.query, q.response) for q in snap.queries] == [
        (k, f"question {k - 1}", f"answer {k}") for k in range(2, 23, 2)
    ]
    assert snap.queries[0].confidence == 0.8 and snap.queries[0].sources == ["kb_1"]
    assert [x.seq for x in snap.unsummarized or []] == list(range(11, 23))
    m.redis.abort_end(sid, snap.token, reopen=True)

    end = m.end_session_with_analytics(sid, user_id=uid)
    assert (end.message_count, end.queries_recorded) == (22, 11)


def test_what_old_instances_write_after_the_move_is_taken_in_by_the_script(redis_server, firestore_emulator, uid):
    m = make_manager(redis_server.url)
    sid, old = old_session(m, redis_server.url, uid)
    m.get_context_for_llm(sid, user_id=uid)  # moved by a new instance
    old.converse(21, 22)  # an old instance, still running during the rollout, appends
    assert m.add_message(sid, "user", "question 23", client_message_id="c-23", user_id=uid).seq == 23

    env = {**os.environ, "REDIS_URL": redis_server.url, "FIRESTORE_ENABLED": "false", "PYTHONPATH": str(ROOT)}
    script = [sys.executable, "scripts/migrate_redis_layout.py"]
    run = subprocess.run(script, check=False, cwd=ROOT, env=env, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout.strip().splitlines()[-1])["stragglers"] >= 1
    held, pairs = m.redis.held_for_export(sid)
    assert [x.seq for x in held] == list(range(1, 24))  # every message once, in order
    assert (22, "question 21", "answer 22") in [(q.seq, q.query, q.response) for q in pairs]
    assert len(pairs) == 11
    # the summary claims' marks survive the second pass (a retry still says summary_due)
    assert old.r.hget(old.keys[0], "m:s-20") == "20!"
    # a second run finds nothing to do
    run = subprocess.run(script, check=False, cwd=ROOT, env=env, capture_output=True, text=True)
    counts = json.loads(run.stdout.strip().splitlines()[-1])
    assert counts | {"sessions": 0} == {"sessions": 0, "moved": 0, "stragglers": 0, "errors": 0}


def test_an_end_takes_in_what_an_old_instance_wrote_after_the_move(redis_server, firestore_emulator, uid):
    m = make_manager(redis_server.url)
    sid, old = old_session(m, redis_server.url, uid)
    m.get_context_for_llm(sid, user_id=uid)  # moved by a new instance
    old.converse(21, 22)  # an old instance, still serving during the rollout, appends
    end = m.end_session_with_analytics(sid, user_id=uid)
    assert (end.message_count, end.queries_recorded) == (22, 11)
    last = m.firestore.read_analytics(sid)[-1]
    assert (last["query"], last["response"]) == ("question 21", "answer 22")


def test_the_export_reads_a_session_that_has_not_moved(redis_server, firestore_emulator, uid):
    m = make_manager(redis_server.url)
    sid, old = old_session(m, redis_server.url, uid)
    held, pairs = m.redis.held_for_export(sid)
    assert [x.seq for x in held] == list(range(1, 21))
    assert [(q.query, q.response) for q in pairs][-1] == ("question 19", "answer 20")
    assert old.r.exists(old.keys[3]) == 1  # read only: nothing moved


def test_a_question_older_than_the_window_keeps_its_answer_company():
    """The old buffer recorded the question; the window kept only a system turn before the
    answer: the rebuilt log still pairs the answer with that question."""
    from shared.store import legacy
    from shared.store.base import pairs_of

    system = StoredMessage(9, "sys-9", "system", "be brief", 1.0, None)
    answer = StoredMessage(10, "s-10", "assistant", "X is Y", 1.0, {"confidence": 0.7})
    pair = QueryRecord.from_answer(10, "s-10", "what is X?", answer)
    pair_json = f'{{"seq":10,"query":"what is X?",{pair.tail_json()}'
    rebuilt = legacy.rebuild([], [system.to_json(), answer.to_json()], [], [pair_json], {}, None)
    assert [(q.seq, q.query) for q in pairs_of(rebuilt.messages)] == [(10, "what is X?")]
    assert [m.seq for m in rebuilt.messages] == [8, 9, 10]  # the question before the system turn


def test_two_instances_moving_one_session_at_once_move_it_once(redis_server, firestore_emulator, uid):
    from concurrent.futures import ThreadPoolExecutor

    m = make_manager(redis_server.url)
    sid, old = old_session(m, redis_server.url, uid)
    others = [make_manager(redis_server.url) for _ in range(4)]
    with ThreadPoolExecutor(4) as pool:
        moved = list(pool.map(lambda x: x.redis.migrate_legacy(sid), others))
    assert moved.count(True) == 1  # compare and set: the others find it moved
    held, pairs = m.redis.held_for_export(sid)
    assert [x.seq for x in held] == list(range(1, 21)) and len(pairs) == 10
    # and the next append of any instance continues the numbering once
    assert others[1].add_message(sid, "user", "question 21", client_message_id="c-21", user_id=uid).seq == 21
    assert others[2].add_message(sid, "user", "question 21", client_message_id="c-21", user_id=uid).duplicate
