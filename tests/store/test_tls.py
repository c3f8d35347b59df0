"""``rediss://`` is TLS (issue 24, item 4), against a TLS redis-server this test starts
(Debian's redis-server: --tls-port), with a CA of its own as Memorystore's in-transit
encryption has: the layer reaches it only over TLS, verifies its certificate against the
configured CA, honours ``?ssl_cert_reqs=none``, and refuses at start what it cannot honour."""

from __future__ import annotations

import datetime as dt
import ipaddress
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from pydantic import ValidationError

from shared.errors import StoreError
from shared.settings import Settings
from tests.harness import RedisServer, free_port
from tests.store.conftest import make_manager


def _cert(subject: str, issuer_key, issuer: x509.Name | None, key, *, ca: bool) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    now = dt.datetime.now(dt.UTC)
    b = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer or name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if not ca:
        b = b.add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
    return b.sign(issuer_key, hashes.SHA256())


def _write(path: Path, cert: x509.Certificate | None = None, key=None) -> Path:
    if cert is not None:
        path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    else:
        pem = serialization.Encoding.PEM
        path.write_bytes(key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    return path


@pytest.fixture(scope="module")
def tls(tmp_path_factory):
    d = tmp_path_factory.mktemp("tls")
    ca_key, key, other_key = (ec.generate_private_key(ec.SECP256R1()) for _ in range(3))
    ca = _cert("test CA", ca_key, None, ca_key, ca=True)
    server = _cert("127.0.0.1", ca_key, ca.subject, key, ca=False)
    other_ca = _cert("another CA", other_key, None, other_key, ca=True)
    files = {
        "ca": _write(d / "ca.pem", ca),
        "other_ca": _write(d / "other-ca.pem", other_ca),
        "cert": _write(d / "server.pem", server),
        "key": _write(d / "server.key", key=key),
    }
    port = free_port()
    srv = RedisServer(
        data_dir=d / "redis",
        extra_args=[
            "--tls-port", str(port), "--tls-cert-file", str(files["cert"]), "--tls-key-file", str(files["key"]),
            "--tls-ca-cert-file", str(files["ca"]), "--tls-auth-clients", "no",
        ],
    ).start()  # fmt: skip
    yield srv, port, files
    srv.cleanup()


def _session_roundtrip(url: str, uid: str, **settings) -> str:
    m = make_manager(url, firestore=False, **settings)
    sid = m.create_session({}, user_id=uid).session_id
    assert m.add_message(sid, "user", "over tls", user_id=uid).storage == "redis"
    return m.get_context_for_llm(sid, user_id=uid).storage


def test_rediss_speaks_tls_and_checks_the_servers_certificate_against_the_ca(tls, uid):
    srv, port, files = tls
    assert _session_roundtrip(f"rediss://127.0.0.1:{port}/0", uid, redis_tls_ca_path=str(files["ca"])) == "redis"


def test_rediss_refuses_a_server_its_ca_did_not_sign(tls, uid):
    srv, port, files = tls
    m = make_manager(f"rediss://127.0.0.1:{port}/0", firestore=False, redis_tls_ca_path=str(files["other_ca"]))
    with pytest.raises(StoreError):
        m.redis.claim_session_slot(uid, "a" * 32, 1.0)  # any command: the handshake fails


def test_rediss_to_a_plaintext_port_never_sends_in_plaintext(tls, uid):
    srv, port, files = tls
    m = make_manager(f"rediss://127.0.0.1:{srv.port}/0", firestore=False, redis_tls_ca_path=str(files["ca"]))
    with pytest.raises(StoreError):
        m.redis.claim_session_slot(uid, "a" * 32, 1.0)
    assert srv.is_up()  # the plaintext port is there: it was TLS that failed, as it must


def test_rediss_with_ssl_cert_reqs_none_works_as_redis_py_documents(tls, uid):
    srv, port, files = tls
    assert _session_roundtrip(f"rediss://127.0.0.1:{port}/0?ssl_cert_reqs=none", uid) == "redis"


@pytest.mark.parametrize(
    "url",
    ["redis://127.0.0.1:6379/0?ssl_cert_reqs=none", "redis://127.0.0.1:6379/0?ssl=true", "rediss://h:1/0?nonsense=1"],
)
def test_an_option_the_url_cannot_have_is_refused_at_start(url):
    with pytest.raises(ValidationError, match="REDIS_URL"):
        Settings(redis_url=url)
