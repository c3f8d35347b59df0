"""Who is calling: a Firebase ID token verified with firebase-admin, a Google service
account's ID token (a backend on Cloud Run or Agent Engine: its email in
BACKEND_SERVICE_ACCOUNTS, its audience one of BACKEND_TOKEN_AUDIENCES), or (local development
only, ``AUTH_DISABLED=true``) a uid taken on trust from ``X-User-Id``.

firebase_admin is imported on the first verification, not at import: discovery of the
functions at deploy time and the public ``health`` function never pay for it. Under the
Auth emulator (``FIREBASE_AUTH_EMULATOR_HOST`` set) firebase-admin accepts the emulator's
unsigned tokens by itself.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from shared.core.models import validate_user_id
from shared.errors import InvalidArgument, Unauthenticated, Unavailable
from shared.logs import get_logger
from shared.settings import Settings, get_settings

if TYPE_CHECKING:
    from werkzeug.datastructures import Headers

    HeaderMap = Mapping[str, str] | Headers

DEV_USER_ID = "dev-user"
# Firebase ID tokens are JWTs of about 1 kB; anything far larger is not one.
_MAX_TOKEN_CHARS = 8192
_JWT_DOTS = 2  # header.payload.signature

log = get_logger("auth")


# Why a deployment refuses to serve: a reason word (what health says) -> the log's text.
_OPEN_DOORS = {
    "auth_disabled": "AUTH_DISABLED=true would let anyone act as any uid",
    "auth_emulator": "FIREBASE_AUTH_EMULATOR_HOST makes firebase-admin accept unsigned tokens",
    "firestore_emulator": "FIRESTORE_EMULATOR_HOST would send the data to an unauthenticated emulator",
}


def refusal_reason(settings: Settings | None = None) -> str | None:
    """Why this instance must not serve, or None. Emulator-only switches are fine under the
    emulator, the tests, the bench and a shell; never in a deployed function."""
    s = settings or get_settings()
    if not s.deployed:
        return None
    if s.auth_disabled:
        return "auth_disabled"
    if s.firebase_auth_emulator_host:
        return "auth_emulator"
    if s.firestore_emulator_host:
        return "firestore_emulator"
    return None


def log_if_refusing() -> None:
    """At start-up: say loudly, once, why every request of this instance will get 503."""
    reason = refusal_reason()
    if reason is not None:
        log.error(
            f"refusing to serve: {_OPEN_DOORS[reason]} (deployed function); remove it from the "
            "function's environment and its .env files, then redeploy",
            extra={"reason": reason},
        )


# The custom claim of a trusted backend identity: it may write assistant and system turns
# and answer metadata (scripts/grant_role.py backend sets it). End users may write user turns only.
BACKEND_CLAIM = "chat_backend"
# The custom claim of an admin: the answer-quality reports (scripts/grant_role.py sets it).
ADMIN_CLAIM = "admin"


# Google's own ID tokens' issuers (a service account's: shared/edge/service_accounts.py).
GOOGLE_ISSUERS = frozenset({"https://accounts.google.com", "accounts.google.com"})


@dataclass(frozen=True, slots=True)
class Caller:
    uid: str
    backend: bool  # holds BACKEND_CLAIM (everyone does with AUTH_DISABLED: local development)
    admin: bool = False  # holds ADMIN_CLAIM (likewise)
    service_account: str | None = None  # a Google service account's email: a backend that acts only for a user


def authenticate(headers: HeaderMap) -> Caller:
    """The verified caller, or Unauthenticated."""
    if get_settings().auth_disabled:
        if headers.get("Authorization"):
            # A token that is sent is verified even here (a garbage one is 401, never a
            # silent dev-user); its uid is the caller, with every role, as AUTH_DISABLED gives.
            return Caller(verify_caller(bearer_token(headers)).uid, backend=True, admin=True)
        return Caller(_dev_uid(headers), backend=True, admin=True)
    return verify_caller(bearer_token(headers))


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


def jwt_part(token: str, index: int) -> dict[str, Any] | None:
    """A JWT's header (0) or payload (1) as JSON, unverified: what to ask, never who is calling."""
    import base64
    import binascii
    import json

    part = token.split(".")[index]
    try:
        decoded = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    except (ValueError, binascii.Error):
        return None
    return decoded if isinstance(decoded, dict) else None


