"""The handlers' parameters: integers of a query string, and the fields a body may hold."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from shared.errors import InvalidArgument

_MAX_INT_DIGITS = 9  # query integers are small; this keeps int() cheap


def int_param(args: Mapping[str, str], name: str, *, default: int | None, lo: int, hi: int) -> int | None:
    raw = args.get(name)
    if raw is None or raw == "":
        return default
    if not raw.isascii() or not raw.isdigit() or len(raw) > _MAX_INT_DIGITS:
        raise InvalidArgument(f"{name} must be an integer from {lo} to {hi}", details={"field": name})
    value = int(raw)
    if not lo <= value <= hi:
        raise InvalidArgument(f"{name} must be an integer from {lo} to {hi}", details={"field": name})
    return value


def only_fields(body: Mapping[str, Any], allowed: set[str]) -> None:
    """Reject unknown fields: a typo (``sessionId``) should fail loudly, not be ignored."""
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise InvalidArgument(f"unknown field: {unknown[0]}", details={"field": unknown[0]})
