"""The Firestore layer: the durable session document, messages accepted while Redis is
down, the analytics written once at session end, user stats and KB usage.

Data model (see README):
  sessions/{sid}                  owner, status, timestamps, message_count, summary, ...
  sessions/{sid}/pending/{mid}    a message accepted while Redis was down (outage path only)
  analytics/{sid}                 the session's queries; analytics/{sid}/parts/{n} if large
  users/{uid}                     totals, recent_sessions (20)
  users/{uid}/counted/{sid}       marker: this ended session is counted in the totals
  kb_usage/{entry}                use_count (answers), session_count, last_used_at
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from shared.errors import StoreError
from shared.settings import Settings
from shared.store.base import (
    ERASED,
    Appended,
    AppendRequest,
    LayerName,
    QueryRecord,
    SessionState,
    StoredMessage,
)
from shared.store.breaker import CircuitBreaker
from shared.store.firestore import client as firestore_client
from shared.store.firestore import rollups
from shared.store.firestore.docs import (
    ANALYTICS_PART_BYTES,
    batches,
    fit_session_doc,
    kb_uses,
    new_session_doc,
    split_parts,
    state_from_doc,
    storable,
)

log = logging.getLogger("chat_memory.firestore")

T = TypeVar("T")
RECENT_SESSIONS = 20
# The late document write rides on an append or read: it must not wait out a hung Firestore.
ENSURE_SESSION_TIMEOUT_S = 0.25


class PendingArrived(Exception):  # noqa: N818 - an outcome, not a failure
    """An outage-path message was accepted after the end's snapshot: nothing was written;
    the end takes it in and tries again."""


class Erased(Exception):  # noqa: N818 - an outcome, not a failure
    """The session's data was erased (its document is a tombstone): nothing was written."""


class Forbidden(Exception):  # noqa: N818 - an outcome, not a failure
    """Another user's session: nothing was written."""


class UsedSince(Exception):  # noqa: N818 - an outcome, not a failure
    """The session was used after the caller's idle bound: nothing was written."""


