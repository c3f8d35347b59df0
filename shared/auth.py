"""Who is calling: a Firebase ID token verified with firebase-admin, or (local development
only, ``AUTH_DISABLED=true``) a uid taken on trust from ``X-User-Id``.

firebase_admin is imported on the first verification, not at import: discovery of the
functions at deploy time and the public ``health`` function never pay for it. Under the
Auth emulator (``FIREBASE_AUTH_EMULATOR_HOST`` set) firebase-admin accepts the emulator's
unsigned tokens by itself.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from shared.errors import InvalidArgument, Unauthenticated, Unavailable
from shared.logs import get_logger
from shared.models import validate_user_id
from shared.settings import get_settings

if TYPE_CHECKING:
    from werkzeug.datastructures import Headers

    HeaderMap = Mapping[str, str] | Headers

DEV_USER_ID = "dev-user"
# Firebase ID tokens are JWTs of about 1 kB; anything far larger is not one.
_MAX_TOKEN_CHARS = 8192
_JWT_DOTS = 2  # header.payload.signature

log = get_logger("auth")


def authenticate(headers: HeaderMap) -> str:
    """The verified uid of the caller, or Unauthenticated."""
    if get_settings().auth_disabled:
        return _dev_uid(headers)
    return verify_id_token(bearer_token(headers))


def bearer_token(headers: HeaderMap) -> str:
    raw = headers.get("Authorization", "")
    scheme, _, token = raw.strip().partition(" ")
    token = token.strip()
    if not raw:
        raise Unauthenticated("missing Authorization header")
    if scheme.lower() != "bearer" or not token or " " in token:
        raise Unauthenticated("Authorization must be 'Bearer <Firebase ID token>'")
    if len(token) > _MAX_TOKEN_CHARS or token.count(".") != _JWT_DOTS:
        raise Unauthenticated("malformed ID token")
    return token


def verify_id_token(token: str) -> str:
    from firebase_admin import auth

    try:
        claims: dict[str, Any] = auth.verify_id_token(token, app=_app())
    except auth.ExpiredIdTokenError:
        raise Unauthenticated("ID token expired") from None
    except auth.RevokedIdTokenError:
        raise Unauthenticated("ID token revoked") from None
    except auth.UserDisabledError:
        raise Unauthenticated("user disabled") from None
    except auth.CertificateFetchError as exc:
        # Google's public keys could not be fetched: our problem, not the caller's.
        log.error("token verification unavailable", extra={"error": type(exc).__name__})
        raise Unavailable("cannot verify tokens right now") from None
    except (auth.InvalidIdTokenError, ValueError):
        raise Unauthenticated("invalid ID token") from None
    # firebase-admin checks nothing but the shape of a token while
    # FIREBASE_AUTH_EMULATOR_HOST is set: check the expiry ourselves, everywhere.
    exp = claims.get("exp")
    if not isinstance(exp, int | float) or exp <= time.time():
        raise Unauthenticated("ID token expired")
    uid = claims.get("uid") or claims.get("sub")
    if not isinstance(uid, str) or not uid:
        raise Unauthenticated("ID token has no uid")
    try:
        # the uid becomes part of Redis keys and Firestore paths: same rule as elsewhere
        return validate_user_id(uid)
    except InvalidArgument:
        raise Unauthenticated("ID token's uid is not acceptable") from None


def _dev_uid(headers: HeaderMap) -> str:
    uid = headers.get("X-User-Id", "").strip() or DEV_USER_ID
    try:
        return validate_user_id(uid)
    except InvalidArgument as exc:
        raise Unauthenticated(f"X-User-Id: {exc.message}") from None


def _app() -> Any:
    from shared.firebase_app import get_app

    return get_app()


def reset_auth() -> None:
    """For tests: drop the firebase_admin default app, so a changed project is picked up."""
    from shared.firebase_app import reset_app

    reset_app()
