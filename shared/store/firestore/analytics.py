"""A session's analytics document, ``analytics/{sid}`` (and ``parts/{n}`` if large), read
and deleted: the session layer writes it at the end; the stats, the reports, the export and
the erasure read or delete it through here."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from shared.store.firestore.client import Firestore


def read(fs: Firestore, sid: str) -> list[dict[str, Any]]:
    with fs.guard("read_analytics", sid):
        ref = fs.db().collection("analytics").document(sid)
        snap = ref.get(**fs.kw())
        if not snap.exists:
            return []
        head = snap.to_dict() or {}
        out = list(head.get("queries") or [])
        # One part (up to ~1 MiB) per read, each within the RPC deadline: a single
        # stream of every part would not be, for a long session.
        for i in range(1, int(head.get("parts") or 1)):
            out.extend(ref.collection("parts").document(f"{i:04d}").get(**fs.kw()).get("queries") or [])
    return out


def entries(fs: Firestore, sid: str) -> Iterator[dict[str, Any]]:
    """The same entries as ``read``, one part (up to ~1 MiB) in memory at a time: a reader
    that stops early (the export's page is full) reads no further part."""
    with fs.guard("read_analytics", sid):
        ref = fs.db().collection("analytics").document(sid)
        snap = ref.get(**fs.kw())
        if not snap.exists:
            return
        head = snap.to_dict() or {}
        del snap
    n = int(head.get("parts") or 1)
    yield from head.pop("queries", None) or []
    for i in range(1, n):
        with fs.guard("read_analytics", sid):
            part = ref.collection("parts").document(f"{i:04d}").get(**fs.kw()).get("queries") or []
        yield from part
        del part


def delete(fs: Firestore, sid: str) -> int:
    """Delete the head and its parts; returns the entries the head counted."""
    with fs.guard("erase_analytics", sid):
        ref = fs.db().collection("analytics").document(sid)
        snap = ref.get(**fs.kw())
        n = int((snap.to_dict() or {}).get("query_count") or 0) if snap.exists else 0
        for part in ref.collection("parts").stream(timeout=fs.timeout):
            part.reference.delete()
        ref.delete()
    return n
