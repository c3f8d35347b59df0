"""The project's error types. The HTTP edge maps each to one status in one place."""

from __future__ import annotations

from typing import Any


class ChatMemoryError(Exception):
    """Base of every error this package raises on purpose."""

    code: str = "internal"
    http_status: int = 500

    def __init__(self, message: str, *, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or {}


class InvalidArgument(ChatMemoryError):
    """Bad input: a field, a size, a session id of the wrong format."""

    code = "invalid_argument"
    http_status = 400


class PayloadTooLarge(InvalidArgument):
    code = "payload_too_large"
    http_status = 413


class Unauthenticated(ChatMemoryError):
    code = "unauthenticated"
    http_status = 401


class PermissionDenied(ChatMemoryError):
    code = "permission_denied"
    http_status = 403


class NotFound(ChatMemoryError):
    code = "not_found"
    http_status = 404


class FailedPrecondition(ChatMemoryError):
    """E.g. appending to an ended session."""

    code = "failed_precondition"
    http_status = 409


class SessionExpired(FailedPrecondition):
    """The session's memory expired (or Redis lost it): it was ended as `expired`."""

    code = "session_expired"


class TooManySessions(FailedPrecondition):
    code = "too_many_sessions"


class RateLimited(ChatMemoryError):
    code = "rate_limited"
    http_status = 429

    def __init__(self, message: str, *, retry_after_s: int) -> None:
        super().__init__(message, details={"retry_after_s": retry_after_s})
        self.retry_after_s = retry_after_s


class Unavailable(ChatMemoryError):
    """A store needed for this operation is down and no layer could take over."""

    code = "unavailable"
    http_status = 503


class Busy(Unavailable):
    """This instance has no room for the operation now (a 503 with Retry-After)."""

    def __init__(self, message: str, *, retry_after_s: int) -> None:
        super().__init__(message, details={"retry_after_s": retry_after_s})
        self.retry_after_s = retry_after_s


class StoreError(Exception):
    """Raised by a storage layer when its backend fails (network, timeout, server).

    The orchestrator catches it and falls to the next layer; it never reaches a caller.
    ``layer`` says which backend failed ("redis" or "firestore"); ``retryable`` marks the
    first connection error after a healthy period (a pooled connection that died with a
    Redis restart): the caller merges what other layers accepted, then retries once.
    """

    def __init__(self, message: str, *, layer: str = "", retryable: bool = False) -> None:
        super().__init__(message)
        self.layer = layer
        self.retryable = retryable