def _jwt_header(token: str) -> bool:
    """Whether the token's first part is a JWT header (base64url JSON naming an ``alg``):
    text that is no JWT at all is refused here, without asking firebase-admin."""
    head = jwt_part(token, 0)
    return head is not None and isinstance(head.get("alg"), str)


def verify_id_token(token: str) -> str:
    return verify_caller(token).uid


def verify_caller(token: str) -> Caller:
    settings = get_settings()
    # Which verifier: the issuer of the claims verified before (the hot path decodes nothing),
    # or, on a miss, the one the token claims.
    hit = _claims.get(token)
    issuer = hit[1].get("iss") if hit is not None else (jwt_part(token, 1) or {}).get("iss")
    if issuer in GOOGLE_ISSUERS:
        from shared.edge import service_accounts  # imported by the first such token only

        return service_accounts.verify(token, settings)
    skew = settings.token_clock_skew_s
    claims = _verified_claims(token, skew)
    # firebase-admin checks nothing but the shape of a token while
    # FIREBASE_AUTH_EMULATOR_HOST is set: check the expiry ourselves, everywhere, with the
    # same allowance firebase-admin is given.
    exp = claims.get("exp")
    if not isinstance(exp, int | float) or exp + skew <= time.time():
        raise Unauthenticated("ID token expired")
    uid = claims.get("uid") or claims.get("sub")
    if not isinstance(uid, str) or not uid:
        raise Unauthenticated("ID token has no uid")
    try:
        # the uid becomes part of Redis keys and Firestore paths: same rule as elsewhere
        uid = validate_user_id(uid)
    except InvalidArgument:
        raise Unauthenticated("ID token's uid is not acceptable") from None
    _check_account(token, uid, claims.get("iat"), skew, settings.token_check_cache_s)
    return Caller(uid, backend=claims.get(BACKEND_CLAIM) is True, admin=claims.get(ADMIN_CLAIM) is True)


def _verified_claims(token: str, skew: int) -> dict[str, Any]:
    """The token's claims, its signature verified by firebase-admin once per instance.

    A client sends the same ID token with every request for up to an hour; verifying it
    anew each time (firebase-admin: a cache-controlled HTTP lookup of Google's
    certificates, parsing them, an RS256 check) is most of the edge's CPU. The claims of a
    token that passed are kept, keyed by the token's exact text, until the token expires:
    the same bytes carry the same signature. What is re-checked on every request all the
    same: the expiry (here and in verify_caller) and, through _check_account, revocation
    and disabled accounts. A token that failed is never kept. A signing key Google
    withdraws keeps the tokens it signed accepted here at most until they expire (an hour);
    firebase-admin's own certificate cache keeps them accepted as long (Google's
    Cache-Control max-age is hours)."""
    now = time.time()
    hit = _claims.get(token)
    if hit is not None and hit[0] + skew > now:
        return hit[1]
    if not _jwt_header(token):  # only on a miss: a token the cache knows is a JWT
        raise Unauthenticated("malformed ID token")
    claims = _verify(token, check_revoked=False, skew=skew)
    exp = claims.get("exp")
    if isinstance(exp, int | float) and exp + skew > now:
        _claims.put(token, (float(exp), claims), now)
    return claims


