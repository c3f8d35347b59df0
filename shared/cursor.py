"""Page cursors: opaque to clients, (a sort value, a document id) inside, so pages of
documents with equal sort values neither skip nor repeat one. The export's cursor may
carry a third value: the last message number (seq) of a session split across pages."""

from __future__ import annotations

import base64
import binascii
import json
import math
import re

from shared.errors import InvalidArgument

MAX_CURSOR_CHARS = 512
MAX_SEQ = 2**53 - 1  # an exact number in JavaScript too; no session numbers this many messages
# A Firestore document id: no slash, not "." or "..", not of the form __name__.
_DOC_ID = re.compile(r"[^/]{1,400}", re.S)
_RESERVED = re.compile(r"__.*__", re.S)


def bad_cursor(why: str = "cursor is not one this API gave out") -> InvalidArgument:
    return InvalidArgument(why, details={"field": "cursor"})


def encode_cursor(ts: float, doc_id: str, seq: int | None = None) -> str:
    value = [ts, doc_id] if seq is None else [ts, doc_id, seq]
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


def decode_cursor(cursor: object) -> tuple[float, str] | None:
    """(sort value, document id), or None for no cursor; 400 naming ``cursor`` otherwise."""
    got = _decode(cursor, with_seq=False)
    return None if got is None else (got[0], got[1])


def decode_seq_cursor(cursor: object) -> tuple[float, str, int | None] | None:
    """(sort value, document id, seq or None): the export's cursor."""
    return _decode(cursor, with_seq=True)


def _decode(cursor: object, *, with_seq: bool) -> tuple[float, str, int | None] | None:
    if cursor is None or cursor == "":
        return None
    try:
        if not isinstance(cursor, str) or len(cursor) > MAX_CURSOR_CHARS:
            raise ValueError
        value = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if not isinstance(value, list) or len(value) not in ((2, 3) if with_seq else (2,)):
            raise ValueError
        ts, doc_id, *rest = value
        if not isinstance(ts, int | float) or isinstance(ts, bool) or not math.isfinite(ts):
            raise ValueError
        if not isinstance(doc_id, str):
            raise ValueError
        doc_id.encode()  # a lone surrogate is no id Firestore holds (UnicodeEncodeError: a ValueError)
        if not _DOC_ID.fullmatch(doc_id) or doc_id in (".", "..") or _RESERVED.fullmatch(doc_id):
            raise ValueError  # no document Firestore could hold: it would refuse the query (503)
        seq = rest[0] if rest else None
        if seq is not None and (type(seq) is not int or not 0 <= seq <= MAX_SEQ):
            raise ValueError
        return float(ts), doc_id, seq
    except (ValueError, TypeError, OverflowError, binascii.Error, UnicodeDecodeError, RecursionError):
        # OverflowError: an integer sort value past the float range (JSON reads 10**309;
        # math.isfinite and float cannot take it)
        raise bad_cursor() from None
