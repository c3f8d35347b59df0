"""What the layers exchange: plain records, independent of any backend, and the protocol
every layer (Redis, Firestore, this instance's memory) implements."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, Protocol

import orjson

from shared import fastjson

SessionStatus = Literal["active", "ending", "expiring", "ended"]
ERASED = "erased"  # a session tombstone's status, in Redis and Firestore: no owner, no content
LayerName = Literal["redis", "firestore", "memory"]
# Why a session ended: a fixed set, because each reason is a field of the day's shared
# rollup document (``end_reasons.<reason>``): no client's words may name one. A client says
# one of CLIENT_END_REASONS (end_session's ``reason``); the system alone says the others (the
# sweep: timeout; memory lost: expired). A stored reason outside the set counts as "other".
CLIENT_END_REASONS = ("completed", "user_left", "abandoned", "handoff", "error", "other")
SYSTEM_END_REASONS = ("timeout", "expired")
END_REASONS = frozenset(CLIENT_END_REASONS + SYSTEM_END_REASONS)
# What an append answers, in every layer: stored (ok), stored before under the same message
# id (dup), or refused: the layer does not know the session, it is another user's, it has
# ended, the session's bound is reached (full: its answers or bytes, the same bound on every
# layer), or its data was erased (a tombstone); no_room: this instance's memory layer has
# no room left (its own bounds, not the session's: a 503, retried once a store is back).
AppendStatus = Literal["ok", "dup", "missing", "forbidden", "ended", "full", "erased", "no_room"]
# A message's number written at its widest, for the byte ledger of a message whose number
# in Redis is not known yet (``StoredMessage.ledger_bytes``).
_SEQ_WIDEST = 10
ReadStatus = Literal["ok", "missing", "forbidden", "erased"]
# An end's snapshot: taken (ok), or refused; busy: another attempt owns the end; in_use: the
# session was used after the sweep's idle bound.
SnapshotStatus = Literal["ok", "missing", "forbidden", "ended", "busy", "in_use", "erased"]


@dataclass(slots=True)
class StoredMessage:
    """A message as every layer stores it. ``mid`` is unique per message (the client
    message id when given), so layers can be merged without duplicates."""

    seq: int
    mid: str
    role: str
    content: str
    timestamp: float
    metadata: dict[str, Any] | None = None
    # A framework's whole item (an ADK event, an OpenAI Agents item), as its JSON text: every
    # layer stores a string, so no shape of it (depth, arrays in arrays, ``__x__`` keys) meets
    # Firestore's rules for fields; ``shared.core.models.item_text`` made it, within its bound.
    item: str | None = None

    def tail_json(self) -> str:
        """JSON of everything but seq, without the opening brace (the Lua script adds
        ``{"seq":N,`` in front once it has assigned the number). No metadata or item is left
        out, not written as null: Redis holds every message, so its bytes count."""
        d: dict[str, Any] = {"mid": self.mid, "role": self.role, "content": self.content, "timestamp": self.timestamp}
        if self.metadata is not None:
            d["metadata"] = self.metadata
        if self.item is not None:
            d["item"] = self.item
        return _dumps(d)[1:]

    @property
    def is_turn(self) -> bool:
        """A message with text: a question or an answer. An item alone (a tool call, an event
        without text) is kept and returned, but is neither asked nor answered, summarized,
        quoted into the context or remembered."""
        return bool(self.content)

    def to_json(self) -> str:
        return f'{{"seq":{self.seq},{self.tail_json()}'

    def ledger_bytes(self) -> int:
        """What this message costs the session's byte ledger in Redis ('lb': append.lua
        and import.lua charge its JSON plus a quarter, 64, and its id field), with its
        number at its widest: the charge whatever number a merge gives it, or more. The
        outage layers count it against the same bound Redis does."""
        raw = len(self.tail_json().encode("utf-8", "surrogatepass")) + len('{"seq":,') + _SEQ_WIDEST
        return raw * 5 // 4 + 64 + len(self.mid.encode("utf-8", "surrogatepass")) + 16

    @classmethod
    def from_json(cls, raw: str) -> StoredMessage:
        return cls.from_dict(_loads(raw))

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> StoredMessage:
        """The one decoding of a stored message (Redis JSON, Firestore document or field)."""
        return cls(
            seq=int(d["seq"]),
            mid=str(d.get("mid", "")),
            role=d["role"],
            content=d["content"],
            timestamp=float(d["timestamp"]),
            metadata=d.get("metadata"),
            item=d["item"] if isinstance(d.get("item"), str) else None,
        )

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)  # fields in JSON order
        if d["item"] is None:
            del d["item"]  # as before items existed: a Firestore message without one has no field
        return d


@dataclass(slots=True)
class QueryRecord:
    """One analytics entry: an assistant answer with the user query it answers."""

    seq: int
    mid: str
    query: str | None
    response: str
    confidence: float | None
    sources: list[str]
    collection: str | None
    timestamp: float
    metadata: dict[str, Any] | None = None

    def tail_json(self) -> str:
        """JSON of everything but seq and query, without the opening brace (the Lua
        script puts ``{"seq":N,"query":Q,`` in front)."""
        d = self.to_dict()
        del d["seq"], d["query"]
        return _dumps(d)[1:]

    def to_json(self) -> str:
        return f'{{"seq":{self.seq},"query":{_dumps(self.query)},{self.tail_json()}'

    @classmethod
    def from_json(cls, raw: str) -> QueryRecord:
        return cls.from_dict(_loads(raw))

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> QueryRecord:
        return cls(
            seq=int(d["seq"]),
            mid=str(d.get("mid", "")),
            query=d.get("query"),
            response=d["response"],
            confidence=d.get("confidence"),
            sources=list(d.get("sources") or []),
            collection=d.get("collection"),
            timestamp=float(d["timestamp"]),
            metadata=d.get("metadata"),
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)  # fields in JSON order

    @classmethod
    def from_answer(cls, seq: int, mid: str, query: str | None, msg: StoredMessage) -> QueryRecord:
        md = msg.metadata or {}
        conf = md.get("confidence")
        sources = md.get("sources")
        coll = md.get("collection")
        return cls(
            seq=seq,
            mid=mid,
            query=query,
            response=msg.content,
            confidence=float(conf) if isinstance(conf, int | float) and not isinstance(conf, bool) else None,
            sources=[str(s) for s in sources][:50] if isinstance(sources, list) else [],
            collection=str(coll) if isinstance(coll, str) else None,
            timestamp=msg.timestamp,
            metadata={k: v for k, v in md.items() if k not in ("confidence", "sources", "collection")} or None,
        )


@dataclass(slots=True)
class SessionState:
    """A session's own fields, wherever they were read from."""

    session_id: str
    owner: str
    status: SessionStatus
    created_at: float
    last_active_at: float
    seq: int
    user_info: dict[str, Any] = field(default_factory=dict)
    memory: bool = True  # False: a memory-off session (no digest at its end, no recall)


def _finite(text: str) -> float | None:
    f = float(text)
    return f if math.isfinite(f) else None


def _loads(raw: str) -> Any:
    """Buffered JSON, with NaN and infinities (accepted before the edge refused them) read
    as null: an answer must stay JSON. orjson where it reads the same (``fastjson``: about
    five times faster on the read path), the standard library for the rest, so every stored
    value reads back as it did (an integer past 64 bits buffered before the edge refused
    them stays that integer)."""
    value = fastjson.loads(raw)
    if value is fastjson.MISS:
        return json.loads(raw, parse_constant=lambda _: None, parse_float=_finite)
    return value


def _dumps(v: Any) -> str:
    """Compact JSON, non-ASCII kept; the standard library for what orjson cannot write
    (integers past 64 bits, lone surrogates, keys that are not strings)."""
    try:
        return orjson.dumps(v).decode()
    except TypeError:
        return json.dumps(v, separators=(",", ":"), ensure_ascii=False)


@dataclass(slots=True)
class AppendRequest:
    """One message to store. ``owner`` is the caller (None: the system); ``seq_hint`` the
    highest number this instance has seen for the session, so a fallback layer continues
    the numbering; ``base`` a session the layer may not hold yet (created while it was
    down), with ``base_in_redis`` saying whether Redis holds it."""

    session_id: str
    message: StoredMessage
    owner: str | None
    cmid: str | None
    now: float
    seq_hint: int = 0
    base: SessionState | None = None
    base_in_redis: bool = False


@dataclass(slots=True)
class Appended:
    """What any layer's append answers. The summary fields are Redis': it alone claims
    rolling summaries (``summary_due``) and knows if the Firestore document is missing."""

    status: AppendStatus
    seq: int = 0
    summary_due: bool = False
    previous_summary: dict[str, Any] | None = None
    unsummarized: list[StoredMessage] | None = None
    doc_missing: bool = False


@dataclass(frozen=True, slots=True)
class CreateRequest:
    """A session to hold in a layer. ``in_firestore``: Firestore has its document (Redis
    remembers when it does not, so a later operation writes it); ``local_only``: no store
    knows the session (memory: created while both stores were down)."""

    state: SessionState
    in_firestore: bool = True
    local_only: bool = False


class SessionStore(Protocol):
    """A layer: Redis, Firestore, or this instance's memory. The manager, its recovery and
    its ending reach every layer through these; what only one backend does (an end's
    snapshot in Redis, outage messages in Firestore) is that layer's own."""

    name: LayerName

    @property
    def configured(self) -> bool: ...

    def create(self, req: CreateRequest) -> bool:
        """Hold a new session; False if this layer already holds it (or, memory, is full)."""
        ...

    def state(self, sid: str) -> SessionState | None:
        """The session's own fields as this layer holds them (None: unknown here)."""
        ...

    def append(self, req: AppendRequest) -> Appended: ...

    def ping(self) -> dict[str, Any]: ...


def pairs_of(messages: list[StoredMessage]) -> list[QueryRecord]:
    """One question/answer pair per answer, from a session's messages in order: an answer
    answers the last user message since the answer before it (None if there is none;
    system turns in between do not change it). The Redis layer keeps no pairs: it keeps
    every message once, and the end and the export read the pairs from them here."""
    pairs, question = [], None
    for m in messages:
        if not m.content:
            continue  # an item alone is neither a question nor an answer
        if m.role == "user":
            question = m.content
        elif m.role == "assistant":
            pairs.append(QueryRecord.from_answer(m.seq, m.mid, question, m))
            question = None
    return pairs


def pair_queries(queries: list[QueryRecord], messages: list[StoredMessage]) -> None:
    """Give an answer without its question the user message just before it.

    The Firestore and memory layers pair as they store (from the session's pending query);
    this is for answers one layer accepted whose question another layer holds (an outage
    between the two), once everything is merged by number.
    """
    by_seq = {m.seq: m for m in messages}
    for q in queries:
        if q.query is None:
            prev = by_seq.get(q.seq - 1)
            if prev is not None and prev.role == "user" and prev.content:
                q.query = prev.content
