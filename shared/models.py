"""Validated payloads and the shapes of answers.

Validation happens here, once, before anything reaches a store: a session id of the
strict format is the only thing that ever becomes part of a Redis key or a Firestore
path.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from shared.errors import InvalidArgument, PayloadTooLarge
from shared.settings import get_settings
from shared.store.base import LayerName

Role = Literal["user", "assistant", "system"]
Layer = LayerName  # which layer served an answer

SESSION_ID_RE = re.compile(r"^[0-9a-f]{32}$")
# Client message ids and user ids are echoed into keys/fields: keep them boring.
CLIENT_MESSAGE_ID_RE = re.compile(r"^[A-Za-z0-9_.:-]{1,128}$")
USER_ID_RE = re.compile(r"^[A-Za-z0-9_.:@-]{1,128}$")
AGENT_ID_RE = re.compile(r"^[A-Za-z0-9_.:@-]{1,128}$")


def validate_session_id(session_id: object) -> str:
    if not isinstance(session_id, str) or not SESSION_ID_RE.fullmatch(session_id):
        raise InvalidArgument("session_id must be 32 lowercase hex characters")
    return session_id


def validate_user_id(user_id: object) -> str:
    if not isinstance(user_id, str) or not USER_ID_RE.fullmatch(user_id):
        raise InvalidArgument("user id must be 1-128 characters of [A-Za-z0-9_.:@-]")
    # it names the users/{uid} document: Firestore refuses these as document ids
    if user_id in (".", "..") or _RESERVED.fullmatch(user_id):
        raise InvalidArgument("user id must not be '.', '..' or of the form __name__")
    return user_id


# What every layer can store (Redis as JSON, Firestore, the JSON answer): checked against
# the Firestore emulator. Firestore refuses `__x__` and empty field names, arrays directly
# in arrays, ints outside signed 64 bits, names over 1500 bytes and nesting past 20 levels
# (a message's metadata already sits 3 levels down); NaN and infinity are not JSON.
MAX_DEPTH = 10
MAX_KEY_BYTES = 256
MAX_SOURCES = 50  # analytics keep this many KB entry ids per answer
MAX_SOURCE_BYTES = 256
_INT_MIN, _INT_MAX = -(2**63), 2**63 - 1
_RESERVED = re.compile(r"^__.*__$", re.S)
_PLAIN_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


class _Unstorable(ValueError):
    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


def _key_path(path: str, key: str) -> str:
    return f"{path}.{key}" if _PLAIN_KEY.fullmatch(key) else f"{path}[{json.dumps(key, ensure_ascii=False)}]"


def _utf8(s: str) -> bool:
    try:
        s.encode()
    except UnicodeEncodeError:
        return False
    return True


def _scalar_problem(value: Any) -> str | None:
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int):
        return None if _INT_MIN <= value <= _INT_MAX else "integers must fit in 64 bits"
    if isinstance(value, float):
        return None if math.isfinite(value) else "numbers must be finite"
    if isinstance(value, str):
        return None if _utf8(value) else "strings must be valid Unicode"
    return "must be JSON"


def _key_problem(key: Any) -> str | None:
    if not isinstance(key, str) or not key or not _utf8(key):
        return "field names must be non-empty strings"
    if _RESERVED.fullmatch(key):
        return "field names of the form __name__ are reserved"
    if len(key.encode()) > MAX_KEY_BYTES:
        return f"field names are at most {MAX_KEY_BYTES} bytes"
    return None


def _clean(
    value: Any, path: str, depth: int, in_array: bool, problems: list[tuple[str, str]], max_depth: int = MAX_DEPTH
) -> Any:
    """``value`` without what a layer cannot store; each part dropped is added to ``problems``
    as (field path, reason). Returns ``_DROP`` when ``value`` itself cannot be stored."""
    if not isinstance(value, dict | list):
        reason = _scalar_problem(value)
    elif depth > max_depth:
        reason = f"nested deeper than {max_depth} levels"
    elif isinstance(value, list):
        if not in_array:
            items = (_clean(v, f"{path}[{i}]", depth + 1, True, problems, max_depth) for i, v in enumerate(value))
            return [v for v in items if v is not _DROP]
        reason = "an array cannot hold arrays"
    else:
        out: dict[str, Any] = {}
        for k, v in value.items():
            sub = _key_path(path, str(k))
            if key_reason := _key_problem(k):
                problems.append((sub, key_reason))
            elif (c := _clean(v, sub, depth + 1, False, problems, max_depth)) is not _DROP:
                out[k] = c
        return out
    if reason is None:
        return value
    problems.append((path, reason))
    return _DROP


_DROP: Any = object()


def check_storable(value: Any, field: str) -> None:
    """Raise naming the first part of ``value`` some layer could not store."""
    problems: list[tuple[str, str]] = []
    _clean(value, field, 1, False, problems)
    if problems:
        raise _Unstorable(*problems[0])


def make_storable(value: Any, max_depth: int = MAX_DEPTH) -> tuple[Any, list[str]]:
    """For data accepted before these checks existed: a copy every layer can store, and the
    paths of what was dropped (the caller logs them)."""
    problems: list[tuple[str, str]] = []
    cleaned = _clean(value, "", 1, False, problems, max_depth)
    return (None if cleaned is _DROP else cleaned), [p.lstrip(".") for p, _ in problems]


def check_sources(sources: Any, field: str) -> None:
    """KB entry ids: any non-empty string (the Firestore layer maps ids that are not valid
    document ids to a stable hash), at most MAX_SOURCES per answer."""
    if not isinstance(sources, list):
        raise _Unstorable(field, "must be an array of KB entry ids")
    if len(sources) > MAX_SOURCES:
        raise _Unstorable(field, f"at most {MAX_SOURCES} KB entry ids")
    for i, s in enumerate(sources):
        if not isinstance(s, str) or not s or len(s.encode()) > MAX_SOURCE_BYTES:
            raise _Unstorable(f"{field}[{i}]", f"a KB entry id is a string of 1-{MAX_SOURCE_BYTES} bytes")


def json_size(value: Any) -> int:
    """Bytes of ``value`` as compact UTF-8 JSON (orjson: the same bytes, several times
    faster; the standard library for what orjson cannot write)."""
    try:
        return len(orjson.dumps(value))
    except TypeError:
        return len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False)


class MessageIn(_Strict):
    """One message offered for appending."""

    role: Role
    content: str = Field(min_length=1)
    metadata: dict[str, Any] | None = None
    client_message_id: str | None = None

    @field_validator("content")
    @classmethod
    def _content_size(cls, v: str) -> str:
        limit = get_settings().max_content_bytes
        if len(v.encode()) > limit:
            raise ValueError(f"content is larger than {limit} bytes")
        if not v.strip():
            raise ValueError("content is blank")
        return v

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


class Context(BaseModel):
    session_id: str
    messages: list[Message]
    summary: Summary | None
    formatted_context: str
    storage: Layer
    durable: bool = True
    estimated_tokens: int = 0


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
    role: object, content: object, metadata: object = None, client_message_id: object = None
) -> MessageIn:
    """Build a MessageIn or raise InvalidArgument/PayloadTooLarge with a readable reason."""
    try:
        return MessageIn.model_validate(
            {"role": role, "content": content, "metadata": metadata, "client_message_id": client_message_id}
        )
    except ValidationError as exc:
        raise _to_invalid(exc) from None


def parse_user_info(user_info: object) -> dict[str, Any]:
    if user_info is None:
        return {}
    if not isinstance(user_info, dict):
        raise InvalidArgument("user_info must be an object")
    try:
        check_storable(user_info, "user_info")
    except _Unstorable as exc:
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
    if isinstance(cause, _Unstorable):
        return InvalidArgument(str(cause), details={"field": cause.field})
    cls = PayloadTooLarge if "larger than" in msg else InvalidArgument
    return cls(f"{field}: {msg}", details={"field": field})
