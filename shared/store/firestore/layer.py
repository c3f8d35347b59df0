"""The Firestore session layer: what the core's failover uses (``layers.firestore``).

The durable session document, messages accepted while Redis is down, and the end's one
transaction with its analytics. The user's stats, the reports, the erasure and the sweep's
scans are their own stores (``stats``, ``reports``, ``erasure``, ``scans``), each over the
same ``client.Firestore``.

Data model (see README):
  sessions/{sid}                  owner, status, timestamps, message_count, summary, ...
  sessions/{sid}/pending/{mid}    a message accepted while Redis was down (outage path only)
  analytics/{sid}                 the session's queries; analytics/{sid}/parts/{n} if large
  users/{uid}                     totals, recent_sessions (20)
  users/{uid}/counted/{sid}       marker: this ended session is counted in the totals
  kb_usage/{entry}                use_count (answers), session_count, last_used_at
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from shared.errors import StoreError
from shared.settings import Settings
from shared.store.base import (
    ERASED,
    Appended,
    AppendRequest,
    AppendStatus,
    CreateRequest,
    LayerName,
    QueryRecord,
    SessionState,
    StoredMessage,
)
from shared.store.breaker import CircuitBreaker
from shared.store.firestore import analytics
from shared.store.firestore.client import Firestore
from shared.store.firestore.docs import (
    ANALYTICS_PART_BYTES,
    batches,
    fit_session_doc,
    new_session_doc,
    split_parts,
    state_from_doc,
    storable,
)

if TYPE_CHECKING:
    from google.cloud.firestore import Client, Transaction

# The late document write rides on an append or read: it must not wait out a hung Firestore.
ENSURE_SESSION_TIMEOUT_S = 0.25


class PendingArrived(Exception):  # noqa: N818 - an outcome, not a failure
    """An outage-path message was accepted after the end's snapshot: nothing was written;
    the end takes it in and tries again."""


class Erased(Exception):  # noqa: N818 - an outcome, not a failure
    """The session's data was erased (its document is a tombstone): nothing was written."""


class UsedSince(Exception):  # noqa: N818 - an outcome, not a failure
    """The session was used after the caller's idle bound: nothing was written."""