class _ClaimsCache:
    """token -> (exp, claims); bounded, thread-safe (dict operations under the GIL, the
    eviction under a lock)."""

    _MAX_ENTRIES = 10000

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[str, tuple[float, dict[str, Any]]] = {}

    def get(self, token: str) -> tuple[float, dict[str, Any]] | None:
        return self._entries.get(token)

    def put(self, token: str, entry: tuple[float, dict[str, Any]], now: float) -> None:
        with self._lock:
            if len(self._entries) >= self._MAX_ENTRIES:
                self._entries = {k: v for k, v in self._entries.items() if v[0] > now}
                if len(self._entries) >= self._MAX_ENTRIES:
                    self._entries.clear()
            self._entries[token] = entry

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


_claims = _ClaimsCache()


def _check_account(token: str, uid: str, iat: object, skew: int, ttl: float) -> None:
    """Refuse a revoked token or a disabled account. Asking costs an Auth API call
    (get_user), so the answer for one (uid, iat) is reused for ``ttl`` seconds."""
    key = (uid, iat if isinstance(iat, int | float) else None)
    refusal = _account_checks.get(key)
    if refusal is _UNKNOWN:
        try:
            _verify(token, check_revoked=True, skew=skew)
            refusal = None
        except Unauthenticated as exc:
            refusal = exc.message
        _account_checks.put(key, refusal, ttl)
    if refusal is not None:
        raise Unauthenticated(str(refusal))


def _verify(token: str, *, check_revoked: bool, skew: int) -> dict[str, Any]:
    from firebase_admin import auth, exceptions
    from google.auth import exceptions as google_auth_exceptions

    try:
        claims: dict[str, Any] = auth.verify_id_token(
            token, app=_app(), check_revoked=check_revoked, clock_skew_seconds=skew
        )
        return claims
    except auth.ExpiredIdTokenError:
        raise Unauthenticated("ID token expired") from None
    except auth.RevokedIdTokenError:
        raise Unauthenticated("ID token revoked") from None
    except auth.UserDisabledError:
        raise Unauthenticated("user disabled") from None
    except auth.UserNotFoundError:
        raise Unauthenticated("user not found") from None
    except auth.CertificateFetchError as exc:
        # Google's public keys could not be fetched: our problem, not the caller's.
        log.error("token verification unavailable", extra={"error": type(exc).__name__})
        raise Unavailable("cannot verify tokens right now") from None
    except (auth.InvalidIdTokenError, ValueError):
        raise Unauthenticated("invalid ID token") from None
    except google_auth_exceptions.DefaultCredentialsError as exc:
        # No credentials to build firebase-admin's Auth client: a deployment's problem.
        log.error("token verification unavailable: no credentials", extra={"error": type(exc).__name__})
        raise Unavailable("cannot verify tokens right now") from None
    except exceptions.FirebaseError as exc:
        # The Auth API (get_user) failed: the caller may well be fine; retry later.
        log.error("account check unavailable", extra={"error": type(exc).__name__})
        raise Unavailable("cannot verify tokens right now") from None


_UNKNOWN = object()


class _AccountChecks:
    """(uid, iat) -> the refusal (or None) and until when it holds; bounded, thread-safe."""

    _MAX_ENTRIES = 10000

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[tuple[str, object], tuple[float, str | None]] = {}

    def get(self, key: tuple[str, object]) -> object:
        with self._lock:
            hit = self._entries.get(key)
        if hit is None or hit[0] <= time.monotonic():
            return _UNKNOWN
        return hit[1]

    def put(self, key: tuple[str, object], refusal: str | None, ttl: float) -> None:
        if ttl <= 0:
            return
        now = time.monotonic()
        with self._lock:
            if len(self._entries) >= self._MAX_ENTRIES:
                self._entries = {k: v for k, v in self._entries.items() if v[0] > now}
                if len(self._entries) >= self._MAX_ENTRIES:
                    self._entries.clear()
            self._entries[key] = (now + ttl, refusal)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


_account_checks = _AccountChecks()


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
    _account_checks.clear()
    _claims.clear()
    from shared.edge import service_accounts

    service_accounts.reset()
