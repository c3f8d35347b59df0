"""The six-key Redis layout (before issue 15), read once to move a session to the three-key
one (``RedisLayer.migrate_legacy``; ``lua/migrate.lua`` writes the result).

The old layout held a session's messages in three places: ``msgs`` (the last
``MESSAGE_WINDOW``), ``pend`` (those no summary covered yet) and ``ana`` (one
question/answer pair per answer, the question as text only), with its ids in ``cmid``
(``mid:<id>`` -> ``{"seq":N,"summary_due":0|1}``). The new log holds every message once, in
order; the end reads the pairs from it (``base.pairs_of``). So the log is rebuilt as:

- every message the window, the pending list or an already-moved log holds, by number;
- for an answer only ``ana`` still holds, the answer itself (its metadata put back
  together from the pair's confidence, sources, collection and the rest), and its
  question as a user message just before it (id ``legacy-q-<answer id>``) if that number is
  free: ``pairs_of`` then gives the answer the same question the old buffer recorded.

Messages older than the window that were neither pending nor answered were not kept by the
old layout either; nothing is invented for them.
"""

from __future__ import annotations

import json
from typing import Any

from shared.store.base import QueryRecord, StoredMessage


def cost(entry: str, mid: str) -> int:
    """The byte ledger's charge for one log entry and its id field (as append.lua counts)."""
    return len(entry.encode()) * 5 // 4 + 64 + len(mid.encode()) + 16


def _answer(q: QueryRecord) -> StoredMessage:
    md: dict[str, Any] = dict(q.metadata or {})
    if q.confidence is not None:
        md["confidence"] = q.confidence
    if q.sources:
        md["sources"] = q.sources
    if q.collection is not None:
        md["collection"] = q.collection
    return StoredMessage(q.seq, q.mid, "assistant", q.response, q.timestamp, md or None)


def rebuild(
    current: list[str],
    window: list[str],
    pending: list[str],
    pairs: list[str],
    ids: dict[str, str],
    summary: str | None,
) -> tuple[list[StoredMessage], list[str]]:
    """The session's messages in order, and the meta fields (name, value, ...) to set: one
    ``m:<id>`` per message id, the summary's covered number, the ledger and answer count."""
    by_seq: dict[int, StoredMessage] = {}
    for raw in [*current, *window, *pending]:
        m = StoredMessage.from_json(raw)
        by_seq.setdefault(m.seq, m)
    for raw in pairs:
        q = QueryRecord.from_json(raw)
        if q.seq not in by_seq:
            by_seq[q.seq] = _answer(q)
        if q.query is not None and q.seq > 1 and q.seq - 1 not in by_seq:
            by_seq[q.seq - 1] = StoredMessage(q.seq - 1, f"legacy-q-{q.mid}", "user", q.query, q.timestamp, None)
    messages = sorted(by_seq.values(), key=lambda m: m.seq)

    marks: dict[str, str] = {}
    for name, value in ids.items():
        if not name.startswith("mid:"):
            continue  # 'seq:N' -> id: the old map's pruning index
        try:
            d = json.loads(value)
            marks[name[4:]] = f"{int(d['seq'])}{'!' if d.get('summary_due') else ''}"
        except (ValueError, KeyError, TypeError):
            continue
    for m in messages:
        marks.setdefault(m.mid, str(m.seq))

    covered = 0
    if summary:
        try:
            covered = int(json.loads(summary).get("message_count", 0))
        except (ValueError, AttributeError, TypeError):
            covered = 0
    ledger = sum(cost(m.to_json(), m.mid) for m in messages)
    answers = sum(1 for m in messages if m.role == "assistant")
    fields: list[str] = ["sc", str(covered), "lb", str(ledger), "an", str(answers)]
    for mid, mark in marks.items():
        fields += [f"m:{mid}", mark]
    return messages, fields
