"""Typed errors, one per error code of the API (``{"error": {"code", "message", "details"?}}``)."""

from __future__ import annotations

from typing import Any


class ChatMemoryError(Exception):
    """An answer of the API that is not a success, or no answer at all (``TransportError``)."""

    def __init__(self, status: int, code: str, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.details = details or {}

    @property
    def field(self) -> str | None:
        """The request field the error names, when it names one."""
        got = self.details.get("field")
        return got if isinstance(got, str) else None


class InvalidArgument(ChatMemoryError):
    """400: the request is wrong; ``field`` names what. ``status`` 0: refused by the client
    before anything was sent (a rule it checks itself: role, content, client_message_id)."""


class PayloadTooLarge(InvalidArgument):
    """413 payload_too_large: a content, metadata or user_info past the deployment's limit."""


class Unauthenticated(ChatMemoryError):
    """401: no token, or one that is expired, revoked or not ours."""


class PermissionDenied(ChatMemoryError):
    """403: another user's session, a turn this identity may not write, an admin function."""


class NotFound(ChatMemoryError):
    """404: no such session (or memory)."""


class Conflict(ChatMemoryError):
    """409: failed_precondition, session_expired, too_many_sessions."""


class _RetryLater(ChatMemoryError):
    def __init__(self, status: int, code: str, message: str, details: dict[str, Any] | None = None, *,
                 retry_after: float | None = None) -> None:  # fmt: skip
        super().__init__(status, code, message, details)
        self.retry_after = retry_after  # seconds, from the Retry-After header (None: not given)


class RateLimited(_RetryLater):
    """429: ``retry_after`` seconds to wait."""


class Unavailable(_RetryLater):
    """503: a store or a dependency is down; nothing accepted was lost, retry later."""


class TransportError(ChatMemoryError):
    """No answer: the network failed or the request timed out (status 0)."""

    def __init__(self, message: str) -> None:
        super().__init__(0, "transport", message)


_BY_STATUS: dict[int, type[ChatMemoryError]] = {
    400: InvalidArgument,
    413: PayloadTooLarge,
    401: Unauthenticated,
    403: PermissionDenied,
    404: NotFound,
    409: Conflict,
    429: RateLimited,
    503: Unavailable,
}


def error_from(status: int, body: Any, retry_after: str | None) -> ChatMemoryError:
    err = body.get("error") if isinstance(body, dict) else None
    code = str(err.get("code")) if isinstance(err, dict) else "http_error"
    message = str(err.get("message")) if isinstance(err, dict) else f"HTTP {status}"
    details = err.get("details") if isinstance(err, dict) and isinstance(err.get("details"), dict) else None
    cls = _BY_STATUS.get(status, ChatMemoryError)
    if issubclass(cls, _RetryLater):
        try:
            after = float(retry_after) if retry_after else None
        except ValueError:
            after = None  # an HTTP date: the client's own backoff instead
        return cls(status, code, message, details, retry_after=after)
    return cls(status, code, message, details)