class FirestoreLayer:
    name: LayerName = "firestore"

    def __init__(
        self,
        fs: Firestore | Settings,
        client: Client | None = None,
        breaker: CircuitBreaker | None = None,
        *,
        connect: Callable[[], Client] | None = None,
    ) -> None:
        """``fs``: the instance's Firestore (shared with its other Firestore stores); or
        settings, and a ``client``, a ``connect`` or neither, to build one of its own."""
        self.fs = fs if isinstance(fs, Firestore) else Firestore(fs, client, breaker, connect=connect)

    @property
    def settings(self) -> Settings:
        return self.fs.settings

    @settings.setter
    def settings(self, settings: Settings) -> None:
        self.fs.settings = settings

    @property
    def breaker(self) -> CircuitBreaker:
        return self.fs.breaker

    @property
    def configured(self) -> bool:
        return self.fs.configured

    def db(self) -> Client:
        return self.fs.db()

    def ping(self) -> dict[str, Any]:
        return self.fs.ping()

    # -- sessions ---------------------------------------------------------------------
    def create(self, req: CreateRequest) -> bool:
        """The session's document (a new id: it cannot exist); StoreError if Firestore is down."""
        state = req.state
        with self.fs.guard("create", state.session_id):
            self.fs.session_ref(state.session_id).create(new_session_doc(state, in_redis=True), timeout=self.fs.timeout)
        return True

    def ensure_session(self, state: SessionState) -> None:
        """Create the document of a session Redis holds, if it has none (created while
        Firestore was down); an existing document is left as it is."""
        from google.api_core.exceptions import AlreadyExists
        from google.api_core.retry import Retry

        t = min(ENSURE_SESSION_TIMEOUT_S, self.fs.timeout)
        with self.fs.guard("ensure_session"):
            try:
                self.fs.session_ref(state.session_id).create(
                    new_session_doc(state, in_redis=True), retry=Retry(initial=0.05, maximum=0.1, timeout=t), timeout=t
                )
            except AlreadyExists:
                pass

    def set_in_redis(self, sid: str, value: bool) -> None:
        with self.fs.guard("set_in_redis"):
            self.fs.session_ref(sid).update({"in_redis": value}, timeout=self.fs.timeout)

    def get_session(self, sid: str) -> dict[str, Any] | None:
        return self.fs.read("get_session", "sessions", sid, sid)

    # -- the outage path: messages while Redis is down ---------------------------------
    def state(self, sid: str) -> SessionState | None:
        doc = self.get_session(sid)
        return state_from_doc(doc) if doc and doc.get("status") != ERASED else None

    def append(self, req: AppendRequest) -> Appended:
        """Accept a message durably while Redis is down (two writes; outage path only);
        'full' past the session's bounds (``pending_bytes``, ``pending_answers``: checked
        and counted in this transaction, once per message id).

        The sequence number continues from the highest this instance or the session
        document knows, so messages merged back into Redis keep acceptance order.
        ``base`` creates the session document if it is missing (a session created while
        Firestore was down; ``base_in_redis``: one that Redis holds).
        """
        sid, owner, msg, base = req.session_id, req.owner, req.message, req.base
        pend = self.fs.session_ref(sid).collection("pending")

        def work(tx: Transaction) -> Appended:
            ref = self.fs.session_ref(sid)
            snap = ref.get(transaction=tx)
            doc = snap.to_dict() if snap.exists else None
            if doc is not None and doc.get("status") == ERASED:
                return Appended("erased")
            if doc is None and base is None:
                return Appended("missing")
            if doc is None:
                assert base is not None
                doc = new_session_doc(base, in_redis=req.base_in_redis)
            refused: AppendStatus | None = "forbidden" if owner and doc.get("owner") != owner else None
            if refused or doc.get("status") != "active":
                return Appended(refused or "ended")
            # exactly once per message id (the client's, or one a retried call reuses)
            prev = pend.document(msg.mid).get(transaction=tx)
            if prev.exists:
                return Appended("dup", seq=int(prev.get("seq")))
            # The session's bound, as Redis keeps it, over what this path took in the
            # session's life (pending messages stay until its end). Redis' own ledger is
            # not known here: merged, the session holds at most its Redis bytes plus this.
            held = int(doc.get("pending_bytes") or 0) + msg.ledger_bytes()
            answers = int(doc.get("pending_answers") or 0) + int(msg.role == "assistant")
            if held > self.settings.analytics_buffer_max_bytes or answers > self.settings.analytics_buffer_max:
                return Appended("full")
            seq = max(int(doc.get("seq_hwm") or 0), int(doc.get("message_count") or 0), req.seq_hint) + 1
            rec = msg.to_dict() | {"seq": seq, "cmid": req.cmid}
            if msg.role == "assistant" and msg.content:
                rec["query"] = doc.get("pending_query")
            update = doc | {
                "seq_hwm": seq,
                "last_active_at": msg.timestamp,
                "pending_count": int(doc.get("pending_count") or 0) + 1,
                "pending_bytes": held,
                "pending_answers": answers,
                # an item alone (no text) neither asks nor answers: the question stays pending
                "pending_query": (msg.content if msg.role == "user" else None)
                if msg.content
                else doc.get("pending_query"),
            }
            tx.set(ref, update)
            tx.set(pend.document(msg.mid), rec)
            return Appended("ok", seq=seq)

        with self.fs.guard("append", sid):
            return self.fs.transactional(work)

    def sessions_with_pending(self, limit: int = 500) -> list[str]:
        """Sessions holding messages accepted while Redis was down (single-field index)."""
        from google.cloud.firestore_v1.base_query import FieldFilter

        with self.fs.guard("pending_scan"):
            q = (
                self.fs.db()
                .collection("sessions")
                .where(filter=FieldFilter("pending_count", ">", 0))
                .select(["pending_count"])  # ids only: a session document may be large
                .limit(limit)
            )
            return [d.id for d in q.stream(timeout=self.fs.timeout)]

    def read_pending(self, sid: str) -> tuple[list[StoredMessage], list[QueryRecord]]:
        """Messages accepted here during outages, in seq order, and their analytics entries."""
        with self.fs.guard("read_pending", sid):
            docs = list(self.fs.session_ref(sid).collection("pending").stream(timeout=self.fs.timeout))
        msgs: list[StoredMessage] = []
        queries: list[QueryRecord] = []
        for d in docs:
            r = d.to_dict()
            m = StoredMessage.from_dict(r)
            msgs.append(m)
            if m.role == "assistant" and m.content:
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
        ana_ref = self.fs.db().collection("analytics").document(sid)
        with self.fs.guard("end_session", sid):
            for batch_parts in batches(list(enumerate(parts))[1:]):
                batch = self.fs.db().batch()
                for i, part in batch_parts:
                    batch.set(ana_ref.collection("parts").document(f"{i:04d}"), {"index": i, "queries": part})
                batch.commit(timeout=self.fs.timeout)

            def work(tx: Transaction) -> tuple[bool, dict[str, Any]]:
                ref = self.fs.session_ref(sid)
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
                return self.fs.transactional(work)
            except Erased:
                # Erased while this end ran: the parts written above must not outlive it.
                analytics.delete(self.fs, sid)
                raise

    def reread_session(self, sid: str) -> dict[str, Any] | None:
        """The session document, read even while the breaker is open: an end whose write
        just failed must learn whether that write landed before it may reopen the session."""
        from google.api_core.exceptions import GoogleAPIError

        try:
            snap = self.fs.session_ref(sid).get(**self.fs.kw())
        except (GoogleAPIError, OSError) as exc:
            raise StoreError(f"firestore reread: {type(exc).__name__}", layer="firestore") from exc
        return snap.to_dict() if snap.exists else None

    def read_analytics(self, sid: str) -> list[dict[str, Any]]:
        """The session's analytics as the end wrote them ([] before its end)."""
        return analytics.read(self.fs, sid)
