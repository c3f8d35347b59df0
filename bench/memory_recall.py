"""Returning users' memory: which past session a question recalls (section memory_recall of `make bench`).

Run: .venv/bin/python -m bench.memory_recall [--json] [--misses RANKER]

The set (bench/data/memory_recall/, written by its generate.py): synthetic users with 20 to 40
ended sessions each and questions asked in a new session whose answer sits in exactly one of
them. Session recall@k = the share of questions whose session is among the k a ranker
returns for that user. Rankers, each over the user's own sessions only:

- product: each session written as the product writes its digest (build_digest, MemoryStore)
  and each question asked through `search_memories`'s feature (Memories.search), on the
  Firestore emulator (make bench); "not available" without one, never a stand-in figure.
- product_local_embeddings: the same with EMBEDDINGS=local (each digest's vector stored,
  BM25 fused with find_nearest on the emulator).
- recency: the 3 most recent sessions (baseline).
- summary: BM25 over each session's rolling summary as the product leaves it at the end (the
  product's summarizer and `Summaries`, replayed every SUMMARY_INTERVAL messages, then the
  final one) (baseline).
- transcript: BM25 over every message of the session (reference: the intended design).

BM25 is bm25s with the kb responder's tokenisation (bm25s's `en_plus` stop words, PyStemmer's
English stemmer). A session with no word of the question scores 0 and is not returned; equal
scores go to the more recent session. Counts of one deterministic run, no timing.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from shared.core.summaries import Summaries  # noqa: E402
from shared.core.summarizer import build_summarizer  # noqa: E402
from shared.settings import Settings  # noqa: E402
from shared.store.base import StoredMessage  # noqa: E402

DATA = ROOT / "bench" / "data" / "memory_recall"
TARGET_R3 = 0.85  # the target for the product ranker
KS = (1, 3)
# The kb responder's tokenisation (shared/features/responders/kb.py, KbIndex._tokenize: a
# method of its index, not importable on its own), repeated here.
STOPWORDS = "en_plus"


@dataclass(frozen=True, slots=True)
class Session:
    session_id: str
    user_id: str
    ended_at: int
    messages: tuple[StoredMessage, ...]


@dataclass(frozen=True, slots=True)
class Probe:
    probe_id: str
    user_id: str
    question: str
    gold: str
    kind: str
    message_index: int
    message_count: int


def load(data: Path = DATA) -> tuple[dict[str, list[Session]], list[Probe]]:
    """Each user's sessions, oldest first, and the probes."""
    users: dict[str, list[Session]] = {}
    for line in (data / "sessions.jsonl").read_text(encoding="utf-8").splitlines():
        s = json.loads(line)
        msgs = tuple(
            StoredMessage(seq=i + 1, mid=f"{s['session_id']}-{i + 1}", role=m["role"], content=m["content"],
                          timestamp=float(m["timestamp"]))
            for i, m in enumerate(s["messages"])
        )  # fmt: skip
        users.setdefault(s["user_id"], []).append(Session(s["session_id"], s["user_id"], s["ended_at"], msgs))
    for sessions in users.values():
        sessions.sort(key=lambda s: s.ended_at)
    probes = [
        Probe(p["probe_id"], p["user_id"], p["question"], p["gold_session_id"], p["kind"], p["message_index"],
              p["message_count"])
        for p in map(json.loads, (data / "probes.jsonl").read_text(encoding="utf-8").splitlines())
    ]  # fmt: skip
    return users, probes


# --- the rolling summary, as the product writes it ----------------------------------------


class _Captured:
    """Stands in for Layers in `Summaries.roll`: it only stores the summary."""

    def __init__(self) -> None:
        self.doc: dict[str, Any] | None = None
        self.redis = self

    def store_summary(self, sid: str, doc: dict[str, Any]) -> bool:
        self.doc = doc
        return True


