"""What every layer can store (Redis as JSON, Firestore, the JSON answer), and a copy of
data accepted before these checks existed that every layer can store. The core's
validation (``shared.core.models``) refuses what is not storable with these rules; the
Firestore layer cleans legacy data with them.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

# What every layer can store (Redis as JSON, Firestore, the JSON answer): checked against
# the Firestore emulator. Firestore refuses `__x__` and empty field names, arrays directly
# in arrays, ints outside signed 64 bits, names over 1500 bytes and nesting past 20 levels
# (a message's metadata already sits 3 levels down); NaN and infinity are not JSON.
MAX_DEPTH = 10
MAX_KEY_BYTES = 256
MAX_SOURCES = 50  # analytics keep this many KB entry ids per answer
MAX_SOURCE_BYTES = 256
_INT_MIN, _INT_MAX = -(2**63), 2**63 - 1
RESERVED_NAME = re.compile(r"^__.*__$", re.S)
_PLAIN_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


class Unstorable(ValueError):
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
    if RESERVED_NAME.fullmatch(key):
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
        raise Unstorable(*problems[0])


def make_storable(value: Any, max_depth: int = MAX_DEPTH) -> tuple[Any, list[str]]:
    """For data accepted before these checks existed: a copy every layer can store, and the
    paths of what was dropped (the caller logs them)."""
    problems: list[tuple[str, str]] = []
    cleaned = _clean(value, "", 1, False, problems, max_depth)
    return (None if cleaned is _DROP else cleaned), [p.lstrip(".") for p, _ in problems]
