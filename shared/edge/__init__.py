"""The HTTP edge: parse, authenticate, limit, make one call, map errors to statuses.

``http`` (the wrapper every function runs in), ``api`` (one handler per function),
``wire`` and ``bodies`` (the answers' shapes), ``auth`` (ID tokens and roles) and
``ratelimit``. Only ``functions/main.py`` imports it; it reaches the product through
``shared.instance``.
"""

from __future__ import annotations


def reset() -> None:
    """For tests: forget everything this process built, the edge's per-instance caches
    (verified tokens and account checks, the rate limiter's scripts, the last health probe, the export slots)
    and the instance's (``shared.instance.reset``), so the next use reads the environment
    anew. The one reset the tests call."""
    from shared import instance
    from shared.edge import api, auth, ratelimit

    instance.reset()
    ratelimit.reset_limiter()
    auth.reset_auth()
    api.reset_health()
    api.reset_export_slots()
