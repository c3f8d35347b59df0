"""Reading a session's recent messages and summary from the first layer that can answer."""

from __future__ import annotations

from typing import Any

from shared.core import context as ctx
from shared.core.failover import failover
from shared.core.recovery import InstanceMemo, Recovery, check_owner
from shared.errors import NotFound, PermissionDenied, StoreError, Unavailable
from shared.store.base import ERASED, LayerName, StoredMessage
from shared.store.layers import Layers, OverLayers

# (messages, summary, layer, durable, memories): what a read gathers; the memories recalled
# when the last user message was taken travel with the context in Redis' one round trip
# (another layer serving the read has none: recall needs Redis)
Read = tuple[list[StoredMessage], dict[str, Any] | None, LayerName, bool, list[dict[str, Any]]]
_Got = tuple[list[StoredMessage], dict[str, Any] | None, list[dict[str, Any]]]


class Reads(OverLayers):
    def __init__(self, layers: Layers, memo: InstanceMemo, recovery: Recovery) -> None:
        self.layers = layers
        self.memo = memo
        self.recovery = recovery

    def read(self, sid: str, n: int, user_id: str | None) -> Read:
        """Last ``n`` messages and the summary, from the first layer that can answer."""
        known_missing = [not self.firestore.configured]

        def redis() -> Read:
            got = self.recovery.run(lambda: self._read_redis(sid, n, user_id))
            if got is None:
                raise StoreError("ended: the document has the final state", layer="redis")
            return got[0], got[1], "redis", True, got[2]

        def firestore() -> Read:
            doc = self.firestore.get_session(sid)
            if doc is None or doc.get("status") == ERASED:
                known_missing[0] = True  # the durable record says: no such session
                raise StoreError("not in firestore", layer="firestore")
            return self._read_firestore(sid, doc, n, user_id)

        def memory() -> Read:
            state = self.memory.state(sid)
            snap = self.memory.snapshot(sid)
            if state is None or snap is None:
                if known_missing[0]:
                    raise NotFound("no such session")
                raise Unavailable("session storage is unavailable; try again shortly")
            check_owner(state.owner, user_id)
            return snap[0][-n:] if n else [], None, "memory", False, []

        return failover([(self.redis, redis), (self.firestore, firestore), (self.memory, memory)])

    def _read_redis(self, sid: str, n: int, user_id: str | None) -> _Got | None:
        """None when Redis cannot answer for this session (ended: see the document)."""
        self.recovery.maybe_merge(sid, user_id)
        out = self.redis.read(sid, user_id, n)
        if out.status == "missing":
            if self.recovery.hydrate_owned(sid, user_id).status != "active":
                return None
            self.recovery.maybe_merge(sid, user_id)
            out = self.redis.read(sid, user_id, n)
        if out.status == "forbidden":
            raise PermissionDenied("this session belongs to another user")
        if out.status == "erased":
            raise NotFound("no such session (its data was erased)")
        self.memo.know_owner(sid, user_id)
        if out.doc_missing and out.session_status == "active":
            self.recovery.write_missing_doc(sid)
        if out.status == "ok" and out.session_status != "ended":
            return out.messages or [], out.summary, out.memories or []
        return None  # ended: the final window and summary live on the session document

    def _read_firestore(self, sid: str, doc: dict[str, Any], n: int, user_id: str | None) -> Read:
        check_owner(doc.get("owner", ""), user_id)
        if doc.get("status") == "ended":
            msgs = [StoredMessage.from_dict(m) for m in doc.get("final_messages") or []]
        else:
            pending, _ = self.firestore.read_pending(sid)
            mem = self.memory.snapshot(sid)
            msgs = ctx.merge_messages(pending, mem[0] if mem else [])
        return msgs[-n:] if n else [], doc.get("summary"), "firestore", True, []
