"""Validated payloads and the shapes of answers.

Validation happens here, once, before anything reaches a store: a session id of the
strict format is the only thing that ever becomes part of a Redis key or a Firestore
path.
"""

from __future__ import annotations

import json
import re
from typing import Any, Literal, cast

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from shared import fastjson
from shared.errors import InvalidArgument, PayloadTooLarge
from shared.settings import get_settings
from shared.store.base import LayerName, SessionState, StoredMessage
from shared.store.storable import (
    MAX_SOURCE_BYTES,
    MAX_SOURCES,
    RESERVED_NAME,
    Unstorable,
    check_storable,
)

Role = Literal["user", "assistant", "system"]
Layer = LayerName  # which layer served an answer

SESSION_ID_RE = re.compile(r"^[0-9a-f]{32}$")
# Client message ids and user ids are echoed into keys/fields: keep them boring.
CLIENT_MESSAGE_ID_RE = re.compile(r"^[A-Za-z0-9_.:-]{1,128}$")
USER_ID_RE = re.compile(r"^[A-Za-z0-9_.:@-]{1,128}$")
AGENT_ID_RE = re.compile(r"^[A-Za-z0-9_.:@-]{1,128}$")


def validate_session_id(session_id: object) -> str:
    if not isinstance(session_id, str) or not SESSION_ID_RE.fullmatch(session_id):
        raise InvalidArgument("session_id must be 32 lowercase hex characters", details={"field": "session_id"})
    return session_id


def validate_user_id(user_id: object) -> str:
    if not isinstance(user_id, str) or not USER_ID_RE.fullmatch(user_id):
        raise InvalidArgument("user id must be 1-128 characters of [A-Za-z0-9_.:@-]")
    # it names the users/{uid} document: Firestore refuses these as document ids
    if user_id in (".", "..") or RESERVED_NAME.fullmatch(user_id):
        raise InvalidArgument("user id must not be '.', '..' or of the form __name__")
    return user_id


def check_sources(sources: Any, field: str) -> None:
    """KB entry ids: any non-empty string (the Firestore layer maps ids that are not valid
    document ids to a stable hash), at most MAX_SOURCES per answer."""
    if not isinstance(sources, list):
        raise Unstorable(field, "must be an array of KB entry ids")
    if len(sources) > MAX_SOURCES:
        raise Unstorable(field, f"at most {MAX_SOURCES} KB entry ids")
    for i, s in enumerate(sources):
        if not isinstance(s, str) or not s or len(s.encode()) > MAX_SOURCE_BYTES:
            raise Unstorable(f"{field}[{i}]", f"a KB entry id is a string of 1-{MAX_SOURCE_BYTES} bytes")


def json_size(value: Any) -> int:
    """Bytes of ``value`` as compact UTF-8 JSON (orjson: the same bytes, several times
    faster; the standard library for what orjson cannot write)."""
    try:
        return len(orjson.dumps(value))
    except TypeError:
        return len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False)


def strict_json(value: object, what: str) -> str:
    """``value`` as compact JSON text, or ValueError naming ``what``: the standard library, as
    orjson writes NaN as null (the value would not be kept whole); NaN, infinity and strings
    that are not Unicode (lone surrogates, in keys too) are not JSON."""
    try:
        text = json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
        text.encode()
    except (TypeError, ValueError, UnicodeEncodeError, RecursionError):
        raise ValueError(f"{what} must be JSON (finite numbers, Unicode strings)") from None
    return text


def item_text(item: object) -> str:
    """A framework's item as the compact JSON text every layer stores (``StoredMessage.item``),
    within ``max_item_bytes``; ValueError naming what is wrong otherwise. Any JSON object is
    kept whole: integers past 64 bits go through the standard library; NaN, infinity and
    strings that are not Unicode (lone surrogates) are not JSON and are refused."""
    if not isinstance(item, dict):
        raise ValueError("item must be a JSON object")
    text = strict_json(item, "item")
    limit = get_settings().max_item_bytes
    if len(text.encode()) > limit:
        raise ValueError(f"item is larger than {limit} bytes of JSON")
    return text


class MessageIn(_Strict):
    """One message offered for appending. ``item``: a framework's whole item (an ADK event, an
    OpenAI Agents item), kept as its JSON text; with one, ``content`` may be empty (a tool call)."""

    role: Role
    content: str
    metadata: dict[str, Any] | None = None
    client_message_id: str | None = None
    item: str | None = None

    @field_validator("content")
    @classmethod
    def _content_size(cls, v: str) -> str:
        limit = get_settings().max_content_bytes
        if len(v.encode()) > limit:
            raise ValueError(f"content is larger than {limit} bytes")
        return v

    @field_validator("item", mode="before")
    @classmethod
    def _item(cls, v: object) -> str | None:
        return None if v is None else item_text(v)

    def check_text(self) -> MessageIn:
        """Text, or an item with no text at all (blank text is neither)."""
        if not self.content.strip() and (self.item is None or self.content):
            why = "content is blank" + ("" if self.item is None else ": give text, or an empty string with an item")
            raise InvalidArgument(f"content: {why}", details={"field": "content"})
        return self

    @field_validator("metadata")
    @classmethod
    def _metadata_size(cls, v: dict[str, Any] | None) -> dict[str, Any] | None:
        if v is None:
            return v
        check_storable(v, "metadata")
        if "sources" in v:
            check_sources(v["sources"], "metadata.sources")
        limit = get_settings().max_metadata_bytes
        try:
            size = json_size(v)
        except (TypeError, ValueError) as exc:
            raise ValueError("metadata must be JSON") from exc
        if size > limit:
            raise ValueError(f"metadata is larger than {limit} bytes of JSON")
        return v

    @field_validator("client_message_id")
    @classmethod
    def _cmid(cls, v: str | None) -> str | None:
        if v is not None and not CLIENT_MESSAGE_ID_RE.fullmatch(v):
            raise ValueError("client_message_id must be 1-128 characters of [A-Za-z0-9_.:-]")
        return v


