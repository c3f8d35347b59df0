"""Key/value state of a framework's app (get_state, update_state): per user, or per app.

Where ADK keeps ``user:`` and ``app:`` state, and where an adapter keeps what it must
remember across processes (its own session names). Session state is not here: it travels
with the session's messages (an ADK event's ``state_delta`` in its ``item``), so an append's
idempotency covers it too.

- ``scope: user``: the caller's own state of ``app`` (a backend names ``user_id``); part of
  the user's data rights (export_my_data lists it, delete_my_data erases it). At most
  STATE_MAX_APPS apps per user.
- ``scope: app``: one state per app, shared by all its users: backend or admin callers only,
  to read and to write (an end user's 403), as it is the app's, not any user's.

``update_state`` merges ``delta`` (``null`` deletes a key) in one transaction; with
``if_absent`` only keys not present are set, so two processes racing to name the same thing
both learn the one value stored. Keys are any strings of 1-256 characters, values any JSON;
the whole state at most STATE_MAX_BYTES of JSON. The store keeps it as one JSON text
(``shared.store.firestore.state``): no key is ever a document's field.
"""

from __future__ import annotations

import re
import time
from typing import Any

from shared.core.models import strict_json
from shared.errors import InvalidArgument, PermissionDenied
from shared.settings import Settings
from shared.store.firestore.state import StateStore

SCOPES = ("user", "app")
APP_RE = re.compile(r"^[A-Za-z0-9_.:@-]{1,128}$")
_RESERVED = re.compile(r"^__.*__$")
MAX_KEY_CHARS = 256


class AppState:
    def __init__(self, store: StateStore, settings: Settings) -> None:
        self.store = store
        self.settings = settings

    def get(self, uid: str | None, *, scope: object, app: object, trusted: bool) -> dict[str, Any]:
        sc, name, owner = _target(uid, scope, app, trusted)
        state, updated = self.store.read(name, owner)
        return {"scope": sc, "app": name, "state": state, "updated_at": updated}

    def update(
        self, uid: str | None, *, scope: object, app: object, delta: object, if_absent: object, trusted: bool
    ) -> dict[str, Any]:
        sc, name, owner = _target(uid, scope, app, trusted)
        changes = _delta(delta)
        if not isinstance(if_absent, bool):
            raise InvalidArgument("if_absent must be true or false", details={"field": "if_absent"})

        def merge(state: dict[str, Any]) -> dict[str, Any]:
            new = dict(state)
            for k, v in changes.items():
                if if_absent:
                    if k not in new and v is not None:
                        new[k] = v
                elif v is None:
                    new.pop(k, None)
                else:
                    new[k] = v
            return new

        state, updated = self.store.merge(
            name,
            owner,
            merge,
            max_bytes=self.settings.state_max_bytes,
            max_docs=self.settings.state_max_apps,
            now=time.time(),
        )
        return {"scope": sc, "app": name, "state": state, "updated_at": updated}


def _target(uid: str | None, scope: object, app: object, trusted: bool) -> tuple[str, str, str | None]:
    """(scope, app, the owning user or None for the app's own)."""
    if scope not in SCOPES:
        raise InvalidArgument("scope must be user or app", details={"field": "scope"})
    if not isinstance(app, str) or not APP_RE.fullmatch(app) or app in (".", "..") or _RESERVED.fullmatch(app):
        raise InvalidArgument(
            "app must be 1-128 characters of [A-Za-z0-9_.:@-], not '.', '..' or __name__", details={"field": "app"}
        )
    if scope == "app":
        if not trusted:
            raise PermissionDenied("an app's state is read and written by its backend (or an admin) only")
        return "app", app, None
    if uid is None:
        raise PermissionDenied("a user's state needs the user")
    return "user", app, uid


def _delta(delta: object) -> dict[str, Any]:
    if not isinstance(delta, dict) or not delta:
        raise InvalidArgument(
            "delta must be a non-empty object of keys to set (null deletes)", details={"field": "delta"}
        )
    for k in delta:
        if not isinstance(k, str) or not 1 <= len(k) <= MAX_KEY_CHARS:
            raise InvalidArgument(f"a key is 1-{MAX_KEY_CHARS} characters", details={"field": "delta"})
    try:
        strict_json(delta, "delta")  # keys and values: Unicode, finite numbers
    except ValueError as exc:
        raise InvalidArgument(str(exc), details={"field": "delta"}) from None
    return delta
