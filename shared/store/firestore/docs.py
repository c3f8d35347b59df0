"""The Firestore documents: the session document's mapping (one place), KB entry ids, and
what fits in one document or one commit (Firestore's storage-size rules)."""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

from shared.store.base import SessionState
from shared.store.storable import make_storable

log = logging.getLogger("chat_memory.firestore")

MAX_KB_ENTRIES_PER_SESSION = 400  # a transaction holds at most 500 writes
ANALYTICS_PART_BYTES = 700_000  # below Firestore's 1 MiB document limit, with room
SESSION_DOC_BYTES = 900_000  # the ended session document, below the same limit
# One commit of analytics parts: under the 500 writes of a Firestore commit, and under the
# 4 MiB a request may weigh on the emulator (production allows 10 MiB).
ANALYTICS_BATCH_WRITES = 400
ANALYTICS_BATCH_BYTES = 3_000_000
_SAFE_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,128}$")
_RESERVED_ID = re.compile(r"^__.*__$")


def kb_doc_id(entry: str) -> str:
    """A KB entry id as a Firestore document id: as-is when safe, else a stable hash
    (Firestore refuses `.`, `..`, `__name__` and anything with a slash as a document id)."""
    if _SAFE_ID.fullmatch(entry) and entry not in (".", "..") and not _RESERVED_ID.fullmatch(entry):
        return entry
    return "h_" + hashlib.sha256(entry.encode()).hexdigest()[:40]


def new_session_doc(state: SessionState, *, in_redis: bool) -> dict[str, Any]:
    """A new session's document."""
    return {
        "session_id": state.session_id,
        "owner": state.owner,
        "status": "active",
        "created_at": state.created_at,
        "last_active_at": state.last_active_at,
        "message_count": 0,
        "summary": None,
        "user_info": state.user_info,
        # False while Redis never held the session (created while Redis was down): Redis
        # not knowing it then is no loss. True: Redis not knowing it means it expired.
        "in_redis": in_redis,
    } | ({} if state.memory else {"memory": False})


def state_from_doc(doc: dict[str, Any]) -> SessionState:
    """The session's own fields from its document."""
    status = doc.get("status", "active")
    return SessionState(
        session_id=doc["session_id"],
        owner=doc["owner"],
        status=status if status in ("active", "ending", "ended") else "active",
        created_at=float(doc.get("created_at") or 0),
        last_active_at=float(doc.get("last_active_at") or doc.get("created_at") or 0),
        # Outage-held messages are merged into Redis with fresh numbers: the session's
        # own count is what came before them.
        seq=int(max((doc.get("seq_hwm") or 0) - (doc.get("pending_count") or 0), doc.get("message_count") or 0)),
        user_info=dict(doc.get("user_info") or {}),
        memory=doc.get("memory") is not False,
    )


def kb_uses(session: dict[str, Any]) -> dict[str, tuple[str, int]]:
    """KB document id -> (entry id, answers that cited it) for an ended session, at most
    MAX_KB_ENTRIES_PER_SESSION entries. Sessions ended before ``kb_source_uses`` existed
    count one use per entry."""
    sources = [str(e) for e in session.get("kb_sources") or []]
    uses = session.get("kb_source_uses")
    if not isinstance(uses, list) or len(uses) != len(sources):
        uses = [1] * len(sources)
    out: dict[str, tuple[str, int]] = {}
    for name, n in zip(sources, uses, strict=True):
        doc_id = kb_doc_id(name)
        out[doc_id] = (name, out.get(doc_id, (name, 0))[1] + max(int(n), 1))
    return {k: out[k] for k in sorted(out)[:MAX_KB_ENTRIES_PER_SESSION]}


def batches(parts: list[tuple[int, list[dict[str, Any]]]]) -> Iterator[list[tuple[int, list[dict[str, Any]]]]]:
    """Analytics parts grouped into commits under Firestore's per-commit limits."""
    batch: list[tuple[int, list[dict[str, Any]]]] = []
    size = 0
    for item in parts:
        n = stored_size(item[1])
        if batch and (size + n > ANALYTICS_BATCH_BYTES or len(batch) >= ANALYTICS_BATCH_WRITES):
            yield batch
            batch, size = [], 0
        batch.append(item)
        size += n
    if batch:
        yield batch


def fit_session_doc(sid: str, fields: dict[str, Any], base: SessionState) -> dict[str, Any]:
    """The ended session's fields, within one document. The KB entries the trigger counts
    are the session's MAX_KB_ENTRIES_PER_SESSION most cited (analytics keep every answer's
    sources); then, if still too large, the oldest of the final messages go."""
    sources = list(fields.get("kb_sources") or [])
    uses = list(fields.get("kb_source_uses") or [1] * len(sources))
    out = dict(fields)
    if len(sources) > MAX_KB_ENTRIES_PER_SESSION and len(uses) == len(sources):
        kept = sorted(sorted(zip(sources, uses, strict=True), key=lambda e: (-e[1], e[0]))[:MAX_KB_ENTRIES_PER_SESSION])
        out["kb_sources"], out["kb_source_uses"] = [e[0] for e in kept], [e[1] for e in kept]
    final = list(out.get("final_messages") or [])
    while final and stored_size(out) + stored_size(base.user_info) > SESSION_DOC_BYTES:
        final.pop(0)
        out["final_messages"] = final
    if len(sources) != len(out.get("kb_sources") or []) or final != list(fields.get("final_messages") or []):
        log.warning(
            "session document trimmed to fit",
            extra={"session_id": sid, "kb_sources": len(sources), "final_messages": len(final)},
        )
    return out


def storable(
    sid: str, entries: list[dict[str, Any]], fields: dict[str, Any], base: SessionState
) -> tuple[list[dict[str, Any]], dict[str, Any], SessionState]:
    """What the end writes, without values Firestore refuses. The edge refuses them now;
    data buffered before it did must not make a session impossible to end."""
    # Nesting: Firestore's own bound (20 levels), less this wrapper's level and one spare.
    whole = {"analytics": entries, "session": fields, "user_info": base.user_info}
    cleaned, dropped = make_storable(whole, max_depth=19)
    if not dropped:
        return entries, fields, base
    log.error("unstorable session data dropped at the end", extra={"session_id": sid, "dropped": dropped[:20]})
    return cleaned["analytics"], cleaned["session"], replace(base, user_info=cleaned["user_info"])


def stored_size(value: Any) -> int:
    """Bytes ``value`` takes in a Firestore document, by Firestore's storage-size rules
    (JSON size can be a quarter of it: an int is 8 bytes there)."""
    if isinstance(value, str):
        return len(value.encode("utf-8", "replace")) + 1
    if isinstance(value, dict):
        return sum(len(str(k).encode("utf-8", "replace")) + 1 + stored_size(v) for k, v in value.items())
    if isinstance(value, list | tuple):
        return sum(stored_size(v) for v in value)
    if value is None or isinstance(value, bool):
        return 1
    return 8


def split_parts(entries: list[dict[str, Any]], max_bytes: int) -> list[list[dict[str, Any]]]:
    """Split analytics entries into parts that each fit one document (never drop any)."""
    parts: list[list[dict[str, Any]]] = [[]]
    size = 0
    for e in entries:
        n = stored_size(e) + 16
        if parts[-1] and size + n > max_bytes:
            parts.append([])
            size = 0
        parts[-1].append(e)
        size += n
    return parts if parts[0] else []