def rolling_summary(session: Session, settings: Settings) -> str:
    """The summary a session ends with: append.lua claims a rolling summary on every
    SUMMARY_INTERVAL-th message (seq % interval == 0) over the messages after the last one the
    stored summary covers; the end extends it by what it does not cover (`Summaries.final`)."""
    layers = _Captured()
    summaries = Summaries(build_summarizer(settings), layers)  # type: ignore[arg-type]
    for m in session.messages:
        if m.seq % settings.summary_interval == 0:
            covered = int(layers.doc["message_count"]) if layers.doc else 0
            pending = [x for x in session.messages if covered < x.seq <= m.seq]
            summaries.roll(session.session_id, m.seq, layers.doc, pending, m.timestamp)
    covered = int(layers.doc["message_count"]) if layers.doc else 0
    rest = [x for x in session.messages if x.seq > covered]
    final = summaries.final(layers.doc, rest, len(session.messages), float(session.ended_at))
    return (final or {}).get("text") or ""


# --- rankers ------------------------------------------------------------------------------


class Bm25:
    """BM25 over one user's sessions, one text each."""

    def __init__(self, texts: Sequence[str]) -> None:
        import bm25s
        import Stemmer

        self._bm25s = bm25s
        stemmer = Stemmer.Stemmer("english")
        self._stem = lambda words: list(stemmer.stemWords(words))
        self._retriever = bm25s.BM25()
        self._retriever.index(self.tokenize(texts), show_progress=False)

    def tokenize(self, texts: Sequence[str]) -> list[list[str]]:
        tokens = self._bm25s.tokenize(
            list(texts), stopwords=STOPWORDS, stemmer=self._stem, return_ids=False, show_progress=False
        )
        return [list(t) for t in tokens]

    def scores(self, question: str) -> list[float]:
        terms = sorted(set(self.tokenize([question])[0]))
        return [float(x) for x in self._retriever.get_scores(terms)] if terms else []


def _by_score(sessions: Sequence[Session], scores: Sequence[float], k: int) -> list[str]:
    # positive scores only; ties to the more recent session (sessions are oldest first)
    order = sorted((i for i, sc in enumerate(scores) if sc > 0), key=lambda i: (-scores[i], -i))
    return [sessions[i].session_id for i in order[:k]]


Ranker = Callable[[str, str, int], list[str]]


def recency_ranker(users: dict[str, list[Session]]) -> Ranker:
    def rank(uid: str, question: str, k: int) -> list[str]:
        return [s.session_id for s in reversed(users[uid])][:k]

    return rank


def bm25_ranker(users: dict[str, list[Session]], text: Callable[[Session], str]) -> Ranker:
    indexes = {uid: Bm25([text(s) for s in sessions]) for uid, sessions in users.items()}

    def rank(uid: str, question: str, k: int) -> list[str]:
        return _by_score(users[uid], indexes[uid].scores(question), k)

    return rank


def transcript_text(session: Session) -> str:
    return "\n".join(m.content for m in session.messages)


# --- the product, through its own search -------------------------------------------------
# Each synthetic ended session is written as the product writes one (its digest, built by
# shared.features.memory.build_digest from the session's record, stored under
# users/{uid}/memories/{sid} by MemoryStore), and each probe is asked through the feature
# search_memories calls (shared.features.memories.Memories.search). That needs Firestore:
# make bench runs inside the emulators; standalone without FIRESTORE_EMULATOR_HOST the
# product is reported "not available", never a number.


def product_ranker(users: dict[str, list[Session]], embeddings: str = "none") -> tuple[Ranker | None, str | None]:
    import os
    import uuid

    if not os.environ.get("FIRESTORE_EMULATOR_HOST"):
        return None, "needs the Firestore emulator (run it through make bench)"
    from shared.core.manager import SessionManager
    from shared.features.memories import wire_memories
    from shared.store.firestore.layer import FirestoreLayer
    from shared.store.firestore.memories import MemoryStore

    settings = Settings(
        redis_url=None,
        gcp_project=os.environ.get("GCLOUD_PROJECT", "demo-chat-memory"),
        summarizer="extractive",
        embeddings=embeddings,
    )
    manager = SessionManager(settings, firestore=FirestoreLayer(settings))
    store = MemoryStore(manager.firestore.fs)
    memories = wire_memories(manager, store)
    run = uuid.uuid4().hex[:8]  # this run's users: nothing of an earlier run is ranked
    uid_of = {uid: f"bench-mem-{run}-{uid}" for uid in users}
    for uid, sessions in users.items():
        for s in sessions:
            msgs = list(s.messages)
            entries = [
                {"seq": a.seq, "query": q.content, "response": a.content}
                for q, a in zip(msgs, msgs[1:], strict=False)
                if q.role == "user" and a.role == "assistant"
            ]
            record = {
                "owner": uid_of[uid],
                "status": "ended",
                "ended_at": float(s.ended_at),
                "message_count": len(msgs),
                "final_messages": [m.to_dict() for m in msgs[-settings.message_window :]],
            }
            store.write(uid_of[uid], memories.digest(s.session_id, record, entries))

    def rank(uid: str, question: str, k: int) -> list[str]:
        items = memories.search(uid_of[uid], question, limit=k)["items"]
        return [str(item["session_id"]) for item in items]

    return rank, None


