"""What the erasure deletes in Firestore, and its receipts (``erasures/{id}``): the session
document replaced by a tombstone first, then what else Firestore holds of the session, and
a user's document with its ledger."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from shared.store.base import ERASED
from shared.store.firestore import analytics
from shared.store.firestore.client import Firestore
from shared.store.firestore.memories import MemoryStore
from shared.store.firestore.state import StateStore

if TYPE_CHECKING:
    from google.cloud.firestore import Transaction


class Forbidden(Exception):  # noqa: N818 - an outcome, not a failure
    """Another user's session: nothing was written."""


class ErasureStore:
    def __init__(self, fs: Firestore) -> None:
        self.fs = fs

    @property
    def configured(self) -> bool:
        return self.fs.configured

    def tombstone(self, sid: str, owner: str | None, now: float) -> dict[str, Any] | None:
        """Replace the session document with a tombstone (no owner, no content), first of
        all erasure steps, in a transaction: an end or a count racing it sees the tombstone.
        Returns the document it replaced (None: there was none, or it was a tombstone);
        raises PermissionDenied-worthy ``Forbidden`` if ``owner`` does not own it."""

        def work(tx: Transaction) -> dict[str, Any] | None:
            ref = self.fs.session_ref(sid)
            snap = ref.get(transaction=tx)
            doc = snap.to_dict() if snap.exists else None
            if doc is not None and doc.get("status") == ERASED:
                return None
            if doc is not None and owner is not None and doc.get("owner") != owner:
                raise Forbidden(sid)
            # Written even where there was no document (a session created while Firestore
            # was down, its document still to come): the late write then finds the tombstone.
            tx.set(ref, {"session_id": sid, "status": ERASED, "erased_at": now})
            return doc

        with self.fs.guard("tombstone", sid):
            return self.fs.transactional(work)

    def delete_session_data(self, sid: str) -> dict[str, int]:
        """Delete what Firestore holds of a session besides its tombstone: outage-held
        messages, analytics (and parts), weak answers listed for the reports."""
        counts = {"pending_messages": 0, "analytics_entries": 0, "low_confidence": 0}
        from google.cloud.firestore_v1.base_query import FieldFilter

        with self.fs.guard("erase", sid):
            for d in self.fs.session_ref(sid).collection("pending").stream(timeout=self.fs.timeout):
                d.reference.delete()
                counts["pending_messages"] += 1
            q = self.fs.db().collection("low_confidence").where(filter=FieldFilter("session_id", "==", sid))
            for d in q.stream(timeout=self.fs.timeout):
                d.reference.delete()
                counts["low_confidence"] += 1
        counts["analytics_entries"] = analytics.delete(self.fs, sid)
        return counts

    def delete_memory(self, uid: str, sid: str) -> int:
        """The user's memory of the session (after its tombstone: no late write restores it)."""
        return MemoryStore(self.fs).delete_quietly(uid, sid)

    def delete_memories(self, uid: str) -> int:
        """Every memory the user still has (those of sessions already erased are gone)."""
        return MemoryStore(self.fs).delete_all(uid)

    def receipt(self, receipt_id: str) -> dict[str, Any] | None:
        return self.fs.read("receipt", "erasures", receipt_id)

    def open_receipt(self, receipt: dict[str, Any]) -> None:
        """The receipt, created if this is the first run, else marked not complete: its
        counts stay and runs add to them (``count``), however many run at once."""
        from google.api_core.exceptions import AlreadyExists

        ref = self.fs.db().collection("erasures").document(receipt["receipt_id"])
        with self.fs.guard("receipt"):
            try:
                ref.create(receipt, timeout=self.fs.timeout)
            except AlreadyExists:
                ref.update({"complete": False}, timeout=self.fs.timeout)

    def count(self, receipt_id: str, erased: dict[str, int]) -> None:
        """Add what one step erased to the receipt, atomically (Firestore's increment): two
        runs at once each add their own, and none overwrites the other's."""
        from google.cloud.firestore import Increment

        changes = {f"erased.{k}": Increment(v) for k, v in erased.items() if v}
        if changes:
            with self.fs.guard("receipt"):
                self.fs.db().collection("erasures").document(receipt_id).update(changes, timeout=self.fs.timeout)

    def close_receipt(self, receipt_id: str, at: float) -> dict[str, Any]:
        """Mark the erasure complete; the receipt as it now stands (every run's counts)."""
        ref = self.fs.db().collection("erasures").document(receipt_id)
        with self.fs.guard("receipt"):
            ref.update({"complete": True, "completed_at": at}, timeout=self.fs.timeout)
            return ref.get(timeout=self.fs.timeout).to_dict() or {}

    def delete_user(self, uid: str) -> int:
        """The user document, its ledger of counted sessions and its apps' state; returns
        documents deleted."""
        n = StateStore(self.fs).delete_all(uid)
        with self.fs.guard("erase_user"):
            uref = self.fs.db().collection("users").document(uid)
            for d in uref.collection("counted").stream(timeout=self.fs.timeout):
                d.reference.delete()
                n += 1
            if uref.get(**self.fs.kw()).exists:
                uref.delete()
                n += 1
        return n
