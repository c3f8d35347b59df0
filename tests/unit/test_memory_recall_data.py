"""The recall set of bench section memory_recall (bench/data/memory_recall/): the committed
files are exactly what its generator writes, the probes are honest (the answer in one session
only, asked in other words, findable from that session's words), and the benchmark's seam to
the product reports "not available" rather than a figure while the product has no memory."""

from __future__ import annotations

import importlib.util
import json
import re
import sys
import types
from pathlib import Path

import pytest

from bench import memory_recall as mr

DATA = Path(__file__).resolve().parents[2] / "bench" / "data" / "memory_recall"


def _generator() -> types.ModuleType:
    spec = importlib.util.spec_from_file_location("memory_recall_generate", DATA / "generate.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # its dataclasses look their module up
    spec.loader.exec_module(mod)
    return mod


def _rows(name: str) -> list[dict]:
    return [json.loads(line) for line in (DATA / name).read_text(encoding="utf-8").splitlines()]


def _words(text: str) -> set[str]:
    return set(re.findall(r"[a-z0-9#]+", text.lower()))


def test_the_committed_files_are_the_generators_output():
    gen = _generator()
    sessions, probes = gen.generate()

    assert (DATA / "sessions.jsonl").read_text(encoding="utf-8") == gen.dumps(sessions)
    assert (DATA / "probes.jsonl").read_text(encoding="utf-8") == gen.dumps(probes)


def test_the_set_has_the_shape_the_benchmark_claims():
    sessions, probes = _rows("sessions.jsonl"), _rows("probes.jsonl")
    per_user: dict[str, list[dict]] = {}
    for s in sessions:
        per_user.setdefault(s["user_id"], []).append(s)

    assert len(per_user) >= 30
    assert all(20 <= len(v) <= 40 for v in per_user.values())
    for s in sessions:
        roles = [m["role"] for m in s["messages"]]
        assert 6 <= len(roles) <= 20
        assert roles == ["user", "assistant"] * (len(roles) // 2)
    assert len(probes) >= 300
    assert {p["user_id"] for p in probes} == set(per_user)


def test_each_answer_sits_in_its_session_only_and_the_question_does_not_give_it():
    sessions = _rows("sessions.jsonl")
    text = {s["session_id"]: "\n".join(m["content"] for m in s["messages"]) for s in sessions}
    of_user: dict[str, list[str]] = {}
    for s in sessions:
        of_user.setdefault(s["user_id"], []).append(s["session_id"])
    for p in _rows("probes.jsonl"):
        word = re.compile(r"(?<![\w#])" + re.escape(p["answer"]) + r"(?!\w)", re.IGNORECASE)
        holding = [sid for sid in of_user[p["user_id"]] if word.search(text[sid])]

        assert holding == [p["gold_session_id"]], p
        assert not word.search(p["question"]), p


def test_the_questions_are_paraphrases_yet_share_a_word_with_their_session():
    sessions = {s["session_id"]: s for s in _rows("sessions.jsonl")}
    bm = mr.Bm25(["placeholder document"])
    overlaps = []
    for p in _rows("probes.jsonl"):
        planted, asked = _words(p["planted"]), _words(p["question"])
        overlaps.append(len(planted & asked) / len(planted | asked))
        gold = sessions[p["gold_session_id"]]
        assert all(p["question"].lower() not in m["content"].lower() for m in gold["messages"])
        assert p["planted"] in gold["messages"][p["message_index"]]["content"]
        transcript = "\n".join(m["content"] for m in gold["messages"])
        # findable: at least one of the question's terms (as the benchmark tokenises) is in its session
        assert set(bm.tokenize([p["question"]])[0]) & set(bm.tokenize([transcript])[0]), p

    # Word overlap (Jaccard) of question and planted sentence: a few reuse the user's own name
    # for the thing in a short sentence ("my account number with the broadband"), none copies it.
    assert sum(o > 0.45 for o in overlaps) <= 0.05 * len(overlaps)
    assert sum(overlaps) / len(overlaps) < 0.3


def test_the_facts_are_mostly_early_and_the_gold_sessions_mostly_not_recent():
    probes = _rows("probes.jsonl")
    counts: dict[str, list[dict]] = {}
    for s in _rows("sessions.jsonl"):
        counts.setdefault(s["user_id"], []).append(s)
    recent = {s["session_id"] for v in counts.values() for s in sorted(v, key=lambda s: s["ended_at"])[-3:]}

    early = sum(p["message_index"] < p["message_count"] / 2 for p in probes)
    assert early / len(probes) > 0.6
    assert sum(p["gold_session_id"] in recent for p in probes) / len(probes) < 0.2


def test_the_transcript_beats_the_summary_which_beats_recency():
    """Floors and ceilings around the figures measured when the set was made (BENCHMARKS.md,
    section memory_recall): a generator change that makes the set trivial (the transcript at
    recall@3 1.0) or lets a baseline catch up fails here."""
    out = mr.evaluate()
    r = out["rankers"]
    transcript, summary, recency = r["transcript"], r["summary"], r["recency"]

    assert transcript["probes"] == summary["probes"] == recency["probes"] == out["probes"]
    assert 0.85 <= transcript["recall_at_3"] < 0.98
    assert transcript["recall_at_1"] < 0.9
    assert summary["recall_at_3"] <= transcript["recall_at_3"] - 0.25
    assert recency["recall_at_3"] <= 0.2


def test_the_product_is_not_available_without_its_memory_module():
    if importlib.util.find_spec(mr.PRODUCT_MODULE) is not None:
        pytest.skip("shared.features.memory exists: the product is measured")
    out = mr.evaluate()

    assert out["rankers"]["product"] == {"available": False, "why": f"{mr.PRODUCT_MODULE} does not exist yet",
                                         "candidates_median": None}  # fmt: skip
    assert out["target_met"] is None
    with pytest.raises(RuntimeError, match="product: not available"):
        mr.product_rank("user-00", "anything", 3)


def test_the_seam_writes_every_session_and_ranks_by_the_products_search(monkeypatch):
    """A stand-in memory module (BM25 over what it is given) shows the seam's wiring: every
    session is written once, the search's order is the ranking. Not a product figure."""
    written: dict[str, list[tuple[str, str]]] = {}

    def write_digest(user_id, session_id, messages, ended_at):
        written.setdefault(user_id, []).append((session_id, "\n".join(m.content for m in messages)))

    def search(user_id, q, limit):
        ids, texts = zip(*written[user_id], strict=True)
        scores = mr.Bm25(texts).scores(q)
        order = sorted((i for i, s in enumerate(scores) if s > 0), key=lambda i: (-scores[i], -i))
        return [{"session_id": ids[i], "score": scores[i]} for i in order[:limit]]

    fake = types.ModuleType(mr.PRODUCT_MODULE)
    fake.write_digest = write_digest  # type: ignore[attr-defined]
    fake.search = search  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, mr.PRODUCT_MODULE, fake)
    out = mr.evaluate()

    assert sum(len(v) for v in written.values()) == out["sessions"]
    product, transcript = out["rankers"]["product"], out["rankers"]["transcript"]
    assert product["available"] is True
    assert (product["hits_at_1"], product["hits_at_3"]) == (transcript["hits_at_1"], transcript["hits_at_3"])
    assert out["target_met"] is (product["recall_at_3"] >= mr.TARGET_R3)
