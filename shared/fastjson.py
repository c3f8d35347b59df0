"""orjson where it reads exactly what the standard library reads: the one guard that the
HTTP edge (request bodies) and the store (messages read back from Redis) share. Each caller
keeps its own standard-library fallback, because they differ on purpose: the edge refuses
NaN and Infinity, the store reads values buffered before the edge did as null."""

from __future__ import annotations

import json
from typing import Any

import orjson

MISS: Any = object()  # the standard library must read this text
_HUGE = float(2**64)


def loads(raw: str | bytes) -> Any:
    """The JSON value, or ``MISS`` where orjson would not read what the standard library
    reads: text it refuses (NaN, infinities, a lone surrogate escape, nesting past 1024)
    and text holding a float of 2**64 or more, which is how orjson reads an integer past
    64 bits (a float literal that large reads the same either way). Several times faster
    than the standard library, and than looking for long digit runs in the text first."""
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return MISS
    return MISS if _has_huge(value) else value


def size(value: Any) -> int:
    """Bytes of ``value`` as compact UTF-8 JSON (orjson: cheap enough to run over every
    entry of a page). Where orjson refuses (an integer past 64 bits, a lone surrogate), the
    standard library's text. A float may be a byte shorter than the standard library spells
    it (``1e16``, not ``1e+16``): callers keep a little slack per entry."""
    try:
        return len(orjson.dumps(value))
    except TypeError:  # orjson.JSONEncodeError is one
        text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)
        return len(text.encode("utf-8", "surrogatepass"))


def _has_huge(value: Any) -> bool:
    """Any float of 2**64 or more in magnitude, at any depth (iterative: orjson accepts
    nesting deeper than Python's recursion limit)."""
    kind = type(value)
    if kind is float:
        return bool(value >= _HUGE or value <= -_HUGE)
    if kind is not dict and kind is not list:
        return False
    stack = [value]
    while stack:
        v = stack.pop()
        for x in v.values() if type(v) is dict else v:
            k = type(x)
            if k is float:
                if x >= _HUGE or x <= -_HUGE:
                    return True
            elif k is dict or k is list:
                stack.append(x)
    return False
