"""Real Firebase ID tokens without Google: an RS256 key and its self-signed certificate,
served from loopback the way Google serves its own, and the Auth API's answers
firebase-admin needs, so that firebase-admin's own verify path (the signature checked with
the certificate, fetched over HTTP and cached per its Cache-Control; the revocation check
through the Auth API) runs as in production. The emulator's unsigned tokens skip all of it.

``GoogleStandIn`` serves, on 127.0.0.1:

- ``GET /certs``: ``{kid: certificate PEM}`` with ``Cache-Control: public, max-age=...``
  (Google's securetoken endpoint's shape);
- ``POST /token``: an OAuth2 access token for the service account (firebase-admin's Auth API
  calls are authorised with one);
- ``POST /v1/projects/<p>/accounts:lookup``: the user (``get_user``), with ``validSince``
  (revocation) and ``disabled`` settable per uid.

``point_firebase_admin(app_name)`` makes firebase-admin use it: the certificate URL and the
Auth API's base URL are firebase-admin's module constants, patched in this process only.
Nothing in the product knows about it.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

PROJECT = "demo-chat-memory"


class GoogleStandIn:
    def __init__(self, project: str = PROJECT, *, max_age_s: int = 3600) -> None:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import rsa
        from cryptography.x509.oid import NameOID

        self.project = project
        self.max_age_s = max_age_s
        self.kid = uuid.uuid4().hex
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.key_pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode()
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "securetoken.system.gserviceaccount.com")])
        now = time.time()
        import datetime as dt

        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(dt.datetime.fromtimestamp(now - 3600, dt.UTC))
            .not_valid_after(dt.datetime.fromtimestamp(now + 86400, dt.UTC))
            .sign(key, hashes.SHA256())
        )
        self.cert_pem = cert.public_bytes(serialization.Encoding.PEM).decode()
        self.users: dict[str, dict[str, Any]] = {}  # uid -> {"validSince": s, "disabled": b}
        self.hits: dict[str, int] = {"certs": 0, "token": 0, "lookup": 0}
        self._server: ThreadingHTTPServer | None = None

    # -- serving -------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> GoogleStandIn:
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _send(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                if self.path == "/certs":
                    stand_in.hits["certs"] += 1
                    self._send(
                        200,
                        {stand_in.kid: stand_in.cert_pem},
                        {"Cache-Control": f"public, max-age={stand_in.max_age_s}, must-revalidate, no-transform"},
                    )
                else:
                    self._send(404, {})

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                if self.path == "/token":
                    stand_in.hits["token"] += 1
                    self._send(200, {"access_token": "stand-in", "expires_in": 3600, "token_type": "Bearer"})
                elif self.path.endswith("/accounts:lookup"):
                    stand_in.hits["lookup"] += 1
                    body = json.loads(raw or b"{}")
                    users = []
                    for uid in body.get("localId", []):
                        u = stand_in.users.get(uid, {})
                        users.append(
                            {
                                "localId": uid,
                                "validSince": str(int(u.get("validSince", 0))),
                                "disabled": bool(u.get("disabled", False)),
                            }
                        )
                    self._send(200, {"kind": "identitytoolkit#GetAccountInfoResponse", "users": users})
                else:
                    self._send(404, {})

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    # -- tokens ----------------------------------------------------------------------

    def token(
        self, uid: str, *, iat: float | None = None, ttl_s: int = 3600, claims: dict[str, Any] | None = None
    ) -> str:
        """An ID token as Firebase Auth signs it (RS256, kid, iss/aud of the project)."""
        from google.auth import crypt
        from google.auth import jwt as gjwt

        now = int(time.time() if iat is None else iat)
        payload = {
            "iss": f"https://securetoken.google.com/{self.project}",
            "aud": self.project,
            "auth_time": now,
            "user_id": uid,
            "sub": uid,
            "iat": now,
            "exp": now + ttl_s,
            "firebase": {"identities": {}, "sign_in_provider": "custom"},
            **(claims or {}),
        }
        signer = crypt.RSASigner.from_string(self.key_pem, key_id=self.kid)
        return gjwt.encode(signer, payload).decode()

    def google_id_token(
        self,
        email: str,
        audience: str,
        *,
        ttl_s: int = 3600,
        iss: str = "https://accounts.google.com",
        claims: dict[str, Any] | None = None,
    ) -> str:
        """A service account's ID token as Google signs it (the metadata server's, or IAM
        Credentials' generateIdToken): RS256 with this stand-in's key, iss accounts.google.com,
        the audience asked for, the account's email, verified. ``/certs`` serves its
        certificate in the shape of Google's oauth2/v1/certs."""
        from google.auth import crypt
        from google.auth import jwt as gjwt

        now = int(time.time())
        payload = {
            "iss": iss,
            "aud": audience,
            "azp": "1234567890",
            "sub": "1234567890",
            "email": email,
            "email_verified": True,
            "iat": now,
            "exp": now + ttl_s,
            **(claims or {}),
        }
        signer = crypt.RSASigner.from_string(self.key_pem, key_id=self.kid)
        return gjwt.encode(signer, payload).decode()

    def service_account(self) -> dict[str, str]:
        """A service-account key whose OAuth2 token endpoint is this stand-in."""
        return {
            "type": "service_account",
            "project_id": self.project,
            "private_key_id": self.kid,
            "private_key": self.key_pem,
            "client_email": f"bench@{self.project}.iam.gserviceaccount.com",
            "client_id": "1",
            "token_uri": f"{self.base_url}/token",
        }

    def revoke(self, uid: str) -> None:
        """As revoke_refresh_tokens: tokens issued before now are refused."""
        self.users.setdefault(uid, {})["validSince"] = int(time.time()) + 1

    def disable(self, uid: str) -> None:
        self.users.setdefault(uid, {})["disabled"] = True


def point_firebase_admin(base_url: str, service_account: dict[str, str], project: str = PROJECT) -> Any:
    """Make this process's firebase-admin trust the stand-in's certificate and ask its Auth
    API, and create the default app with the stand-in's service account. Returns the app."""
    import firebase_admin
    from firebase_admin import _token_gen, _user_mgt, credentials

    _token_gen.ID_TOKEN_CERT_URI = f"{base_url}/certs"
    _user_mgt.UserManager.ID_TOOLKIT_URL = f"{base_url}/v1"
    try:
        firebase_admin.delete_app(firebase_admin.get_app())
    except ValueError:
        pass
    return firebase_admin.initialize_app(credentials.Certificate(service_account), {"projectId": project})
