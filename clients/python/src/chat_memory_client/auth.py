"""Token providers: callables giving a fresh bearer token, for ``token=``.

- ``FirebaseTokenProvider``: a Firebase user's ID token, from its refresh token (Google's
  securetoken endpoint, or the Auth emulator's), renewed five minutes before it expires.
- ``ServiceAccountTokenProvider``: a Google service account's ID token for an audience (a
  backend on Cloud Run or Agent Engine; the deployment lists the account in
  BACKEND_SERVICE_ACCOUNTS and the audience in BACKEND_TOKEN_AUDIENCES), from the metadata
  server or a key (google-auth: ``pip install ./clients/python[gcp]``).
"""

from __future__ import annotations

import threading
import time
from typing import Any

import httpx

from chat_memory_client.errors import TransportError, Unauthenticated

RENEW_BEFORE_S = 300


class FirebaseTokenProvider:
    def __init__(
        self, api_key: str, refresh_token: str, *, auth_host: str | None = None, timeout: float = 10.0
    ) -> None:
        base = f"http://{auth_host}/securetoken.googleapis.com" if auth_host else "https://securetoken.googleapis.com"
        self._url = f"{base}/v1/token"
        self._key = api_key
        self._refresh = refresh_token
        self._timeout = timeout
        self._lock = threading.Lock()
        self._token: str | None = None
        self._expires = 0.0
        self.uid: str | None = None

    def __call__(self) -> str:
        with self._lock:
            if self._token is None or time.time() > self._expires - RENEW_BEFORE_S:
                self._renew()
            assert self._token is not None
            return self._token

    def _renew(self) -> None:
        try:
            r = httpx.post(
                self._url,
                params={"key": self._key},
                data={"grant_type": "refresh_token", "refresh_token": self._refresh},
                timeout=self._timeout,
            )
        except httpx.TransportError as exc:
            raise TransportError(f"securetoken: {type(exc).__name__}: {exc}") from exc
        if r.status_code != 200:  # noqa: PLR2004 - HTTP OK
            raise Unauthenticated(r.status_code, "unauthenticated", f"the refresh token was refused: {r.text[:200]}")
        body: dict[str, Any] = r.json()
        self._token = str(body["id_token"])
        self._refresh = str(body.get("refresh_token") or self._refresh)
        self._expires = time.time() + float(body.get("expires_in") or 3600)
        self.uid = body.get("user_id")


class ServiceAccountTokenProvider:
    def __init__(self, audience: str) -> None:
        self.audience = audience
        self._lock = threading.Lock()
        self._token: str | None = None
        self._expires = 0.0

    def __call__(self) -> str:
        with self._lock:
            if self._token is None or time.time() > self._expires - RENEW_BEFORE_S:
                import google.auth.transport.requests
                from google.auth import jwt
                from google.oauth2 import id_token

                token = id_token.fetch_id_token(google.auth.transport.requests.Request(), self.audience)
                self._token = token
                self._expires = float(jwt.decode(token, verify=False).get("exp") or time.time() + 3600)
            return self._token
