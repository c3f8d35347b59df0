"""The instance's firebase_admin default app: created once, under a lock, on first use.

Both token verification (shared/auth.py) and the production Firestore client need it;
two cold requests at once must not both call initialize_app ("already exists").
"""

from __future__ import annotations

import sys
import threading
from typing import Any

from shared.settings import get_settings

_lock = threading.Lock()


def get_app() -> Any:
    import firebase_admin

    with _lock:
        try:
            return firebase_admin.get_app()
        except ValueError:
            project = get_settings().gcp_project
            return firebase_admin.initialize_app(options={"projectId": project} if project else None)


def reset_app() -> None:
    """For tests: drop the default app, so a changed project is picked up."""
    firebase_admin = sys.modules.get("firebase_admin")
    if firebase_admin is None:
        return  # never imported: nothing cached
    with _lock:
        try:
            firebase_admin.delete_app(firebase_admin.get_app())
        except ValueError:
            pass
