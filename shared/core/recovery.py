"""Bringing Redis back in step after it was away, and what one instance knows meanwhile.

The outage story, once. While Redis is down an instance accepts messages in Firestore (or,
with Firestore down too, in its own memory); no layer but Redis knows a session's count, so
those messages carry provisional numbers that order them among themselves. The next request
may land on any instance. So an instance learns that Redis was away in one of three ways
(its breaker's probe succeeding, a pooled connection it had to re-establish, or a Redis run
it has not met that is young: ``shared.store.redis.client``); it then scans Firestore once
for sessions holding outage messages, and merges each session's into Redis (renumbered after
everything Redis holds, exactly once per message id) before serving it. For a cool-down and
a margin after that, other instances may still be inside theirs and accept messages after
the scan: in that window every operation merges first, and once it is over the instance
scans once more (an outage append that committed late, on a loaded machine, is found
before anything is appended after it). A session Redis does not know is
rebuilt there from Firestore or memory ("hydrated"); one Redis held and lost is ended as
``expired`` with what the other layers hold, never restarted at 1.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import replace
from typing import TypeVar

from shared.core.summaries import Summaries
from shared.errors import NotFound, PermissionDenied, StoreError
from shared.store.base import ERASED, CreateRequest, QueryRecord, SessionState, StoredMessage
from shared.store.firestore.docs import state_from_doc
from shared.store.layers import Layers, OverLayers
from shared.store.redis.layer import RedisLayer

log = logging.getLogger("chat_memory.session")
T = TypeVar("T")
_MEMO_MAX = 10_000
Held = tuple[list[StoredMessage], list[QueryRecord]]


def check_owner(owner: str, user_id: str | None) -> None:
    """``user_id`` None is the system (the sweep, a trigger): it may act on any session."""
    if user_id is not None and owner != user_id:
        raise PermissionDenied("this session belongs to another user")


class InstanceMemo:
    """What this instance last learnt per session, bounded (least recently used go):

    - the highest number it has seen, so a message a fallback layer accepts continues the
      numbering and a later merge keeps acceptance order;
    - the owner a store confirmed, the only way to accept a message for a session this
      instance did not create while both stores are down.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._seq: OrderedDict[str, int] = OrderedDict()
        self._owners: OrderedDict[str, str] = OrderedDict()

    def seq(self, sid: str, seen: int | None = None) -> int:
        with self._lock:
            if seen is not None:
                _remember(self._seq, sid, max(seen, self._seq.get(sid, 0)))
            return self._seq.get(sid, 0)

    def owner(self, sid: str) -> str | None:
        with self._lock:
            return self._owners.get(sid)

    def know_owner(self, sid: str, owner: str | None) -> None:
        if owner:
            with self._lock:
                _remember(self._owners, sid, owner)


def _remember(d: OrderedDict, key: str, value: object) -> None:
    d[key] = value
    d.move_to_end(key)
    while len(d) > _MEMO_MAX:
        d.popitem(last=False)


