"""A backend acting for a user: which ``user_id`` a request names, and whether its caller may.

The rule every function shares (``http.handle`` applies it to a request's body or query, the
``mcp`` function to each tool call's arguments). docs/security.md, "A backend acting for a user".
"""

from __future__ import annotations

from typing import Any

from shared.core.models import validate_user_id
from shared.edge.auth import Caller
from shared.errors import InvalidArgument, PermissionDenied


def acting_for(caller: Caller, fields: dict[str, Any], acts_for: bool, method: str) -> str | None:
    """The user a backend names (``user_id``, taken out of ``fields``), or None.

    Only where ``acts_for``: elsewhere a body's ``user_id`` is the function's own field
    (admin_erase_user's), and a GET's is refused (no GET function takes one: a caller asking
    for another user's data must not silently get its own). An end user naming anyone
    (themselves included) is refused: a user acts only as themselves. A service account,
    which owns nothing, must name one where it may act, and may call nothing else."""
    if not acts_for:
        if caller.service_account is not None:
            raise PermissionDenied("a service account may not call this function")
        if method == "GET" and "user_id" in fields:
            raise InvalidArgument("user_id is not accepted by this function", details={"field": "user_id"})
        return None
    if "user_id" not in fields:
        if caller.service_account is not None:
            raise InvalidArgument(
                "user_id is required: a service account acts only for a user", details={"field": "user_id"}
            )
        return None
    target = fields.pop("user_id")
    if not caller.backend:
        raise PermissionDenied("only a backend identity may act for a user (user_id)")
    try:
        return validate_user_id(target)
    except InvalidArgument as exc:
        raise InvalidArgument(f"user_id: {exc.message}", details={"field": "user_id"}) from None
