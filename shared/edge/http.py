"""The HTTP edge, in one place: method, CORS, size, content type, JSON, auth, rate limit,
then the handler, then errors to statuses.

Every HTTP function is ``handle(request, handler, method=...)``. A handler gets a parsed
``Call`` and returns ``(status, body)``; it raises ``ChatMemoryError`` subclasses for
anything the caller did wrong. This module is the only place an exception becomes an HTTP
status, and the only place a response is built. Bad input never produces a 500, and no
stack trace ever leaves the process (it goes to the log, with the request's trace).
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any, Literal

import orjson
from flask import Request, Response

from shared import fastjson
from shared.core.models import SESSION_ID_RE
from shared.edge import auth, ratelimit
from shared.edge.acting import acting_for
from shared.edge.client_ip import client_ip
from shared.errors import (
    Busy,
    ChatMemoryError,
    InvalidArgument,
    PayloadTooLarge,
    PermissionDenied,
    RateLimited,
    StoreError,
    Unavailable,
)
from shared.logs import get_logger, log_context, log_line, pop_context, push_context, trace_fields
from shared.settings import get_settings

Method = Literal["GET", "POST"]


@dataclass(frozen=True, slots=True)
class Text:
    """A body that is not JSON (a CSV download)."""

    body: str
    mimetype: str
    filename: str | None = None


Reply = tuple[int, "dict[str, Any] | Text"]

# Headers a browser may send cross-origin (asked for in a preflight).
_CORS_ALLOW_HEADERS = ("Authorization", "Content-Type", "X-Cloud-Trace-Context", "traceparent")
_CORS_MAX_AGE_S = 3600
_MAX_BASE_URLS = 256
# Headers every answer carries unless it set its own.
_ALWAYS = (("Cache-Control", "no-store"), ("X-Content-Type-Options", "nosniff"))
_OWN_HEADERS = 2  # what werkzeug puts on a fresh body: Content-Type, Content-Length
# Reply fields worth a place on the request's log line (ids and figures, never content).
_LOGGED_REPLY_FIELDS = ("session_id", "storage", "durable", "message_count")

log = get_logger("http")


@dataclass(slots=True)
class Call:
    """What a handler sees: the verified caller and the already-parsed input."""

    uid: str | None
    body: dict[str, Any]
    args: Mapping[str, str]
    backend: bool = False  # a trusted backend identity (auth.BACKEND_CLAIM, or a service account)
    admin: bool = False  # an admin (auth.ADMIN_CLAIM)
    actor: str | None = None  # a backend acting for ``uid`` (its uid or service-account email), else None
    caller: auth.Caller | None = None  # who the token says (before any acting-for)
    log_fields: dict[str, Any] = field(default_factory=dict)
    forwarded_for: str | None = None  # X-Forwarded-For as received
    remote_addr: str | None = None  # the socket's peer

    @property
    def client_ip(self) -> str | None:
        """The caller's IP (edge/client_ip.py), worked out only by the handler that asks."""
        return client_ip(self.forwarded_for, self.remote_addr)


Handler = Callable[[Call], Reply]


class HttpError(ChatMemoryError):
    """An edge-only error (405, 415) that has no place in the core's hierarchy."""

    def __init__(self, status: int, code: str, message: str, headers: Mapping[str, str] | None = None):
        super().__init__(message)
        self.http_status = status
        self.code = code
        self.headers = dict(headers or {})


def handle(
    request: Request,
    handler: Handler,
    *,
    method: Method,
    public: bool = False,
    acts_for: bool | Literal["tools"] = False,
) -> Response:
    """Serve one request with ``handler``; never raises. ``acts_for``: a backend identity may
    name the user it acts for (``user_id`` in the body, or the query of a GET); "tools": in
    each tool call's arguments (the ``mcp`` function, which applies ``acting_for`` itself)."""
    started = time.perf_counter()
    name = handler.__name__
    uid: str | None = None
    actor: str | None = None
    caller: auth.Caller | None = None
    backend = admin = False
    call: Call | None = None
    headers = request.headers
    log_token = push_context({"function": name, **trace_fields(headers)})
    try:
        cors = _cors_headers(request, method)
        try:
            if not public:
                _refuse_if_misconfigured()
            if request.method == "OPTIONS":
                response = _preflight(request, method, cors)
            else:
                _check_method(request, method)
                body = _read_json_body(request) if method == "POST" else {}
                args = _single_args(request)
                if not public:
                    caller = auth.authenticate(headers)
                    uid, backend, admin = caller.uid, caller.backend, caller.admin
                    target = (
                        None
                        if acts_for == "tools"
                        else acting_for(caller, body if method == "POST" else args, bool(acts_for), method)
                    )
                    if target is not None:
                        actor, uid, admin = caller.service_account or caller.uid, target, False
                    ratelimit.enforce(uid)
                call = Call(
                    uid=uid,
                    body=body,
                    args=args,
                    backend=backend,
                    admin=admin,
                    actor=actor,
                    caller=caller,
                    forwarded_for=headers.get("X-Forwarded-For"),
                    remote_addr=request.remote_addr,
                )
                with log_context(session_id=_session_id_of(call)):
                    status, payload = handler(call)
                if isinstance(payload, Text):
                    response = _text(status, payload)
                else:
                    call.log_fields.update({k: payload[k] for k in _LOGGED_REPLY_FIELDS if k in payload})
                    response = _json(status, payload)
        except ChatMemoryError as exc:
            response = _error_response(exc)
        except StoreError as exc:
            # The core should have fallen back or raised Unavailable; a leak is still
            # an outage, not a client error and not an unexplained 500.
            log.error("store error reached the edge", exc_info=exc)
            response = _error_response(Unavailable("storage unavailable"))
        except Exception as exc:  # the edge must answer, whatever happened
            log.error("unhandled error", exc_info=exc)
            response = _json(500, {"error": {"code": "internal", "message": "internal error"}})
        _finish_headers(response, cors, started)
        _log_request(request, name, response, started, uid, call)
    finally:
        pop_context(log_token)
    return response