class Recovery(OverLayers):
    def __init__(self, layers: Layers, memo: InstanceMemo, summaries: Summaries) -> None:
        self.layers = layers
        self.memo = memo
        self.summaries = summaries
        # Ends a session whose Redis keys are gone (the session manager wires the ending).
        self.end_expired: Callable[[str], None] = _no_ending
        # Sessions that may hold messages accepted outside Redis: merged on the next Redis
        # operation on them.
        self._reconcile: set[str] = set()
        self._scan_due = False
        self._late_scan_due = False
        self._recovered_at: float | None = None  # monotonic; None: never saw Redis come back
        self._listening_to: set[int] = set()
        self._listen()

    def _listen(self) -> None:
        """Hear from the Redis layer's breaker when Redis may have come back (a test may
        replace the layer: its breaker is listened to on first use)."""
        br = self.redis.breaker
        if id(br) not in self._listening_to:
            self._listening_to.add(id(br))
            br.on_recovery(self._redis_back)
            # The instance's first Redis call may have come before this recovery existed (the
            # rate limiter, at the edge, shares the client and breaker): a restart it met
            # then was told to nobody. Take it now, or an append may be numbered before the
            # outage's messages.
            if br.recovered_at is not None:
                self._redis_back(br.recovered_at)

    def _redis_back(self, at: float) -> None:
        self._recovered_at = at
        self._scan_due = True
        self._late_scan_due = True

    # -- the one retry ------------------------------------------------------------------
    @staticmethod
    def run(fn: Callable[[], T]) -> T:
        """Run a Redis-path operation; after a connection error that may only mean Redis
        restarted (retryable), run it once more: it begins by merging (``maybe_merge``)."""
        try:
            return fn()
        except StoreError as exc:
            if not exc.retryable:
                raise
            return fn()

    # -- learning that Redis was away ----------------------------------------------------
    def held_elsewhere(self, sid: str) -> None:
        """This instance accepted a message for ``sid`` outside Redis."""
        self._reconcile.add(sid)

    def settled(self, sid: str) -> None:
        self._reconcile.discard(sid)

    def check(self) -> None:
        """Probe Redis first if the breaker is due; when Redis came back since the last
        look, scan Firestore once for sessions holding outage messages."""
        self._listen()
        if self.redis.breaker.state() == "half_open":
            self.redis.ping()  # the probe; records success or failure on the breaker
        else:
            self.redis.ensure_met()  # a new client learns here whether Redis just restarted
        if self._scan_due:
            self._scan_due = False
        elif self._late_scan_due and not self._in_window():
            # Another instance's outage append may commit after this scan, and after the
            # window in which every operation merges first (its breaker open for a
            # cool-down past Redis' return, its commit late on a loaded machine): one more
            # scan once the window is over finds it before anything is appended after it.
            self._late_scan_due = False
        else:
            return
        self._reconcile.update(self.memory.sessions_with_messages())
        if self.firestore.configured:
            try:
                found = self.firestore.sessions_with_pending()
            except StoreError:
                return
            self._reconcile.update(found)
            log.info("redis is back: sessions to merge", extra={"count": len(found)})

    def _in_window(self) -> bool:
        if self._recovered_at is None:
            return False
        # Other instances' breakers reopen to Redis within a cool-down; an outage append
        # they began just before commits within Firestore's deadline.
        s = self.settings
        return time.monotonic() - self._recovered_at < 2 * s.redis_breaker_cooldown_s + s.firestore_timeout_s + 1.0

    def maybe_merge(self, sid: str, user_id: str | None = None) -> None:
        """Merge what was accepted outside Redis back into Redis, if anything may be."""
        self.check()
        if sid in self._reconcile or self._in_window():
            try:
                self.merge(sid, user_id)
            except StoreError as exc:
                if exc.layer == "redis":
                    raise
                # Firestore is down: Redis still serves; merge on a later operation.

    def merge(self, sid: str, user_id: str | None = None) -> Held:
        """Append to Redis, renumbered and exactly once, the messages of ``sid`` held by
        Firestore (outage path) and by this instance's memory; if Redis does not know the
        session, hydrate it first. Memory forgets only what was merged. Returns what
        Firestore held. Raises StoreError (with its layer) if a backend is down."""
        snap = self.memory.snapshot(sid)
        mem_state = self.memory.state(sid)
        held = snap[0] if snap is not None and mem_state is not None else []
        (msgs, queries), firestore_read = self._firestore_pending(sid, bool(held))
        pending = (list(msgs), list(queries))
        merged_mem: set[str] = set()
        if msgs or held:
            meta = self.redis.meta(sid)
            if meta is not None and meta.get("status") == ERASED:
                self._reconcile.discard(sid)  # erased: what other layers held is not brought back
                if held:
                    self.memory.drop(sid)
                return pending
            if meta is None:
                state = self.hydrate(sid, user_id)
                if state is None or state.status != "active":
                    # unknown everywhere, or ended (an expiry's end took what was held)
                    self._reconcile.discard(sid)
                    return pending
                meta = self.redis.meta(sid)
                if meta is None:
                    return pending  # lost again meanwhile: a later operation merges
            # A caller who does not own the session merges nothing into it.
            check_owner(meta.get("owner", ""), user_id)
            # Memory holds messages only for an owner a store confirmed; merge them into
            # that owner's session only.
            if held and mem_state is not None and meta.get("owner") == mem_state.owner:
                have = {x.mid for x in msgs}
                # In the order they were accepted (their provisional numbers), whichever
                # layer holds them: memory may hold messages older than Firestore's.
                msgs = sorted(msgs + [m for m in held if m.mid not in have], key=lambda m: m.seq)
                assert snap is not None
                merged_mem = {m.mid for m in held}
        if msgs:
            out = self.redis.import_messages(sid, msgs)
            if out.added < 0:
                # Redis lost the session, or an end took its snapshot, between or before the
                # merge's steps: what is in stays in; the rest waits (the session stays to reconcile).
                return pending
            if out.due_seq:
                self.summaries.roll(sid, out.due_seq, out.previous_summary, out.unsummarized or [], self._clock())
            log.info("merged messages back into redis", extra={"session_id": sid, "count": out.added})
        if firestore_read:
            self._reconcile.discard(sid)
        if merged_mem:
            self.memory.drop_messages(sid, merged_mem)
        return pending

    def _firestore_pending(self, sid: str, memory_holds: bool) -> tuple[Held, bool]:
        """What Firestore holds for ``sid`` on the outage path, and whether it answered."""
        if not self.firestore.configured:
            return ([], []), True
        try:
            return self.firestore.read_pending(sid), True
        except StoreError:
            if not memory_holds:
                raise
            # This instance's memory is the least durable layer: Redis takes what it holds
            # now; what Firestore holds is merged once it answers (the session stays to
            # reconcile).
            return ([], []), False

    # -- a session Redis does not know -------------------------------------------------
    def hydrate(self, sid: str, user_id: str | None = None) -> SessionState | None:
        """Rebuild the session's state in Redis from Firestore or this instance's memory,
        after checking the caller owns it. Returns the state (``ended`` for one Redis held
        and lost: see ``expire``), or None if no layer knows the session."""
        doc = None
        if self.firestore.configured:
            try:
                doc = self.firestore.get_session(sid)
            except StoreError:
                # A session created here while both stores were down is known from memory;
                # any other needs Firestore's word: the caller falls back.
                if not self.memory.local_only(sid):
                    raise
        if doc is not None and doc.get("status") == ERASED:
            return None  # erased: nothing may rebuild it
        if doc is not None:
            state = state_from_doc(doc)
            check_owner(state.owner, user_id)
            self.memo.know_owner(sid, state.owner)
            if state.status != "active":
                return state
            if doc.get("in_redis", True):
                return self.expire(sid, state)
            if self.redis.create(CreateRequest(state)):
                try:
                    self.firestore.set_in_redis(sid, True)
                except StoreError:
                    pass  # stays False: a later loss is then taken for a first hydrate
            if int(doc.get("pending_count") or 0) > 0:
                self._reconcile.add(sid)
            return state
        local = self.memory.state(sid)
        if local is not None:
            check_owner(local.owner, user_id)
            held = self.memory.snapshot(sid)
            # Redis numbers the held messages when they are merged: it starts before them.
            base = min(m.seq for m in held[0]) - 1 if held and held[0] else local.seq
            self.redis.create(CreateRequest(replace(local, seq=base), in_firestore=False))
            self._reconcile.add(sid)
            return local
        return None

    def hydrate_owned(self, sid: str, user_id: str | None) -> SessionState:
        """``hydrate``, for a caller who must own the session (NotFound / PermissionDenied)."""
        state = self.hydrate(sid, user_id)
        if state is None:
            raise NotFound("no such session")
        return state

    def expire(self, sid: str, state: SessionState) -> SessionState:
        """End a session whose Redis keys are gone (its keys expired or were evicted, or
        Redis restarted empty): its messages are gone, so it ends as ``expired`` with what
        Firestore and this instance's memory hold; appends then answer 409."""
        # A placeholder (status 'expiring', which appends refuse) keeps the owner in Redis
        # for the ended state and tells other instances the session is being ended.
        if not self.redis.create(CreateRequest(replace(state, status="expiring", seq=0))):
            meta = self.redis.meta(sid) or {}
            return state if meta.get("status") == "active" else replace(state, status="ended")
        log.warning("session memory expired: ending it", extra={"session_id": sid})
        try:
            self.end_expired(sid)
        except StoreError:
            try:
                self.redis.forget_expiring(sid)
            except StoreError:
                pass  # the placeholder expires with the session TTL
            raise
        return replace(state, status="ended")

    def write_missing_doc(self, sid: str) -> None:
        """A session created while Firestore was down gets its document on a later
        operation, so the sweep sees it. Never fails the operation: the next one retries
        (the write has a short deadline, so a hung Firestore costs an append at most that,
        once per breaker cool-down)."""
        if not self.firestore.configured or self.firestore.breaker.state() == "open":
            return
        try:
            meta = self.redis.meta(sid)
            if not meta or meta.get("fs_doc") != "0" or meta.get("status") != "active":
                return
            self.firestore.ensure_session(RedisLayer.state_from_meta(sid, meta))
            self.redis.mark_doc(sid)
            log.info("session document written after a firestore outage", extra={"session_id": sid})
        except StoreError:
            pass


def _no_ending(sid: str) -> None:
    raise StoreError("no ending wired to expire sessions", layer="redis")
