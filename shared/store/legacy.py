"""The six-key Redis layout (before issue 15), read once to move a session to the three-key
one (``RedisLayer.migrate_legacy``; ``lua/migrate.lua`` writes the result).

The old layout held a session's messages in three places: ``msgs`` (the last
``MESSAGE_WINDOW``), ``pend`` (those no summary covered yet) and ``ana`` (one
question/answer pair per answer, the question as text only), with its ids in ``cmid``
(``mid:<id>`` -> ``{"seq":N,"summary_due":0|1}``). The new log holds every message once, in
order; the end reads the pairs from it (``base.pairs_of``). So the log is rebuilt as:

- every message the window, the pending list or an already-moved log holds, by number;
- for an answer only ``ana`` still holds, the answer itself (its metadata put back
  together from the pair's confidence, sources, collection and the rest);
- for an answer whose question no kept user message holds any more, that question as a
  user message (id ``legacy-q-<answer id>``) at the nearest free number before it:
  ``pairs_of`` then gives every answer the question the old buffer recorded.

Messages older than the window that were neither pending nor answered were not kept by the
old layout either; nothing is invented for them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
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


@dataclass(slots=True)
class Rebuilt:
    messages: list[StoredMessage]  # every message, once, in order
    entries: list[str]  # the same, as the log stores them
    id_fields: list[str]  # 'm:<id>', mark, ...: set where absent (HSETNX)
    covered: int  # the last message the stored summary covers
    ledger: int  # append.lua's byte ledger for these messages
    answers: int


def rebuild(
    current: list[str],
    window: list[str],
    pending: list[str],
    pairs: list[str],
    ids: dict[str, str],
    summary: str | None,
) -> Rebuilt:
    """The session's messages in order, and what its state hash needs: one ``m:<id>`` per
    message id, the summary's covered number, the ledger and the answer count."""
    by_seq: dict[int, StoredMessage] = {}
    for raw in [*current, *window, *pending]:
        m = StoredMessage.from_json(raw)
        by_seq.setdefault(m.seq, m)
    recorded = [QueryRecord.from_json(raw) for raw in pairs]
    for q in recorded:
        if q.seq not in by_seq:
            by_seq[q.seq] = _answer(q)
    # Each answer's recorded question, where no user message since the answer before it
    # holds it any more: just before the answer, at the nearest free number after that one.
    answer_seqs = sorted(n for n, m in by_seq.items() if m.role == "assistant")
    for q in recorded:
        if q.query is None:
            continue
        before = max((n for n in answer_seqs if n < q.seq), default=0)
        between = range(q.seq - 1, before, -1)
        if any(by_seq[n].role == "user" for n in between if n in by_seq):
            continue
        free = next((n for n in between if n not in by_seq), None)
        if free is not None:
            by_seq[free] = StoredMessage(free, f"legacy-q-{q.mid}", "user", q.query, q.timestamp, None)
    messages = sorted(by_seq.values(), key=lambda m: m.seq)

    id_fields: list[str] = []
    for mid, mark in _marks(ids, messages).items():
        id_fields += [f"m:{mid}", mark]
    entries = [m.to_json() for m in messages]
    return Rebuilt(
        messages=messages,
        entries=entries,
        id_fields=id_fields,
        covered=_covered(summary),
        ledger=sum(cost(e, m.mid) for e, m in zip(entries, messages, strict=True)),
        answers=sum(1 for m in messages if m.role == "assistant"),
    )


def _marks(ids: dict[str, str], messages: list[StoredMessage]) -> dict[str, str]:
    """Every id's mark: the old map's (``mid:<id>`` -> ``{"seq":N,"summary_due":0|1}``,
    as ``N`` or ``N!``), and each message's own id."""
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
    return marks


def _covered(summary: str | None) -> int:
    """The last message the stored summary covers (0: none, or unreadable)."""
    if not summary:
        return 0
    try:
        return int(json.loads(summary).get("message_count", 0))
    except (ValueError, AttributeError, TypeError):
        return 0
