"""Page cursors: opaque to clients, (a sort value, a document id) inside, so pages of
documents with equal sort values neither skip nor repeat one."""

from __future__ import annotations

import base64
import binascii
import json
import math
import re

from shared.errors import InvalidArgument

MAX_CURSOR_CHARS = 512
# A Firestore document id: no slash, not "." or "..", not of the form __name__.
_DOC_ID = re.compile(r"[^/]{1,400}", re.S)
_RESERVED = re.compile(r"__.*__", re.S)


def encode_cursor(ts: float, doc_id: str) -> str:
    return base64.urlsafe_b64encode(json.dumps([ts, doc_id]).encode()).decode().rstrip("=")


def decode_cursor(cursor: object) -> tuple[float, str] | None:
    if cursor is None or cursor == "":
        return None
    try:
        if not isinstance(cursor, str) or len(cursor) > MAX_CURSOR_CHARS:
            raise ValueError
        ts, doc_id = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if not isinstance(ts, int | float) or not math.isfinite(ts) or not isinstance(doc_id, str):
            raise ValueError
        doc_id.encode()  # a lone surrogate is no id Firestore holds (UnicodeEncodeError: a ValueError)
        if not _DOC_ID.fullmatch(doc_id) or doc_id in (".", "..") or _RESERVED.fullmatch(doc_id):
            raise ValueError  # no document Firestore could hold: it would refuse the query (503)
        return float(ts), doc_id
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError):
        raise InvalidArgument("cursor is not one this API gave out", details={"field": "cursor"}) from None