# --- scoring ------------------------------------------------------------------------------


def score(rank: Ranker, users: dict[str, list[Session]], probes: Sequence[Probe]) -> dict[str, Any]:
    hits = dict.fromkeys(KS, 0)
    returned: list[int] = []
    misses: list[dict[str, Any]] = []
    for p in probes:
        got = rank(p.user_id, p.question, max(KS))
        returned.append(len(got))
        for k in KS:
            hits[k] += p.gold in got[:k]
        if p.gold not in got[: max(KS)]:
            misses.append({"probe": p.probe_id, "q": p.question, "gold": p.gold, "got": got})
    n = len(probes)
    out: dict[str, Any] = {"probes": n}
    for k in KS:
        out[f"hits_at_{k}"] = hits[k]
        out[f"recall_at_{k}"] = round(hits[k] / n, 3) if n else None
    out["median_returned"] = statistics.median(returned) if returned else None
    out["misses"] = misses
    return out


def evaluate(data: Path = DATA) -> dict[str, Any]:
    users, probes = load(data)
    settings = Settings(firestore_enabled=False, summarizer="extractive")
    rankers: dict[str, Ranker] = {
        "recency": recency_ranker(users),
        "summary": bm25_ranker(users, lambda s: rolling_summary(s, settings)),
        "transcript": bm25_ranker(users, transcript_text),
    }
    out: dict[str, Any] = {
        "data": str(data.relative_to(ROOT)) if data.is_relative_to(ROOT) else str(data),
        "users": len(users),
        "sessions": sum(len(v) for v in users.values()),
        "probes": len(probes),
        "median_candidates": statistics.median(len(users[p.user_id]) for p in probes),
        "summary_interval": settings.summary_interval,
        "summary_max_chars": settings.summary_max_chars,
        "target_recall_at_3": TARGET_R3,
        "rankers": {},
    }
    for name, embeddings in (("product", "none"), ("product_local_embeddings", "local")):
        product, why = product_ranker(users, embeddings)
        if product is None:
            out["rankers"][name] = {"available": False, "why": why}
        else:
            out["rankers"][name] = {"available": True, **score(product, users, probes)}
    for name, rank in rankers.items():
        out["rankers"][name] = {"available": True, **score(rank, users, probes)}
    for r in out["rankers"].values():
        r["candidates_median"] = out["median_candidates"] if r["available"] else None
    prod = out["rankers"]["product"]
    out["target_met"] = None if not prod["available"] else prod["recall_at_3"] >= TARGET_R3
    return out


def section_memory_recall() -> dict[str, Any]:
    out = evaluate()
    out["how"] = (
        f"{out['probes']} questions of {out['users']} synthetic users ({out['sessions']} past sessions, median "
        f"{out['median_candidates']} per user) in {out['data']}: each question's answer sits in one earlier "
        "session; session recall@1/@3 of each ranker over the user's own sessions"
    )
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=DATA, help="directory with sessions.jsonl and probes.jsonl")
    ap.add_argument("--json", action="store_true", help="print the JSON instead of the table")
    ap.add_argument("--misses", default="", help="also list this ranker's misses at 3 (e.g. transcript)")
    args = ap.parse_args(argv)
    out = evaluate(args.data.resolve())
    if args.json:
        print(json.dumps(out, indent=2))
    else:
        from bench.report import _memory_recall

        print(_memory_recall(out))
        for m in (out["rankers"].get(args.misses) or {}).get("misses", []):
            print(f"- {m['probe']}: {m['q']!r}: {m['gold']} not in {m['got']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
