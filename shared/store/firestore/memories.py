"""A user's memories of their past sessions: ``users/{uid}/memories/{sid}``, one digest per
ended session. The user is the path, never a field a request names: a caller reaches only
the collection under their own uid, and another user's session id simply is not there.

Written once, inside the trigger's counting transaction (``Stats.apply_session_stats``,
under its ledger ``users/{uid}/counted/{sid}``), which re-reads the session document: an
erased session (a tombstone) or a memory the user deleted (the ledger stays) is never
written again, whatever event or repair arrives late. The user document keeps the ids of
the user's memories, newest first (``memory_sessions``): the per-user bound
(MEMORY_MAX_SESSIONS) deletes the oldest in that same transaction, with no extra read.

A memory document: ``session_id``, ``text`` (what the model reads), ``search`` (the search
text, drawn from the whole session), lineage (``seq_from``, ``seq_to``, ``summary_version``,
``roles``), ``ended_at``, ``created_at``, ``expire_at`` (a datetime: the TTL policy's field),
and with EMBEDDINGS set, ``embedding`` (a Firestore vector, searched by ``nearest``) with the
``embedding_model`` that made it. Reads other than ``nearest`` never fetch the vector.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from shared.store.firestore.client import Firestore

if TYPE_CHECKING:
    from google.cloud.firestore import CollectionReference, Transaction

MEMORIES = "memories"
USER_LIST = "memory_sessions"  # the user document's ids of their memories, newest first
# What a memory answers (list, search, export): the stored document without its search text.
PUBLIC_FIELDS = ("session_id", "text", "ended_at", "seq_from", "seq_to", "summary_version", "roles", "created_at")
# What the reads fetch: everything but the vector (768 floats a memory, for nearest alone).
READ_FIELDS = (*PUBLIC_FIELDS, "search", "embedding_model")
VECTOR = "embedding"


class MemoryStore:
    def __init__(self, fs: Firestore) -> None:
        self.fs = fs

    @property
    def configured(self) -> bool:
        return self.fs.configured

    def collection(self, uid: str) -> CollectionReference:
        return self.fs.db().collection("users").document(uid).collection(MEMORIES)

    # -- written in the counting transaction ----------------------------------------------
    def put_in(self, tx: Transaction, uid: str, user: dict[str, Any], digest: dict[str, Any]) -> dict[str, Any]:
        """Write ``digest`` in ``tx`` and delete the user's oldest past the bound; returns the
        user document's field to set with the rest of the user's counts."""
        sid = digest["session_id"]
        ids = [sid, *(s for s in (user.get(USER_LIST) or []) if s != sid)]
        keep, drop = ids[: self.fs.settings.memory_max_sessions], ids[self.fs.settings.memory_max_sessions :]
        col = self.collection(uid)
        if isinstance(digest.get(VECTOR), list):
            from google.cloud.firestore_v1.vector import Vector

            digest = digest | {VECTOR: Vector(digest[VECTOR])}
        tx.set(col.document(sid), digest)
        for old in drop:
            tx.delete(col.document(old))
        return {USER_LIST: keep}

    def write(self, uid: str, digest: dict[str, Any]) -> None:
        """Write one memory by itself, with the per-user bound (benchmarks and tools: the
        serving path writes memories only under the counting transaction's ledger)."""
        uref = self.fs.db().collection("users").document(uid)

        def work(tx: Transaction) -> None:
            snap = uref.get(transaction=tx)
            user = (snap.to_dict() or {}) if snap.exists else {}
            tx.set(uref, self.put_in(tx, uid, user, digest), merge=True)

        with self.fs.guard("write_memory", digest["session_id"]):
            self.fs.transactional(work)

    # -- reads ------------------------------------------------------------------------
    def page(self, uid: str, limit: int, after: tuple[float, str] | None) -> list[dict[str, Any]]:
        """The user's memories, newest first, after the cursor (ended_at, session id)."""
        from google.cloud import firestore

        col = self.collection(uid)
        q = (
            col.select(READ_FIELDS)
            .order_by("ended_at", direction=firestore.Query.DESCENDING)
            .order_by("__name__", direction=firestore.Query.DESCENDING)
        )
        if after is not None:
            q = q.start_after({"ended_at": after[0], "__name__": col.document(after[1])})
        with self.fs.guard("memories"):
            return [d.to_dict() or {} for d in q.limit(limit).stream(timeout=self.fs.timeout)]

    def all(self, uid: str) -> list[dict[str, Any]]:
        """Every memory of the user (at most MEMORY_MAX_SESSIONS; one read each), newest first."""
        return self.page(uid, self.fs.settings.memory_max_sessions, None)

    def nearest(self, uid: str, vector: list[float], limit: int, model: str) -> list[dict[str, Any]]:
        """The user's ``limit`` memories nearest ``vector`` (cosine), nearest first, each with
        its ``distance``; a vector of another embedding model is left out."""
        from google.cloud.firestore_v1.base_vector_query import DistanceMeasure
        from google.cloud.firestore_v1.vector import Vector

        # the distance is a field of the answer: a projection without it drops it
        base: Any = self.collection(uid).select((*READ_FIELDS, "distance"))
        q = base.find_nearest(
            vector_field=VECTOR,
            query_vector=Vector(vector),
            limit=limit,
            distance_measure=DistanceMeasure.COSINE,
            distance_result_field="distance",
        )
        with self.fs.guard("nearest_memories"):
            docs = [d.to_dict() or {} for d in q.stream(timeout=self.fs.timeout)]
        return [d for d in docs if d.get("embedding_model") == model]

    # -- the user's own deletion, and the erasure's ---------------------------------------
    def delete(self, uid: str, sid: str) -> bool:
        """Delete the user's memory of ``sid``; False if they hold none (another user's id
        included: nothing says whether it exists elsewhere). The ledger of counted sessions
        stays, so no late event writes it again."""
        from google.cloud import firestore

        uref = self.fs.db().collection("users").document(uid)
        mref = self.collection(uid).document(sid)

        def work(tx: Transaction) -> bool:
            if not mref.get(transaction=tx).exists:
                return False
            tx.delete(mref)
            tx.set(uref, {USER_LIST: firestore.ArrayRemove([sid])}, merge=True)
            return True

        with self.fs.guard("delete_memory", sid):
            return self.fs.transactional(work)

    def delete_all(self, uid: str) -> int:
        """Every memory of the user (erase_user); returns documents deleted."""
        n = 0
        with self.fs.guard("erase_memories"):
            for d in self.collection(uid).stream(timeout=self.fs.timeout):
                d.reference.delete()
                n += 1
        return n

    def delete_quietly(self, uid: str, sid: str) -> int:
        """The memory of one erased session (erase_session), whether or not it exists."""
        with self.fs.guard("erase_memory", sid):
            ref = self.collection(uid).document(sid)
            existed = ref.get(**self.fs.kw()).exists
            ref.delete()
        return 1 if existed else 0