def _finish_headers(response: Response, cors: dict[str, str], started: float) -> None:
    out = response.headers
    # The function's own time, apart from the platform's (routing, a cold instance):
    # browsers' devtools show it, and the reliability suite tells the two apart with it.
    timing = f"app;dur={(time.perf_counter() - started) * 1000:.1f}"
    if len(out) <= _OWN_HEADERS:
        # Only Content-Type and Content-Length so far (a JSON answer): nothing to replace,
        # so appending is setting, without werkzeug's search per header.
        out.extend(cors)
        out.extend((("Server-Timing", timing), *_ALWAYS))
    else:
        out.update(cors)
        out["Server-Timing"] = timing
        for k, v in _ALWAYS:
            out.setdefault(k, v)


# -- request checks ----------------------------------------------------------------------


def _refuse_if_misconfigured() -> None:
    # An emulator-only switch in a deployed function: no request is served (health says why).
    if auth.refusal_reason() is not None:
        raise HttpError(503, "misconfigured", "this deployment refuses to serve: see its health and logs")


def _check_method(request: Request, method: Method) -> None:
    if request.method != method:
        raise HttpError(405, "method_not_allowed", f"use {method}", headers={"Allow": f"{method}, OPTIONS"})


def _read_json_body(request: Request) -> dict[str, Any]:
    limit = get_settings().max_request_bytes
    declared = request.content_length
    if declared is not None and declared > limit:
        raise PayloadTooLarge(f"request body is larger than {limit} bytes")
    # Read at most limit+1 bytes: a chunked body without Content-Length cannot make
    # the instance buffer more than that.
    raw = request.stream.read(limit + 1)
    if len(raw) > limit:
        raise PayloadTooLarge(f"request body is larger than {limit} bytes")
    if not raw.strip():
        return {}
    mimetype = request.mimetype or ""
    if mimetype != "application/json" and not mimetype.endswith("+json"):
        raise HttpError(415, "unsupported_media_type", "Content-Type must be application/json")
    body = loads(raw)
    if not isinstance(body, dict):
        raise InvalidArgument("request body must be a JSON object")
    return body


def loads(raw: bytes) -> Any:
    """A request body's JSON. orjson where it reads what the standard library reads
    (``fastjson``); the rest (a lone surrogate escape, a number past the float range, nesting
    past 1024, an integer past 64 bits) goes to the standard library's parser, so that every
    body means exactly what it meant before: the core's checks then name the field."""
    value = fastjson.loads(raw)
    if value is not fastjson.MISS:
        return value
    try:
        return json.loads(raw.decode("utf-8"), parse_constant=_reject_constant)
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise InvalidArgument("request body is not valid JSON") from None


def dumps(payload: Any) -> str:
    """An answer's JSON: compact, UTF-8 as is, no NaN or Infinity. orjson where it can (it
    writes NaN as null instead of refusing, so a float that is not finite takes the
    standard library's path, which refuses it as before)."""
    try:
        return orjson.dumps(payload, option=orjson.OPT_PASSTHROUGH_DATACLASS).decode()
    except TypeError:
        pass
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def _reject_constant(name: str) -> Any:
    # NaN and Infinity are not JSON; Python's parser would accept them.
    raise ValueError(name)


def _single_args(request: Request) -> dict[str, str]:
    args: dict[str, str] = {}
    for key, values in request.args.lists():
        if len(values) > 1:
            raise InvalidArgument(f"query parameter {key} given more than once")
        args[key] = values[0]
    return args


# -- CORS ---------------------------------------------------------------------------------


