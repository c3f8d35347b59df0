"""The Firestore layer: the durable session document, messages accepted while Redis is
down, the analytics written once at session end, user stats and KB usage.

Data model (see README):
  sessions/{sid}                  owner, status, timestamps, message_count, summary, ...
  sessions/{sid}/pending/{mid}    a message accepted while Redis was down (outage path only)
  analytics/{sid}                 the session's queries; analytics/{sid}/parts/{n} if large
  users/{uid}                     totals, recent_sessions (20), counted_sessions (ledger)
  kb_usage/{entry}                use_count, last_used_at
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

from shared.errors import StoreError
from shared.settings import Settings
from shared.store import firestore_client
from shared.store.base import QueryRecord, SessionState, StoredMessage
from shared.store.breaker import CircuitBreaker

log = logging.getLogger("chat_memory.firestore")

T = TypeVar("T")
RECENT_SESSIONS = 20
# Sessions remembered per user as already counted: the trigger's idempotency ledger.
# Redeliveries of one event come minutes apart, not 200 sessions apart.
COUNTED_LEDGER = 200
MAX_KB_ENTRIES_PER_SESSION = 400  # a transaction holds at most 500 writes
ANALYTICS_PART_BYTES = 700_000  # below Firestore's 1 MiB document limit, with room
# The late document write rides on an append or read: it must not wait out a hung Firestore.
ENSURE_SESSION_TIMEOUT_S = 0.25
_SAFE_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,128}$")


def kb_doc_id(entry: str) -> str:
    """A KB entry id as a Firestore document id: as-is when safe, else a stable hash."""
    if _SAFE_ID.fullmatch(entry) and entry not in (".", ".."):
        return entry
    return "h_" + hashlib.sha256(entry.encode()).hexdigest()[:40]


@dataclass(slots=True)
class FsAppend:
    status: str  # ok | dup | missing | forbidden | ended
    seq: int = 0


class FirestoreLayer:
    name = "firestore"

    def __init__(self, settings: Settings, client: Any = None, breaker: CircuitBreaker | None = None) -> None:
        self.settings = settings
        self._client = client
        self.breaker = breaker or (
            CircuitBreaker(settings.redis_breaker_cooldown_s) if client is not None else firestore_client.BREAKER
        )

    @property
    def configured(self) -> bool:
        return self.settings.firestore_enabled

    # -- plumbing -------------------------------------------------------------------
    def db(self) -> Any:
        return self._client if self._client is not None else firestore_client.get_client()

    @contextmanager
    def _guard(self, op: str) -> Iterator[None]:
        if not self.configured:
            raise StoreError("firestore disabled", layer="firestore")
        breaker = self.breaker
        if not breaker.allow():
            raise StoreError("firestore circuit open", layer="firestore")
        from google.api_core.exceptions import GoogleAPIError

        try:
            yield
        except (GoogleAPIError, OSError) as exc:
            breaker.record_failure(exc)
            log.warning("firestore unavailable", extra={"op": op, "error": type(exc).__name__})
            raise StoreError(f"firestore {op}: {type(exc).__name__}", layer="firestore") from exc
        except ValueError as exc:
            # google-cloud-firestore raises ValueError when a transaction gives up.
            breaker.record_failure(exc)
            raise StoreError(f"firestore {op}: {exc}", layer="firestore") from exc
        breaker.record_success()

    def _kw(self) -> dict[str, Any]:
        from google.api_core.retry import Retry

        t = self.settings.firestore_timeout_s
        return {"timeout": t, "retry": Retry(initial=0.05, maximum=0.5, timeout=t)}

    def _transactional(self, fn: Callable[..., T], *args: Any) -> T:
        from google.cloud import firestore

        tx = self.db().transaction(max_attempts=5)
        return firestore.transactional(fn)(tx, *args)

    def _session_ref(self, sid: str) -> Any:
        return self.db().collection("sessions").document(sid)

    # -- sessions ---------------------------------------------------------------------
    @staticmethod
    def _new_doc(state: SessionState, *, in_redis: bool) -> dict[str, Any]:
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
        }

    def create_session(self, state: SessionState) -> None:
        with self._guard("create"):
            self._session_ref(state.session_id).create(
                self._new_doc(state, in_redis=True), timeout=self.settings.firestore_timeout_s
            )

    def ensure_session(self, state: SessionState) -> None:
        """Create the document of a session Redis holds, if it has none (created while
        Firestore was down); an existing document is left as it is."""
        from google.api_core.exceptions import AlreadyExists
        from google.api_core.retry import Retry

        t = min(ENSURE_SESSION_TIMEOUT_S, self.settings.firestore_timeout_s)
        with self._guard("ensure_session"):
            try:
                self._session_ref(state.session_id).create(
                    self._new_doc(state, in_redis=True), retry=Retry(initial=0.05, maximum=0.1, timeout=t), timeout=t
                )
            except AlreadyExists:
                pass

    def set_in_redis(self, sid: str, value: bool) -> None:
        with self._guard("set_in_redis"):
            self._session_ref(sid).update({"in_redis": value}, timeout=self.settings.firestore_timeout_s)

    def get_session(self, sid: str) -> dict[str, Any] | None:
        with self._guard("get_session"):
            snap = self._session_ref(sid).get(**self._kw())
        return snap.to_dict() if snap.exists else None

    def get_user(self, uid: str) -> dict[str, Any] | None:
        with self._guard("get_user"):
            snap = self.db().collection("users").document(uid).get(**self._kw())
        return snap.to_dict() if snap.exists else None

    @staticmethod
    def state_from_doc(doc: dict[str, Any]) -> SessionState:
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
        )

    # -- the outage path: messages while Redis is down ---------------------------------
    def append(
        self,
        sid: str,
        owner: str | None,
        msg: StoredMessage,
        cmid: str | None,
        seq_hint: int,
        *,
        base: SessionState | None = None,
        base_in_redis: bool = False,
    ) -> FsAppend:
        """Accept a message durably while Redis is down (two writes; outage path only).

        The sequence number continues from the highest this instance or the session
        document knows, so messages merged back into Redis keep acceptance order.
        ``base`` creates the session document if it is missing (a session created while
        Firestore was down; ``base_in_redis``: one that Redis holds).
        """
        pend = self._session_ref(sid).collection("pending")

        def work(tx: Any) -> FsAppend:
            ref = self._session_ref(sid)
            snap = ref.get(transaction=tx)
            doc = snap.to_dict() if snap.exists else None
            if doc is None and base is None:
                return FsAppend("missing")
            if doc is None:
                assert base is not None
                doc = self._new_doc(base, in_redis=base_in_redis)
            if owner and doc.get("owner") != owner:
                return FsAppend("forbidden")
            if doc.get("status") != "active":
                return FsAppend("ended")
            # exactly once per message id (the client's, or one a retried call reuses)
            prev = pend.document(msg.mid).get(transaction=tx)
            if prev.exists:
                return FsAppend("dup", seq=int(prev.get("seq")))
            seq = max(int(doc.get("seq_hwm") or 0), int(doc.get("message_count") or 0), seq_hint) + 1
            rec = msg.to_dict() | {"seq": seq, "cmid": cmid}
            if msg.role == "assistant":
                rec["query"] = doc.get("pending_query")
            update = doc | {
                "seq_hwm": seq,
                "last_active_at": msg.timestamp,
                "pending_count": int(doc.get("pending_count") or 0) + 1,
                "pending_query": msg.content if msg.role == "user" else None,
            }
            tx.set(ref, update)
            tx.set(pend.document(msg.mid), rec)
            return FsAppend("ok", seq=seq)

        with self._guard("append"):
            return self._transactional(work)

    def sessions_with_pending(self, limit: int = 500) -> list[str]:
        """Sessions holding messages accepted while Redis was down (single-field index)."""
        from google.cloud.firestore_v1.base_query import FieldFilter

        with self._guard("pending_scan"):
            q = self.db().collection("sessions").where(filter=FieldFilter("pending_count", ">", 0)).limit(limit)
            return [d.id for d in q.stream(timeout=self.settings.firestore_timeout_s)]

    def read_pending(self, sid: str) -> tuple[list[StoredMessage], list[QueryRecord]]:
        """Messages accepted here during outages, in seq order, and their analytics entries."""
        with self._guard("read_pending"):
            docs = list(self._session_ref(sid).collection("pending").stream(timeout=self.settings.firestore_timeout_s))
        msgs: list[StoredMessage] = []
        queries: list[QueryRecord] = []
        for d in docs:
            r = d.to_dict()
            m = StoredMessage(
                seq=int(r["seq"]),
                mid=r["mid"],
                role=r["role"],
                content=r["content"],
                timestamp=float(r["timestamp"]),
                metadata=r.get("metadata"),
            )
            msgs.append(m)
            if m.role == "assistant":
                queries.append(QueryRecord.from_answer(m.seq, m.mid, r.get("query"), m))
        msgs.sort(key=lambda m: m.seq)
        queries.sort(key=lambda q: q.seq)
        return msgs, queries

    # -- session end: one batch ----------------------------------------------------------
    def end_session(
        self,
        sid: str,
        base: SessionState,
        fields: dict[str, Any],
        queries: list[QueryRecord],
        has_pending: bool,
    ) -> tuple[bool, dict[str, Any]]:
        """Mark the session ended and write its analytics, once.

        Returns (already_ended, the session document after). A repeated call finds the
        document ended and changes nothing. Large analytics are split into parts written
        first (idempotent overwrites), then the session and the analytics head commit
        together in one transaction.
        """
        entries = [q.to_dict() for q in queries]
        parts = _split(entries, ANALYTICS_PART_BYTES)
        ana_ref = self.db().collection("analytics").document(sid)
        with self._guard("end_session"):
            if len(parts) > 1:
                batch = self.db().batch()
                for i, part in enumerate(parts[1:], start=1):
                    batch.set(ana_ref.collection("parts").document(f"{i:04d}"), {"index": i, "queries": part})
                batch.commit(timeout=self.settings.firestore_timeout_s)

            def work(tx: Any) -> tuple[bool, dict[str, Any]]:
                ref = self._session_ref(sid)
                snap = ref.get(transaction=tx)
                doc = snap.to_dict() if snap.exists else None
                if doc is not None and doc.get("status") == "ended":
                    return True, doc
                if doc is None:
                    doc = {
                        "session_id": sid,
                        "owner": base.owner,
                        "created_at": base.created_at,
                        "user_info": base.user_info,
                    }
                after = doc | fields | {"status": "ended"}
                after.pop("pending_query", None)
                tx.set(ref, after)
                tx.set(
                    ana_ref,
                    {
                        "session_id": sid,
                        "user_id": after["owner"],
                        "agent_id": fields.get("agent_id"),
                        "ended_at": fields.get("ended_at"),
                        "query_count": len(entries),
                        "parts": len(parts),
                        "queries": parts[0] if parts else [],
                    },
                )
                if has_pending:
                    for d in ref.collection("pending").list_documents():
                        tx.delete(d)
                return False, after

            return self._transactional(work)

    def read_analytics(self, sid: str) -> list[dict[str, Any]]:
        with self._guard("read_analytics"):
            ref = self.db().collection("analytics").document(sid)
            snap = ref.get(**self._kw())
            if not snap.exists:
                return []
            head = snap.to_dict()
            out = list(head.get("queries") or [])
            if int(head.get("parts") or 1) > 1:
                for p in sorted(ref.collection("parts").stream(), key=lambda d: d.id):
                    out.extend(p.get("queries") or [])
        return out

    # -- after the end: user stats and KB usage, exactly once ---------------------------------
    def apply_session_stats(self, sid: str, session: dict[str, Any]) -> bool:
        """Count an ended session into users/{uid} and kb_usage, once.

        The user document keeps a ledger of sessions already counted, written in the same
        transaction as the counts, so a redelivered trigger event changes nothing.
        """
        from google.cloud import firestore

        uid = session["owner"]
        kb = sorted({kb_doc_id(str(e)) for e in (session.get("kb_sources") or [])})[:MAX_KB_ENTRIES_PER_SESSION]
        kb_names = {kb_doc_id(str(e)): str(e) for e in (session.get("kb_sources") or [])}
        ended_at = float(session.get("ended_at") or 0)

        def work(tx: Any) -> bool:
            uref = self.db().collection("users").document(uid)
            usnap = uref.get(transaction=tx)
            user = usnap.to_dict() if usnap.exists else {}
            counted = list(user.get("counted_sessions") or [])
            if sid in counted:
                return False
            recent = [s for s in (user.get("recent_sessions") or []) if s != sid]
            tx.set(
                uref,
                {
                    "user_id": uid,
                    "total_sessions": int(user.get("total_sessions") or 0) + 1,
                    "total_messages": int(user.get("total_messages") or 0) + int(session.get("message_count") or 0),
                    "total_queries": int(user.get("total_queries") or 0) + int(session.get("queries_recorded") or 0),
                    "last_active_at": max(float(user.get("last_active_at") or 0), ended_at),
                    "recent_sessions": ([sid] + recent)[:RECENT_SESSIONS],
                    "counted_sessions": ([sid] + counted)[:COUNTED_LEDGER],
                },
            )
            for entry in kb:
                tx.set(
                    self.db().collection("kb_usage").document(entry),
                    {
                        "entry_id": kb_names.get(entry, entry),
                        "use_count": firestore.Increment(1),
                        "last_used_at": ended_at,
                    },
                    merge=True,
                )
            return True

        with self._guard("apply_stats"):
            return self._transactional(work)

    # -- the sweep ----------------------------------------------------------------------------
    def active_sessions_before(self, cutoff: float, page: int, max_docs: int) -> Iterator[dict[str, Any]]:
        """Active sessions created before ``cutoff`` (index: status + created_at)."""
        return self._paged("sweep_query", self._sessions_where("active", "created_at", "<", cutoff), page, max_docs)

    def sessions_ended_since(self, since: float, page: int, max_docs: int) -> Iterator[dict[str, Any]]:
        """Sessions ended at or after ``since`` (index: status + ended_at)."""
        return self._paged("repair_query", self._sessions_where("ended", "ended_at", ">=", since), page, max_docs)

    def _sessions_where(self, status: str, field: str, op: str, value: float) -> Any:
        from google.cloud.firestore_v1.base_query import FieldFilter

        return (
            self.db()
            .collection("sessions")
            .where(filter=FieldFilter("status", "==", status))
            .where(filter=FieldFilter(field, op, value))
            .order_by(field)
        )

    def _paged(self, op: str, query: Any, page: int, max_docs: int) -> Iterator[dict[str, Any]]:
        """Every match, a page at a time (a cursor, not an offset), up to ``max_docs``: a
        fixed 'first N' would let long-lived matches at the head starve the rest."""
        last = None
        seen = 0
        while seen < max_docs:
            q = query.start_after(last) if last is not None else query
            with self._guard(op):
                docs = list(q.limit(min(page, max_docs - seen)).stream(timeout=self.settings.firestore_timeout_s))
            for d in docs:
                yield d.to_dict()
            seen += len(docs)
            if len(docs) < page:
                return
            last = docs[-1]

    def ping(self) -> dict[str, Any]:
        import time

        if not self.configured:
            return {"status": "disabled"}
        t0 = time.perf_counter()
        try:
            with self._guard("ping"):
                self.db().collection("_health").document("ping").get(**self._kw())
        except StoreError as exc:
            return {"status": "down", "error": str(exc), "breaker": self.breaker.state()}
        return {"status": "up", "latency_ms": round((time.perf_counter() - t0) * 1000, 2)}


def _split(entries: list[dict[str, Any]], max_bytes: int) -> list[list[dict[str, Any]]]:
    """Split analytics entries into parts that each fit one document (never drop any)."""
    import json

    parts: list[list[dict[str, Any]]] = [[]]
    size = 0
    for e in entries:
        n = len(json.dumps(e, ensure_ascii=False).encode()) + 64
        if parts[-1] and size + n > max_bytes:
            parts.append([])
            size = 0
        parts[-1].append(e)
        size += n
    return parts if parts[0] else []