class UserInfo(_Strict):
    """Profile fields given at session creation; user_id comes from auth, not from here."""

    model_config = ConfigDict(extra="allow")
    user_id: str | None = None
    platform: str | None = Field(None, max_length=64)


class Message(BaseModel):
    seq: int
    role: Role
    content: str
    timestamp: float
    metadata: dict[str, Any] | None = None
    item: dict[str, Any] | None = None


class Summary(BaseModel):
    text: str
    message_count: int
    updated_at: float


class SessionInfo(BaseModel):
    session_id: str
    user_id: str
    status: Literal["active", "ended"]
    created_at: float
    last_active_at: float
    message_count: int
    user_info: dict[str, Any] = {}
    storage: Layer


class AppendResult(BaseModel):
    session_id: str
    seq: int
    message_count: int
    summary_updated: bool
    storage: Layer
    durable: bool
    duplicate: bool = False


class History(BaseModel):
    session_id: str
    messages: list[Message]
    storage: Layer
    durable: bool = True


class Memory(BaseModel):
    """A past session recalled into the context: quoted data, with its provenance."""

    session_id: str
    text: str
    score: float
    ended_at: float

    @classmethod
    def from_stored(cls, d: dict[str, Any]) -> Memory:
        return cls(
            session_id=str(d.get("session_id", "")),
            text=str(d.get("text", "")),
            score=float(d.get("score") or 0),
            ended_at=float(d.get("ended_at") or 0),
        )


class Context(BaseModel):
    session_id: str
    messages: list[Message]
    summary: Summary | None
    formatted_context: str
    storage: Layer
    durable: bool = True
    estimated_tokens: int = 0
    memories: list[Memory] = []


class UserStats(BaseModel):
    user_id: str
    total_sessions: int
    total_messages: int
    total_queries: int
    last_active_at: float | None = None
    recent_sessions: list[str] = []


class EndResult(BaseModel):
    session_id: str
    status: Literal["ended"] = "ended"
    summary: Summary | None
    message_count: int
    queries_recorded: int
    end_reason: str = "completed"
    already_ended: bool = False


def parse_message(
    role: object, content: object, metadata: object = None, client_message_id: object = None, item: object = None
) -> MessageIn:
    """Build a MessageIn or raise InvalidArgument/PayloadTooLarge with a readable reason."""
    try:
        return MessageIn.model_validate(
            {"role": role, "content": content, "metadata": metadata, "client_message_id": client_message_id}
            | ({} if item is None else {"item": item})
        ).check_text()
    except ValidationError as exc:
        raise _to_invalid(exc) from None


def parse_user_info(user_info: object) -> dict[str, Any]:
    if user_info is None:
        return {}
    if not isinstance(user_info, dict):
        raise InvalidArgument("user_info must be an object")
    try:
        check_storable(user_info, "user_info")
    except Unstorable as exc:
        raise InvalidArgument(str(exc), details={"field": exc.field}) from None
    limit = get_settings().max_user_info_bytes
    try:
        size = json_size(user_info)
    except (TypeError, ValueError):
        raise InvalidArgument("user_info must be JSON") from None
    if size > limit:
        raise PayloadTooLarge(f"user_info is larger than {limit} bytes of JSON")
    try:
        return UserInfo.model_validate(user_info).model_dump(exclude_none=True)
    except ValidationError as exc:
        raise _to_invalid(exc) from None


def _to_invalid(exc: ValidationError) -> InvalidArgument:
    errors = exc.errors(include_url=False, include_input=False)
    first = errors[0] if errors else {"loc": (), "msg": "invalid"}
    field = ".".join(str(p) for p in first.get("loc", ())) or "body"
    msg = str(first.get("msg", "invalid")).removeprefix("Value error, ")
    ctx: Any = first.get("ctx") or {}
    cause = ctx.get("error") if isinstance(ctx, dict) else None
    if isinstance(cause, Unstorable):
        return InvalidArgument(str(cause), details={"field": cause.field})
    cls = PayloadTooLarge if "larger than" in msg else InvalidArgument
    return cls(f"{field}: {msg}", details={"field": field})


def session_info(st: SessionState, storage: LayerName) -> SessionInfo:
    """A stored session's state as the API answers it."""
    return SessionInfo(
        session_id=st.session_id,
        user_id=st.owner,
        status="ended" if st.status == "ended" else "active",
        created_at=st.created_at,
        last_active_at=st.last_active_at,
        message_count=st.seq,
        user_info=st.user_info,
        storage=storage,
    )


def bounded_int(value: Any, name: str, default: int, maximum: int) -> int:
    """An optional integer argument from 1 to ``maximum`` (400 naming it otherwise)."""
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= maximum:
        raise InvalidArgument(f"{name} must be an integer from 1 to {maximum}")
    return value


def api_message(m: StoredMessage) -> Message:
    return Message(
        seq=m.seq,
        role=cast(Role, m.role),
        content=m.content,
        timestamp=m.timestamp,
        metadata=m.metadata,
        item=None if m.item is None else item_value(m.item),
    )


def item_value(text: str) -> dict[str, Any]:
    """A stored item's JSON (``item_text``'s inverse)."""
    value = fastjson.loads(text)
    return cast(dict[str, Any], json.loads(text) if value is fastjson.MISS else value)
