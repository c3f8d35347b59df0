"""A framework's key/value state beside the sessions (ADK's ``user:`` and ``app:`` state; an
adapter's own names for sessions): ``users/{uid}/state/{app}`` per user and app, and
``app_state/{app}`` per app, shared by all its users.

Each document keeps the state as one JSON text (``json``) with ``updated_at``: the keys a
client names are never fields of a document (a shared one above all), so no key can be a
field path, a reserved name or a 1,500-byte field name, and the whole state is read and
written as one value. A merge is one Firestore transaction (read, merge, write): two
instances merging at once both land, neither overwrites the other's keys.

The app name is the document id: the edge allows ``[A-Za-z0-9_.:@-]{1,128}`` and refuses
``.``, ``..`` and ``__x__``, which Firestore refuses as ids.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from shared.errors import FailedPrecondition, PayloadTooLarge
from shared.store.firestore.client import Firestore

if TYPE_CHECKING:
    from google.cloud.firestore import DocumentReference, Transaction

USER_STATE = "state"  # users/{uid}/state/{app}
APP_STATE = "app_state"  # app_state/{app}
FIELD = "json"


class StateStore:
    def __init__(self, fs: Firestore) -> None:
        self.fs = fs

    def ref(self, app: str, uid: str | None) -> DocumentReference:
        """The user's state of ``app`` (``uid``), or the app's own (``uid`` None)."""
        db = self.fs.db()
        if uid is None:
            return db.collection(APP_STATE).document(app)
        return db.collection("users").document(uid).collection(USER_STATE).document(app)

    def read(self, app: str, uid: str | None) -> tuple[dict[str, Any], float | None]:
        with self.fs.guard("state_read"):
            snap = self.ref(app, uid).get(**self.fs.kw())
        return _decoded(snap.to_dict() if snap.exists else None)

    def merge(
        self,
        app: str,
        uid: str | None,
        merge: Callable[[dict[str, Any]], dict[str, Any]],
        *,
        max_bytes: int,
        max_docs: int,
        now: float,
    ) -> tuple[dict[str, Any], float]:
        """``merge`` applied to the stored state in one transaction; the new state. Past
        ``max_bytes`` of JSON a 413 (nothing written); a user's ``max_docs``-th app a 409."""
        ref = self.ref(app, uid)

        def work(tx: Transaction) -> tuple[dict[str, Any], float]:
            snap = ref.get(transaction=tx)
            if not snap.exists and uid is not None:
                others = ref.parent.select([]).limit(max_docs)  # ids only: the user's apps so far
                if len(list(tx.get(others))) >= max_docs:
                    raise FailedPrecondition(f"at most {max_docs} apps keep state per user", details={"field": "app"})
            state, _ = _decoded(snap.to_dict() if snap.exists else None)
            new = merge(state)
            text = json.dumps(new, separators=(",", ":"), ensure_ascii=False)
            if len(text.encode()) > max_bytes:
                raise PayloadTooLarge(
                    f"the state would be larger than {max_bytes} bytes of JSON", details={"field": "delta"}
                )
            if new != state or not snap.exists:
                tx.set(ref, {FIELD: text, "updated_at": now})
                return new, now
            return new, float((snap.to_dict() or {}).get("updated_at") or now)

        with self.fs.guard("state_merge"):
            return self.fs.transactional(work)

    def all_of(self, uid: str) -> dict[str, dict[str, Any]]:
        """Every app's state the user has (export; at most STATE_MAX_APPS documents)."""
        with self.fs.guard("state_export"):
            col = self.fs.db().collection("users").document(uid).collection(USER_STATE)
            return {d.id: _decoded(d.to_dict())[0] for d in col.stream(timeout=self.fs.timeout)}

    def delete_all(self, uid: str) -> int:
        """The user's state of every app (erasure); documents deleted."""
        with self.fs.guard("state_erase"):
            col = self.fs.db().collection("users").document(uid).collection(USER_STATE)
            n = 0
            for d in col.select([]).stream(timeout=self.fs.timeout):
                d.reference.delete()
                n += 1
        return n


def _decoded(doc: dict[str, Any] | None) -> tuple[dict[str, Any], float | None]:
    if not doc:
        return {}, None
    value = json.loads(doc.get(FIELD) or "{}")
    return (value if isinstance(value, dict) else {}), doc.get("updated_at")
