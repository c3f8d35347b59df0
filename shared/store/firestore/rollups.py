"""Answer-quality reporting data that grows with days, not sessions.

When a session's end is counted (the trigger, exactly once under the user's ledger), the
same transaction adds the session to its UTC day's rollup, one shard of it,
``rollups/{YYYY-MM-DD}/shards/{n}`` (``shard_of``: the session id picks one of
COUNTER_SHARDS, so ends a second spread over N documents, Firebase's distributed counter;
the report sums a day's shards and the day document itself, which holds what the rebuild
wrote and what releases before the shards counted), and
writes its lowest-confidence answers to ``low_confidence/{sid}_{seq}`` (at most
``LOW_CONFIDENCE_PER_SESSION``), so reports read one document per day and the list of weak
answers is one indexed query; neither scans analytics. The conversation itself writes
nothing to Firestore for this.

A day's rollup: sessions, messages, queries, answers below ``LOW_CONFIDENCE_THRESHOLD``,
the sum and count of confidences (for the average), a 10-bucket confidence histogram
(``b0`` is [0, 0.1), ``b9`` is [0.9, 1]), end reasons, answers per collection and uses per
KB entry (map keys are Firestore-safe ids: ``firestore_docs.kb_doc_id``).
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from shared.store.base import END_REASONS
from shared.store.firestore.docs import kb_doc_id

if TYPE_CHECKING:
    from google.cloud.firestore import Client, Transaction

LOW_CONFIDENCE_PER_SESSION = 50  # bounds the transaction: kb entries (400) + these + 3 < 500
BUCKETS = 10


def day_of(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%d")


def bucket(confidence: float) -> int:
    return min(BUCKETS - 1, max(0, int(confidence * BUCKETS)))


@dataclass
class SessionRollup:
    """One ended session's part of its day's rollup, and its weak answers."""

    day: str
    messages: int
    queries: int
    end_reason: str
    low_confidence: int = 0
    confidence_sum: float = 0.0
    confidence_n: int = 0
    histogram: list[int] = field(default_factory=lambda: [0] * BUCKETS)
    collections: dict[str, int] = field(default_factory=dict)
    kb: dict[str, int] = field(default_factory=dict)
    weak: list[dict[str, Any]] = field(default_factory=list)

    def increments(self) -> dict[str, Any]:
        """The day document's fields, as amounts to add."""
        return {
            "sessions": 1,
            "messages": self.messages,
            "queries": self.queries,
            "low_confidence": self.low_confidence,
            "confidence_sum": self.confidence_sum,
            "confidence_n": self.confidence_n,
            "histogram": {f"b{i}": n for i, n in enumerate(self.histogram) if n},
            "end_reasons": {self.end_reason: 1},
            "collections": dict(self.collections),
            "kb": dict(self.kb),
        }


def session_rollup(
    sid: str, session: dict[str, Any], analytics: list[dict[str, Any]], threshold: float
) -> SessionRollup:
    """Pure: what an ended session adds to reporting."""
    ended_at = float(session.get("ended_at") or session.get("last_active_at") or 0)
    r = SessionRollup(
        day=day_of(ended_at),
        messages=int(session.get("message_count") or 0),
        queries=len(analytics),
        end_reason=_known_reason(session.get("end_reason")),
    )
    weak: list[tuple[float, int, dict[str, Any]]] = []
    for q in analytics:
        coll = q.get("collection")
        if isinstance(coll, str) and coll:
            key = kb_doc_id(coll)
            r.collections[key] = r.collections.get(key, 0) + 1
        for s in set(q.get("sources") or []):
            key = kb_doc_id(str(s))
            r.kb[key] = r.kb.get(key, 0) + 1
        conf = q.get("confidence")
        if not isinstance(conf, int | float) or isinstance(conf, bool):
            continue
        conf = min(1.0, max(0.0, float(conf)))
        r.confidence_sum += conf
        r.confidence_n += 1
        r.histogram[bucket(conf)] += 1
        if conf < threshold:
            r.low_confidence += 1
            seq = int(q.get("seq") or 0)
            weak.append((conf, seq, _weak_item(sid, q, conf, ended_at)))
    # the weakest first, then the earliest: a stable choice under the bound
    r.weak = [item for _, _, item in sorted(weak, key=lambda w: (w[0], w[1]))[:LOW_CONFIDENCE_PER_SESSION]]
    return r


