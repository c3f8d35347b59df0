"""A Google service account's ID token as a backend identity (a Cloud Run service, a Cloud
Function or Agent Engine, from its metadata server): Google-signed, Google's issuer, a verified
email listed in BACKEND_SERVICE_ACCOUNTS, an audience in BACKEND_TOKEN_AUDIENCES. It acts only
for a named user (``shared.edge.acting``), never for itself, never as an admin. Verified once
per token per instance, in ``auth``'s cache of verified claims, as Firebase ID tokens are.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from shared.edge import auth
from shared.errors import Unauthenticated, Unavailable
from shared.settings import Settings

# Where Google publishes the keys that sign its ID tokens (a module constant: the tests point
# it at a stand-in, in their own process).
GOOGLE_CERTS_URL = "https://www.googleapis.com/oauth2/v1/certs"


def verify(token: str, settings: Settings) -> auth.Caller:
    """A Google-signed ID token of a service account in BACKEND_SERVICE_ACCOUNTS, for one of
    BACKEND_TOKEN_AUDIENCES: a backend identity that acts for a named user (never for itself,
    never an admin). Verified once per token per instance (its claims kept until it expires)."""
    allowed, audiences = settings.backend_service_account_set, settings.backend_token_audience_list
    if not allowed or not audiences:
        raise Unauthenticated("service-account tokens are not accepted by this deployment")
    skew = settings.token_clock_skew_s
    now = time.time()
    hit = auth._claims.get(token)
    if hit is not None and hit[0] + skew > now:
        claims = hit[1]
    else:
        claims = _google_claims(token, audiences, skew)
        exp = claims.get("exp")
        if isinstance(exp, int | float) and exp + skew > now:
            auth._claims.put(token, (float(exp), claims), now)
    exp = claims.get("exp")
    if not isinstance(exp, int | float) or exp + skew <= now:
        raise Unauthenticated("ID token expired")
    email = claims.get("email")
    verified = claims.get("email_verified") is True and isinstance(email, str)
    if claims.get("iss") not in auth.GOOGLE_ISSUERS or not verified or not isinstance(email, str):
        raise Unauthenticated("ID token is not a service account's")
    if email.lower() not in allowed:
        raise Unauthenticated("this service account is not a backend of this deployment")
    return auth.Caller(service_account_uid(email), backend=True, admin=False, service_account=email.lower())


def service_account_uid(email: str) -> str:
    """The uid a service account's own actions are logged under (it owns no session)."""
    import hashlib

    return "sa-" + hashlib.sha256(email.lower().encode()).hexdigest()[:24]


def _google_claims(token: str, audiences: list[str], skew: int) -> dict[str, Any]:
    from google.auth import exceptions as google_auth_exceptions
    from google.auth import jwt

    try:
        certs = _google_certs.get(_unverified_kid(token))
        claims: dict[str, Any] = jwt.decode(token, certs=certs, audience=audiences, clock_skew_in_seconds=skew)
        return claims
    except google_auth_exceptions.TransportError as exc:
        auth.log.error("service-account token verification unavailable", extra={"error": type(exc).__name__})
        raise Unavailable("cannot verify tokens right now") from None
    except (ValueError, google_auth_exceptions.GoogleAuthError) as exc:
        raise Unauthenticated(f"invalid ID token ({_why(exc)})") from None


def _why(exc: Exception) -> str:
    text = str(exc).lower()
    if "audience" in text:
        return "audience"
    if "expired" in text or "too early" in text:
        return "time"
    return "signature"


def _unverified_kid(token: str) -> str | None:
    kid = (auth.jwt_part(token, 0) or {}).get("kid")
    return kid if isinstance(kid, str) else None


class _GoogleCerts:
    """Google's ID-token certificates ({kid: PEM}), fetched from GOOGLE_CERTS_URL and kept for
    an hour; fetched again at most once a minute when a token names a kid they lack (Google
    rotates its keys): a flood of tokens with made-up kids costs one fetch a minute."""

    _KEEP_S = 3600.0
    _REFETCH_S = 60.0

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._certs: dict[str, str] = {}
        self._fetched = 0.0

    def get(self, kid: str | None) -> dict[str, str]:
        now = time.monotonic()
        with self._lock:
            stale = now - self._fetched > self._KEEP_S
            missing = kid is not None and kid not in self._certs and now - self._fetched > self._REFETCH_S
            if stale or missing or not self._certs:
                self._certs = self._fetch()
                self._fetched = now
            return dict(self._certs)

    @staticmethod
    def _fetch() -> dict[str, str]:
        import google.auth.transport.requests
        import requests
        from google.auth import exceptions as google_auth_exceptions

        request = google.auth.transport.requests.Request(session=requests.Session())
        response = request(GOOGLE_CERTS_URL, method="GET", timeout=5)
        if response.status != 200:  # noqa: PLR2004 - HTTP OK
            raise google_auth_exceptions.TransportError(f"certificates: HTTP {response.status}")
        import json

        got = json.loads(response.data)
        if not isinstance(got, dict):
            raise google_auth_exceptions.TransportError("certificates: not a JSON object")
        return {str(k): str(v) for k, v in got.items()}

    def clear(self) -> None:
        with self._lock:
            self._certs, self._fetched = {}, 0.0


_google_certs = _GoogleCerts()


def reset() -> None:
    """For tests (``auth.reset_auth``): fetch Google's certificates anew."""
    _google_certs.clear()