class FirestoreLayer:
    name: LayerName = "firestore"

    def __init__(
        self,
        settings: Settings,
        client: Any = None,
        breaker: CircuitBreaker | None = None,
        *,
        connect: Callable[[], Any] | None = None,
    ) -> None:
        """``client``, or ``connect`` (the instance's shared client, built on first use),
        or neither: this layer builds its own from ``settings`` on first use."""
        self.settings = settings
        self._client = client
        self._connect = connect
        # While Firestore is down an instance tries it at most once per cool-down, like Redis.
        self.breaker = breaker or CircuitBreaker(settings.redis_breaker_cooldown_s)

    @property
    def configured(self) -> bool:
        return self.settings.firestore_enabled

    # -- plumbing -------------------------------------------------------------------
    def db(self) -> Any:
        if self._client is None:
            if self._connect is not None:
                return self._connect()
            self._client = firestore_client.build(self.settings)
        return self._client

    @contextmanager
    def _guard(self, op: str, sid: str | None = None) -> Iterator[None]:
        if not self.configured:
            raise StoreError("firestore disabled", layer="firestore")
        breaker = self.breaker
        if not breaker.allow():
            raise StoreError("firestore circuit open", layer="firestore")
        try:
            yield
        except Exception as exc:
            if not _is_rejection(exc):
                if not isinstance(exc, _outage_errors()):
                    raise
                breaker.record_failure(exc)
                log.warning("firestore unavailable", extra={"op": op, "error": type(exc).__name__})
                raise StoreError(f"firestore {op}: {type(exc).__name__}", layer="firestore") from exc
            # Firestore answered: it is up. A request it refuses (or the client refuses to
            # send) is this request's defect, and must not close Firestore to everyone.
            if not isinstance(exc, ValueError | TypeError):
                breaker.record_success()
            log.error(
                "firestore refused a request",
                extra={"op": op, "session_id": sid, "error": type(exc).__name__, "detail": str(exc)[:300]},
            )
            raise StoreError(f"firestore {op}: {type(exc).__name__}", layer="firestore") from exc
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
    def create_session(self, state: SessionState) -> None:
        with self._guard("create", state.session_id):
            self._session_ref(state.session_id).create(
                new_session_doc(state, in_redis=True), timeout=self.settings.firestore_timeout_s
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
                    new_session_doc(state, in_redis=True), retry=Retry(initial=0.05, maximum=0.1, timeout=t), timeout=t
                )
            except AlreadyExists:
                pass

    def set_in_redis(self, sid: str, value: bool) -> None:
        with self._guard("set_in_redis"):
            self._session_ref(sid).update({"in_redis": value}, timeout=self.settings.firestore_timeout_s)

    def get_session(self, sid: str) -> dict[str, Any] | None:
        with self._guard("get_session", sid):
            snap = self._session_ref(sid).get(**self._kw())
        return snap.to_dict() if snap.exists else None

    def get_user(self, uid: str) -> dict[str, Any] | None:
        with self._guard("get_user"):
            snap = self.db().collection("users").document(uid).get(**self._kw())
        return snap.to_dict() if snap.exists else None

    # -- the outage path: messages while Redis is down ---------------------------------
    def state(self, sid: str) -> SessionState | None:
        doc = self.get_session(sid)
        return state_from_doc(doc) if doc and doc.get("status") != ERASED else None

    def append(self, req: AppendRequest) -> Appended:
        """Accept a message durably while Redis is down (two writes; outage path only).

        The sequence number continues from the highest this instance or the session
        document knows, so messages merged back into Redis keep acceptance order.
        ``base`` creates the session document if it is missing (a session created while
        Firestore was down; ``base_in_redis``: one that Redis holds).
        """
        sid, owner, msg, base = req.session_id, req.owner, req.message, req.base
        pend = self._session_ref(sid).collection("pending")

        def work(tx: Any) -> Appended:
            ref = self._session_ref(sid)
            snap = ref.get(transaction=tx)
            doc = snap.to_dict() if snap.exists else None
            if doc is not None and doc.get("status") == ERASED:
                return Appended("erased")
            if doc is None and base is None:
                return Appended("missing")
            if doc is None:
                assert base is not None
                doc = new_session_doc(base, in_redis=req.base_in_redis)
            if owner and doc.get("owner") != owner:
                return Appended("forbidden")
            if doc.get("status") != "active":
                return Appended("ended")
            # exactly once per message id (the client's, or one a retried call reuses)
            prev = pend.document(msg.mid).get(transaction=tx)
            if prev.exists:
                return Appended("dup", seq=int(prev.get("seq")))
            seq = max(int(doc.get("seq_hwm") or 0), int(doc.get("message_count") or 0), req.seq_hint) + 1
            rec = msg.to_dict() | {"seq": seq, "cmid": req.cmid}
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
            return Appended("ok", seq=seq)

        with self._guard("append", sid):
            return self._transactional(work)

    def sessions_with_pending(self, limit: int = 500) -> list[str]:
        """Sessions holding messages accepted while Redis was down (single-field index)."""
        from google.cloud.firestore_v1.base_query import FieldFilter

        with self._guard("pending_scan"):
            q = (
                self.db()
                .collection("sessions")
                .where(filter=FieldFilter("pending_count", ">", 0))
                .select(["pending_count"])  # ids only: a session document may be large
                .limit(limit)
            )
            return [d.id for d in q.stream(timeout=self.settings.firestore_timeout_s)]

    def read_pending(self, sid: str) -> tuple[list[StoredMessage], list[QueryRecord]]:
        """Messages accepted here during outages, in seq order, and their analytics entries."""
        with self._guard("read_pending", sid):
            docs = list(self._session_ref(sid).collection("pending").stream(timeout=self.settings.firestore_timeout_s))
        msgs: list[StoredMessage] = []
        queries: list[QueryRecord] = []
        for d in docs:
            r = d.to_dict()
            m = StoredMessage.from_dict(r)
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
        held_mids: set[str],
        idle_before: float | None = None,
    ) -> tuple[bool, dict[str, Any]]:
        """Mark the session ended and write its analytics, once.

        Returns (already_ended, the session document after). A repeated call finds the
        document ended and changes nothing. Large analytics are split into parts written
        first (idempotent overwrites), then the session and the analytics head commit
        together in one transaction. ``held_mids``: the outage-path messages the caller's
        snapshot includes; the transaction reads the pending ones itself and raises
        PendingArrived if there is another (an outage-path append reads and writes the
        session document in its own transaction, so one of the two sees the other).
        Raises UsedSince if the document was used after ``idle_before``.
        """
        entries, fields, base = storable(sid, [q.to_dict() for q in queries], fields, base)
        fields = fit_session_doc(sid, fields, base)
        parts = split_parts(entries, ANALYTICS_PART_BYTES)
        ana_ref = self.db().collection("analytics").document(sid)
        with self._guard("end_session", sid):
            for batch_parts in batches(list(enumerate(parts))[1:]):
                batch = self.db().batch()
                for i, part in batch_parts:
                    batch.set(ana_ref.collection("parts").document(f"{i:04d}"), {"index": i, "queries": part})
                batch.commit(timeout=self.settings.firestore_timeout_s)

            def work(tx: Any) -> tuple[bool, dict[str, Any]]:
                ref = self._session_ref(sid)
                snap = ref.get(transaction=tx)
                doc = snap.to_dict() if snap.exists else None
                if doc is not None and doc.get("status") == ERASED:
                    raise Erased(sid)
                if doc is not None and doc.get("status") == "ended":
                    return True, doc
                if doc is not None and idle_before is not None and float(doc.get("last_active_at") or 0) > idle_before:
                    raise UsedSince(sid)
                pending = []
                if doc is not None and int(doc.get("pending_count") or 0) > 0:
                    pending = list(ref.collection("pending").get(transaction=tx))
                    if any(d.id not in held_mids for d in pending):
                        raise PendingArrived(sid)
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
                for d in pending:
                    tx.delete(d.reference)
                return False, after

            try:
                return self._transactional(work)
            except Erased:
                # Erased while this end ran: the parts written above must not outlive it.
                self.delete_analytics(sid)
                raise

    # -- erasure -----------------------------------------------------------------------------
    def tombstone(self, sid: str, owner: str | None, now: float) -> dict[str, Any] | None:
        """Replace the session document with a tombstone (no owner, no content), first of
        all erasure steps, in a transaction: an end or a count racing it sees the tombstone.
        Returns the document it replaced (None: there was none, or it was a tombstone);
        raises PermissionDenied-worthy ``Forbidden`` if ``owner`` does not own it."""

        def work(tx: Any) -> dict[str, Any] | None:
            ref = self._session_ref(sid)
            snap = ref.get(transaction=tx)
            doc = snap.to_dict() if snap.exists else None
            if doc is None or doc.get("status") == ERASED:
                return None
            if owner is not None and doc.get("owner") != owner:
                raise Forbidden(sid)
            tx.set(ref, {"session_id": sid, "status": ERASED, "erased_at": now})
            return doc

        with self._guard("tombstone", sid):
            return self._transactional(work)

    def delete_session_data(self, sid: str) -> dict[str, int]:
        """Delete what Firestore holds of a session besides its tombstone: outage-held
        messages, analytics (and parts), weak answers listed for the reports."""
        counts = {"pending_messages": 0, "analytics_entries": 0, "low_confidence": 0}
        from google.cloud.firestore_v1.base_query import FieldFilter

        with self._guard("erase", sid):
            for d in self._session_ref(sid).collection("pending").stream(timeout=self.settings.firestore_timeout_s):
                d.reference.delete()
                counts["pending_messages"] += 1
            q = self.db().collection("low_confidence").where(filter=FieldFilter("session_id", "==", sid))
            for d in q.stream(timeout=self.settings.firestore_timeout_s):
                d.reference.delete()
                counts["low_confidence"] += 1
        counts["analytics_entries"] = self.delete_analytics(sid)
        return counts

    def delete_analytics(self, sid: str) -> int:
        with self._guard("erase_analytics", sid):
            ref = self.db().collection("analytics").document(sid)
            snap = ref.get(**self._kw())
            n = int((snap.to_dict() or {}).get("query_count") or 0) if snap.exists else 0
            for part in ref.collection("parts").stream(timeout=self.settings.firestore_timeout_s):
                part.reference.delete()
            ref.delete()
        return n

    def receipt(self, receipt_id: str) -> dict[str, Any] | None:
        with self._guard("receipt"):
            snap = self.db().collection("erasures").document(receipt_id).get(**self._kw())
        return snap.to_dict() if snap.exists else None

    def save_receipt(self, receipt: dict[str, Any]) -> None:
        with self._guard("receipt"):
            self.db().collection("erasures").document(receipt["receipt_id"]).set(
                receipt, timeout=self.settings.firestore_timeout_s
            )

    def delete_user(self, uid: str) -> int:
        """The user document and its ledger of counted sessions; returns documents deleted."""
        with self._guard("erase_user"):
            uref = self.db().collection("users").document(uid)
            n = 0
            for d in uref.collection("counted").stream(timeout=self.settings.firestore_timeout_s):
                d.reference.delete()
                n += 1
            if uref.get(**self._kw()).exists:
                uref.delete()
                n += 1
        return n

    def reread_session(self, sid: str) -> dict[str, Any] | None:
        """The session document, read even while the breaker is open: an end whose write
        just failed must learn whether that write landed before it may reopen the session."""
        from google.api_core.exceptions import GoogleAPIError

        try:
            snap = self._session_ref(sid).get(**self._kw())
        except (GoogleAPIError, OSError) as exc:
            raise StoreError(f"firestore reread: {type(exc).__name__}", layer="firestore") from exc
        return snap.to_dict() if snap.exists else None

    def read_analytics(self, sid: str) -> list[dict[str, Any]]:
        with self._guard("read_analytics", sid):
            ref = self.db().collection("analytics").document(sid)
            snap = ref.get(**self._kw())
            if not snap.exists:
                return []
            head = snap.to_dict()
            out = list(head.get("queries") or [])
            # One part (up to ~1 MiB) per read, each within the RPC deadline: a single
            # stream of every part would not be, for a long session.
            for i in range(1, int(head.get("parts") or 1)):
                out.extend(ref.collection("parts").document(f"{i:04d}").get(**self._kw()).get("queries") or [])
        return out

    # -- after the end: user stats and KB usage, exactly once ---------------------------------
    def apply_session_stats(self, sid: str, session: dict[str, Any]) -> bool:
        """Count an ended session into users/{uid}, kb_usage and the reporting rollups
        (``shared.store.firestore.rollups``), once.

        A marker users/{uid}/counted/{sid}, written in the same transaction as the counts,
        says the session was counted: a redelivered trigger event or the sweep's repair
        changes nothing, however many sessions the user ends.
        """
        from google.cloud import firestore

        uid = session["owner"]
        kb = kb_uses(session)
        ended_at = float(session.get("ended_at") or 0)
        marker = self.db().collection("users").document(uid).collection("counted").document(sid)
        with self._guard("apply_stats", sid):
            # Counted already (a redelivered event, the sweep's repair pass over the last
            # hour's sessions): one read, not the session's analytics. The transaction
            # below checks the marker again; this only saves the reads.
            if marker.get(**self._kw()).exists:
                return False
        # The analytics are written before the session turns ended, and never change after.
        report = rollups.session_rollup(sid, session, self.read_analytics(sid), self.settings.low_confidence_threshold)

        def work(tx: Any) -> bool:
            # The session as it is now, not as the event saw it: an erased session (its
            # document a tombstone) is never counted again, whatever event arrives late.
            now_doc = self._session_ref(sid).get(transaction=tx).to_dict() or {}
            if now_doc.get("status") != "ended" or now_doc.get("owner") != uid:
                return False
            uref = self.db().collection("users").document(uid)
            mref = uref.collection("counted").document(sid)
            usnap, msnap = uref.get(transaction=tx), mref.get(transaction=tx)
            user = usnap.to_dict() if usnap.exists else {}
            # counted_sessions: the ledger of earlier releases, read until it ages out of
            # the repair window; no longer written.
            legacy = list(user.get("counted_sessions") or [])
            if msnap.exists or sid in legacy:
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
                }
                | ({"counted_sessions": legacy} if legacy else {}),
            )
            tx.set(mref, {"session_id": sid, "ended_at": ended_at})
            for entry, (name, uses) in kb.items():
                tx.set(
                    self.db().collection("kb_usage").document(entry),
                    {
                        "entry_id": name,
                        "use_count": firestore.Increment(uses),
                        "session_count": firestore.Increment(1),
                        "last_used_at": ended_at,
                    },
                    merge=True,
                )
            rollups.write(tx, self.db(), report)
            return True

        with self._guard("apply_stats", sid):
            return self._transactional(work)

    def sessions_of(self, uid: str, limit: int, after: tuple[float, str] | None) -> list[dict[str, Any]]:
        """The user's session documents, oldest first, after the cursor (created_at, id)."""
        from google.cloud.firestore_v1.base_query import FieldFilter

        col = self.db().collection("sessions")
        q = col.where(filter=FieldFilter("owner", "==", uid)).order_by("created_at").order_by("__name__")
        if after is not None:
            q = q.start_after({"created_at": after[0], "__name__": col.document(after[1])})
        with self._guard("sessions_of"):
            return [d.to_dict() for d in q.limit(limit).stream(timeout=self.settings.firestore_timeout_s)]

    # -- reporting: admin reads ------------------------------------------------------------------
    def rollup_days(self, dates: list[str]) -> dict[str, dict[str, Any]]:
        """The day documents that exist among ``dates`` (one batched read)."""
        with self._guard("rollups"):
            refs = [self.db().collection("rollups").document(d) for d in dates]
            return {s.id: s.to_dict() for s in self.db().get_all(refs, **self._kw()) if s.exists}

    def low_confidence_page(
        self, from_ts: float, to_ts: float, limit: int, after: tuple[float, str] | None
    ) -> list[tuple[str, dict[str, Any]]]:
        """Low-confidence answers with from_ts <= timestamp < to_ts, newest first, after the
        cursor (timestamp, document id): pages neither skip nor repeat an answer."""
        from google.cloud import firestore
        from google.cloud.firestore_v1.base_query import FieldFilter

        col = self.db().collection("low_confidence")
        q = (
            col.where(filter=FieldFilter("timestamp", ">=", from_ts))
            .where(filter=FieldFilter("timestamp", "<", to_ts))
            .order_by("timestamp", direction=firestore.Query.DESCENDING)
            .order_by("__name__", direction=firestore.Query.DESCENDING)
        )
        if after is not None:
            q = q.start_after({"timestamp": after[0], "__name__": col.document(after[1])})
        with self._guard("low_confidence"):
            return [(d.id, d.to_dict()) for d in q.limit(limit).stream(timeout=self.settings.firestore_timeout_s)]

    def audit(self, admin_uid: str, action: str, session_id: str, at: float) -> None:
        """Who read which session's content, when (never the content itself)."""
        with self._guard("audit", session_id):
            self.db().collection("admin_audit").add(
                {"admin": admin_uid, "action": action, "session_id": session_id, "at": at},
                timeout=self.settings.firestore_timeout_s,
            )

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


def _outage_errors() -> tuple[type[BaseException], ...]:
    from google.api_core.exceptions import GoogleAPIError

    return (GoogleAPIError, OSError)


def _is_rejection(exc: BaseException) -> bool:
    """A request Firestore (or its client) refuses, as opposed to Firestore being away.

    Client-side ValueError/TypeError: a value the client cannot encode, or a transaction
    that gave up under contention on one document. A retry that timed out is judged by
    what it last met.
    """
    from google.api_core import exceptions as gx

    if isinstance(exc, gx.RetryError) and exc.cause is not None:
        return _is_rejection(exc.cause)
    if isinstance(exc, gx.TooManyRequests):
        return False
    return isinstance(exc, gx.BadRequest | gx.NotFound | gx.Conflict | ValueError | TypeError)