def _weak_item(sid: str, q: dict[str, Any], conf: float, ended_at: float) -> dict[str, Any]:
    return {
        "session_id": sid,
        "seq": int(q.get("seq") or 0),
        "query": q.get("query"),
        "response": q.get("response") or "",
        "confidence": conf,
        "sources": [str(s) for s in q.get("sources") or []],
        "collection": q.get("collection"),
        "timestamp": float(q.get("timestamp") or ended_at),
    }


def weak_doc_id(item: dict[str, Any]) -> str:
    return f"{item['session_id']}_{int(item['seq']):08d}"


SHARDS = "shards"  # rollups/{day}/shards/{n} and kb_usage/{entry}/shards/{n}


def shard_of(sid: str, shards: int) -> str:
    """The shard a session's counts go to: stable (a redelivered event, the repair, the same
    shard), and even over sessions (their ids are random)."""
    return str(int(hashlib.sha256(sid.encode()).hexdigest()[:8], 16) % shards)


def write(tx: Transaction, db: Client, r: SessionRollup, shard: str) -> int:
    """Add ``r`` to its day's ``shard`` inside the counting transaction; returns the writes."""
    from google.cloud import firestore

    def inc(values: dict[str, Any]) -> dict[str, Any]:
        return {k: inc(v) if isinstance(v, dict) else firestore.Increment(v) for k, v in values.items() if v != {}}

    ref = db.collection("rollups").document(r.day).collection(SHARDS).document(shard)
    tx.set(ref, {"date": r.day, **inc(r.increments())}, merge=True)
    for item in r.weak:
        tx.set(db.collection("low_confidence").document(weak_doc_id(item)), item)
    return 1 + len(r.weak)


def add_into(total: dict[str, Any], d: dict[str, Any]) -> None:
    """Pure: ``d`` added to ``total`` in place: numbers added, maps key by key, anything else
    (a day's ``date``) kept as first seen."""
    for k, v in d.items():
        if isinstance(v, dict):
            add_into(total.setdefault(k, {}), v)
        elif isinstance(v, int | float) and not isinstance(v, bool):
            total[k] = total.get(k, 0) + v
        else:
            total.setdefault(k, v)


def summed(docs: list[dict[str, Any]]) -> dict[str, Any]:
    """Pure: one day's documents (its shards, and the day document) as one."""
    total: dict[str, Any] = {}
    for d in docs:
        add_into(total, d)
    return total


def merge_days(days: list[dict[str, Any]]) -> dict[str, Any]:
    """Pure: the range's totals from its day documents (missing days are zeros)."""
    hist = [0] * BUCKETS
    reasons: dict[str, int] = {}
    collections: dict[str, int] = {}
    kb: dict[str, int] = {}
    for d in days:
        for i in range(BUCKETS):
            hist[i] += int((d.get("histogram") or {}).get(f"b{i}") or 0)
        for src, dst in ((d.get("end_reasons"), reasons), (d.get("collections"), collections), (d.get("kb"), kb)):
            for k, v in (src or {}).items():
                dst[k] = dst.get(k, 0) + int(v or 0)
    return {"confidence_histogram": hist, "end_reasons": reasons, "collections": collections, "kb": kb}


def day_row(date: str, d: dict[str, Any] | None) -> dict[str, Any]:
    d = d or {}
    n = int(d.get("confidence_n") or 0)
    return {
        "date": date,
        "sessions": int(d.get("sessions") or 0),
        "messages": int(d.get("messages") or 0),
        "queries": int(d.get("queries") or 0),
        "low_confidence": int(d.get("low_confidence") or 0),
        "avg_confidence": round(float(d.get("confidence_sum") or 0) / n, 4) if n else None,
    }


def _known_reason(reason: object) -> str:
    """The reason as the rollup counts it: a field of the day's document, so never a word
    outside the fixed set (data ended before it existed, or written by hand)."""
    if reason is None or reason == "":
        return "completed"
    return reason if isinstance(reason, str) and reason in END_REASONS else "other"