def _cors_headers(request: Request, method: Method) -> dict[str, str]:
    origin = request.headers.get("Origin")
    allowed = get_settings().cors_origin_list
    if "*" in allowed:
        headers = {"Access-Control-Allow-Origin": "*"}
    else:
        # Caches must not serve one origin's answer to another.
        headers = {"Vary": "Origin"}
        if origin and origin in allowed:
            headers["Access-Control-Allow-Origin"] = origin
    if "Access-Control-Allow-Origin" in headers and request.method != "OPTIONS":
        headers["Access-Control-Expose-Headers"] = "Retry-After, Server-Timing"
    return headers


def _preflight(request: Request, method: Method, cors: dict[str, str]) -> Response:
    if request.headers.get("Origin") and "Access-Control-Allow-Origin" not in cors:
        raise PermissionDenied("origin not allowed")
    response = Response(status=204)
    response.headers["Allow"] = f"{method}, OPTIONS"
    if "Access-Control-Allow-Origin" in cors:
        allow_headers = list(_CORS_ALLOW_HEADERS)
        if get_settings().auth_disabled:
            allow_headers.append("X-User-Id")
        response.headers["Access-Control-Allow-Methods"] = f"{method}, OPTIONS"
        response.headers["Access-Control-Allow-Headers"] = ", ".join(allow_headers)
        response.headers["Access-Control-Max-Age"] = str(_CORS_MAX_AGE_S)
    return response


# -- responses and logs -----------------------------------------------------------------------


def _json(status: int, payload: Mapping[str, Any]) -> Response:
    return Response(dumps(payload), status=status, content_type="application/json")


def _text(status: int, payload: Text) -> Response:
    response = Response(payload.body, status=status, mimetype=payload.mimetype)
    if payload.filename:
        response.headers["Content-Disposition"] = f'attachment; filename="{payload.filename}"'
    return response


def _error_response(exc: ChatMemoryError) -> Response:
    error: dict[str, Any] = {"code": exc.code, "message": exc.message}
    if exc.details:
        error["details"] = exc.details  # e.g. the field a 400 is about
    response = _json(exc.http_status, {"error": error})
    if isinstance(exc, HttpError):
        response.headers.update(exc.headers)
    if isinstance(exc, (RateLimited, Busy)):
        response.headers["Retry-After"] = str(max(1, math.ceil(exc.retry_after_s)))
    return response


def _session_id_of(call: Call) -> str | None:
    sid = call.body.get("session_id") or call.args.get("session_id")
    # Only a well-formed id is logged: the field is never a channel for arbitrary text.
    return sid if isinstance(sid, str) and SESSION_ID_RE.fullmatch(sid) else None


def _log_request(
    request: Request, name: str, response: Response, started: float, uid: str | None, call: Call | None
) -> None:
    latency_ms = round((time.perf_counter() - started) * 1000, 2)
    status = response.status_code
    fields: dict[str, Any] = {
        "function": name,
        "status": status,
        "latency_ms": latency_ms,
        "httpRequest": {
            "requestMethod": request.method,
            "requestUrl": _base_url(request),
            "status": status,
            "latency": f"{latency_ms / 1000:.6f}s",
            "userAgent": request.headers.get("User-Agent", "")[:200],
        },
    }
    if uid:
        fields["user_id"] = uid
    if call is not None and call.actor is not None:
        fields["acting_backend"] = call.actor  # every backend action: who acted, for whom (user_id)
    if call is not None:
        fields["session_id"] = _session_id_of(call)
        fields.update(call.log_fields)
    if status >= HTTPStatus.BAD_REQUEST and response.is_json:
        fields["error_code"] = (response.get_json(silent=True) or {}).get("error", {}).get("code")
    if status >= HTTPStatus.INTERNAL_SERVER_ERROR:
        level = logging.ERROR
    elif status in (HTTPStatus.UNAUTHORIZED, HTTPStatus.FORBIDDEN, HTTPStatus.TOO_MANY_REQUESTS):
        level = logging.WARNING
    else:
        level = logging.INFO
    log_line(log, level, f"{request.method} {name} {status}", fields)


_base_urls: dict[tuple[Any, ...], str] = {}


def _base_url(request: Request) -> str:
    """``request.base_url`` (werkzeug builds it anew, IRI conversion included, on every
    request), remembered per scheme, host and path: a function is called on one URL."""
    env = request.environ
    key = (
        env.get("wsgi.url_scheme"),
        env.get("HTTP_HOST"),
        env.get("SERVER_NAME"),
        env.get("SERVER_PORT"),
        env.get("SCRIPT_NAME"),
        env.get("PATH_INFO"),
    )
    url = _base_urls.get(key)
    if url is None:
        url = request.base_url
        if len(_base_urls) >= _MAX_BASE_URLS:  # any Host and path a client makes up: bounded
            _base_urls.clear()
        _base_urls[key] = url
    return url
