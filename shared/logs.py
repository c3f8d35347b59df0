"""Structured logs in Cloud Logging's JSON format: one object per line on stdout.

Cloud Functions (Cloud Run) turns each JSON line into a LogEntry: ``severity`` and
``message`` become the entry's own, ``logging.googleapis.com/trace`` groups every line of
one request under its trace, everything else lands in ``jsonPayload``. The ``chat_memory``
logger (used by the core) is configured here, once per instance.

No message content, tokens or profile fields are ever logged: callers pass ids and
figures only, and the formatter drops fields whose names say they carry content, as a
second line of defence.
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
import sys
import threading
import time
import traceback
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import orjson

from shared.settings import get_settings

if TYPE_CHECKING:
    from werkzeug.datastructures import Headers

    HeaderMap = Mapping[str, str] | Headers

LOGGER_NAME = "chat_memory"

# Fields that must never reach a log line, whoever passes them.
_REDACTED_KEYS = frozenset(
    {
        "content",
        "text",
        "query",
        "response",
        "formatted_context",
        "token",
        "id_token",
        "authorization",
        "password",
        "secret",
        "user_info",
        "metadata",
        "body",
    }
)

# Attributes every LogRecord has; anything else came in through ``extra=``.
_RECORD_ATTRS = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "taskName"}

_TRACE_HEADER_RE = re.compile(r"^([0-9a-fA-F]{32})(?:/(\d+))?(?:;o=(\d))?")
_TRACEPARENT_RE = re.compile(r"^[0-9a-f]{2}-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")

# Per-request fields (trace, function name, ...) merged into every line logged while the
# request runs, including the core's lines; a ContextVar keeps threads apart.
_context: contextvars.ContextVar[Mapping[str, Any] | None] = contextvars.ContextVar("chat_memory_log_ctx", default=None)

_configured = False
_configure_lock = threading.Lock()
_root = logging.getLogger(LOGGER_NAME)


class _Handler(logging.StreamHandler[Any]):
    """This module's handler: ``configure_logging`` replaces its own, never another's."""


_handler: _Handler | None = None  # configure_logging's


class CloudLoggingFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "severity": _severity(record.levelno),
            "message": record.getMessage(),
            "time": _rfc3339(record.created),
            "logger": record.name,
        }
        entry.update(_context.get() or {})
        for key, value in record.__dict__.items():
            if key not in _RECORD_ATTRS and not key.startswith("_"):
                entry[key] = value
        if record.exc_info and record.exc_info[0] is not None:
            # Error Reporting picks up a ``stack_trace`` field; the response never has it.
            entry["stack_trace"] = "".join(traceback.format_exception(*record.exc_info))
        return _line(entry)


def _line(entry: dict[str, Any]) -> str:
    for key in entry.keys() & _REDACTED_KEYS:
        entry[key] = "[redacted]"
    try:
        # orjson: the same compact UTF-8 JSON, a few times faster (NaN becomes null)
        return orjson.dumps(entry, default=str).decode()
    except TypeError:  # a key that is not a string, an integer past 64 bits, a lone surrogate
        return json.dumps(entry, default=str, ensure_ascii=False, separators=(",", ":"))


def _severity(levelno: int) -> str:
    if levelno >= logging.CRITICAL:
        return "CRITICAL"
    if levelno >= logging.ERROR:
        return "ERROR"
    if levelno >= logging.WARNING:
        return "WARNING"
    if levelno >= logging.INFO:
        return "INFO"
    return "DEBUG"


def _rfc3339(ts: float) -> str:
    global _second
    whole = int(ts)
    second = _second
    if second[0] != whole:  # strftime once per second, not once per line
        second = _second = (whole, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole)))
    return f"{second[1]}.{int(ts % 1 * 1e6):06d}Z"


_second: tuple[int, str] = (-1, "")


def configure_logging(stream: Any = None) -> logging.Logger:
    """Attach the JSON handler to the ``chat_memory`` logger (idempotent; no I/O)."""
    global _configured, _handler
    logger = logging.getLogger(LOGGER_NAME)
    with _configure_lock:
        if _configured and stream is None:
            return logger
        for h in list(logger.handlers):
            if isinstance(h, _Handler):
                logger.removeHandler(h)
        handler = _Handler(stream or sys.stdout)
        handler.setFormatter(CloudLoggingFormatter())
        logger.addHandler(handler)
        _handler = handler
        logger.setLevel(get_settings().log_level.upper())
        # The root logger (functions-framework's) would print every line a second time.
        logger.propagate = False
        _configured = True
    return logger


def log_line(logger: logging.Logger, level: int, message: str, fields: dict[str, Any]) -> None:
    """``logger.log(level, message, extra=fields)``, the same line, for the edge's one line
    per request: written straight to this module's handler when it is the only one the
    line would reach (no LogRecord, no handler chain), through ``logging`` otherwise."""
    if not logger.isEnabledFor(level):
        return
    handler = _handler
    if (
        handler is None
        or logger.handlers
        or logger.filters
        or not logger.propagate
        or _root.handlers != [handler]
        or _root.filters
        or handler.filters
        or level < handler.level
    ):
        logger.log(level, message, extra=fields)
        return
    now = time.time()
    entry: dict[str, Any] = {
        "severity": _severity(level),
        "message": message,
        "time": _rfc3339(now),
        "logger": logger.name,
    }
    entry.update(_context.get() or {})
    entry.update(fields)
    line = _line(entry) + "\n"
    lock = handler.lock
    assert lock is not None  # Handler.__init__ created it
    with lock:
        try:
            handler.stream.write(line)
            handler.stream.flush()
        except Exception:  # noqa: BLE001 - as logging does: a broken stream must not fail the request
            handler.handleError(logging.makeLogRecord({"msg": message, "levelno": level}))


def push_context(fields: dict[str, Any]) -> contextvars.Token[Mapping[str, Any] | None]:
    """``log_context`` without the context manager (the edge: once per request)."""
    return _context.set({**(_context.get() or {}), **{k: v for k, v in fields.items() if v is not None}})


def pop_context(token: contextvars.Token[Mapping[str, Any] | None]) -> None:
    _context.reset(token)


def get_logger(name: str = "") -> logging.Logger:
    return logging.getLogger(f"{LOGGER_NAME}.{name}" if name else LOGGER_NAME)


def trace_fields(headers: HeaderMap) -> dict[str, Any]:
    """Cloud Logging trace fields from ``X-Cloud-Trace-Context`` (or W3C ``traceparent``)."""
    trace_id = span_id = None
    sampled = False
    if m := _TRACE_HEADER_RE.match(headers.get("X-Cloud-Trace-Context", "")):
        trace_id, span_id, sampled = m.group(1).lower(), m.group(2), m.group(3) == "1"
    elif m := _TRACEPARENT_RE.match(headers.get("traceparent", "")):
        trace_id, span_id, sampled = m.group(1), m.group(2), int(m.group(3), 16) & 1 == 1
    if not trace_id:
        return {}
    project = get_settings().gcp_project or "demo-chat-memory"
    out: dict[str, Any] = {
        "logging.googleapis.com/trace": f"projects/{project}/traces/{trace_id}",
        "logging.googleapis.com/trace_sampled": sampled,
    }
    if span_id:
        out["logging.googleapis.com/spanId"] = span_id
    return out


@contextmanager
def log_context(**fields: Any) -> Iterator[None]:
    """Fields added to every line logged inside the block (this thread only)."""
    token = push_context(fields)
    try:
        yield
    finally:
        _context.reset(token)
