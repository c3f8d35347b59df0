"""The Firestore client and the one wrapper every Firestore store goes through.

``build`` makes the instance's one client (``shared.instance``, imported and created only
when first needed): a context read served from Redis never imports google.cloud.firestore
or firebase_admin (they cost hundreds of milliseconds of cold start). Against the emulator,
firebase_admin.firestore.client() would still ask for Application Default Credentials, so
the emulator gets an anonymous client; this is the one place that choice is made.

``Firestore`` owns that client, the circuit breaker and the one error boundary
(``guard``): the session layer, the stats, the reports and the erasure stores each take
one, so one instance's Firestore has one breaker and one way to fail.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypeVar

from shared.errors import StoreError
from shared.settings import Settings, get_settings
from shared.store.breaker import CircuitBreaker

if TYPE_CHECKING:
    from google.cloud.firestore import Client, DocumentReference

log = logging.getLogger("chat_memory.firestore")

T = TypeVar("T")


def project_id(settings: Settings | None = None) -> str:
    return (settings or get_settings()).gcp_project or "demo-chat-memory"


def build(settings: Settings) -> Client:
    from google.cloud import firestore

    # The Google client reads FIRESTORE_EMULATOR_HOST itself to find the emulator; the
    # product reads the same variable through Settings to choose the credentials.
    if settings.firestore_emulator_host:
        from google.auth.credentials import AnonymousCredentials

        client = firestore.Client(project=project_id(settings), credentials=AnonymousCredentials())
    else:
        from firebase_admin import firestore as admin_firestore

        from shared.firebase_app import get_app

        client = admin_firestore.client(app=get_app())
    return bound_rpc_deadlines(client, settings.firestore_timeout_s)


def bound_rpc_deadlines(client: Client, seconds: float) -> Client:
    """Give every Firestore RPC a total deadline of ``seconds``, retries included.

    Transactions call BeginTransaction/Commit with the GAPIC defaults (retry on
    UNAVAILABLE for up to 60 s) and take no timeout argument: measured against a dead
    endpoint, one transaction took 52 s. A request-serving function must fall to the
    next layer (or answer 503) long before that, so the defaults are rebound here, once,
    where the client is built.
    """
    from google.api_core import exceptions as core_exc
    from google.api_core import gapic_v1
    from google.api_core.retry import Retry, if_exception_type

    retry = Retry(
        initial=0.05,
        maximum=0.5,
        multiplier=2,
        timeout=seconds,
        predicate=if_exception_type(
            core_exc.ServiceUnavailable, core_exc.DeadlineExceeded, core_exc.InternalServerError
        ),
    )
    transport: Any = client._firestore_api._transport  # the GAPIC defaults live only there
    for raw in list(transport._wrapped_methods):
        transport._wrapped_methods[raw] = gapic_v1.method.wrap_method(raw, default_retry=retry, default_timeout=seconds)
    return client


class Firestore:
    """One Firestore client (built on first use), its breaker and its error boundary."""

    def __init__(
        self,
        settings: Settings,
        client: Client | None = None,
        breaker: CircuitBreaker | None = None,
        *,
        connect: Callable[[], Client] | None = None,
    ) -> None:
        """``client``, or ``connect`` (the instance's shared client, built on first use),
        or neither: a client is built from ``settings`` on first use."""
        self.settings = settings
        self._client = client
        self._connect = connect
        # While Firestore is down an instance tries it at most once per cool-down, like Redis.
        self.breaker = breaker or CircuitBreaker(settings.firestore_breaker_cooldown_s)

    @property
    def configured(self) -> bool:
        return self.settings.firestore_enabled

    @property
    def timeout(self) -> float:
        return self.settings.firestore_timeout_s

    def db(self) -> Client:
        if self._client is None:
            if self._connect is not None:
                return self._connect()
            self._client = build(self.settings)
        return self._client

    def session_ref(self, sid: str) -> DocumentReference:
        return self.db().collection("sessions").document(sid)

    @contextmanager
    def guard(self, op: str, sid: str | None = None) -> Iterator[None]:
        """The one error boundary: Firestore away (or the breaker open) is a StoreError and
        counts against the breaker; a request Firestore refuses is a StoreError too, logged,
        but Firestore answered, so it is up."""
        if not self.configured:
            raise StoreError("firestore disabled", layer="firestore")
        breaker = self.breaker
        if not breaker.allow():
            raise StoreError("firestore circuit open", layer="firestore")
        try:
            yield
        except Exception as exc:
            if not _is_rejection(exc):
                if not isinstance(exc, _outage_errors()):
                    raise
                breaker.record_failure(exc)
                log.warning("firestore unavailable", extra={"op": op, "error": type(exc).__name__})
                raise StoreError(f"firestore {op}: {type(exc).__name__}", layer="firestore") from exc
            # Firestore answered: it is up. A request it refuses (or the client refuses to
            # send) is this request's defect, and must not close Firestore to everyone.
            if not isinstance(exc, ValueError | TypeError):
                breaker.record_success()
            log.error(
                "firestore refused a request",
                extra={"op": op, "session_id": sid, "error": type(exc).__name__, "detail": str(exc)[:300]},
            )
            raise StoreError(f"firestore {op}: {type(exc).__name__}", layer="firestore") from exc
        breaker.record_success()

    def kw(self) -> dict[str, Any]:
        """A read's deadline and retry, within the RPC deadline."""
        from google.api_core.retry import Retry

        t = self.timeout
        return {"timeout": t, "retry": Retry(initial=0.05, maximum=0.5, timeout=t)}

    def transactional(self, fn: Callable[..., T], *args: Any) -> T:
        from google.cloud import firestore

        tx = self.db().transaction(max_attempts=5)
        result: T = firestore.transactional(fn)(tx, *args)
        return result

    def read(self, op: str, collection: str, doc_id: str, sid: str | None = None) -> dict[str, Any] | None:
        """One document, read within the guard (None: there is none). The client is
        reached within it too: a disabled or open Firestore builds none."""
        with self.guard(op, sid):
            snap = self.db().collection(collection).document(doc_id).get(**self.kw())
        return snap.to_dict() if snap.exists else None

    def ping(self) -> dict[str, Any]:
        import time

        if not self.configured:
            return {"status": "disabled"}
        t0 = time.perf_counter()
        try:
            with self.guard("ping"):
                self.db().collection("_health").document("ping").get(**self.kw())
        except StoreError as exc:
            return {"status": "down", "error": str(exc), "breaker": self.breaker.state()}
        return {"status": "up", "latency_ms": round((time.perf_counter() - t0) * 1000, 2)}


def _outage_errors() -> tuple[type[BaseException], ...]:
    from google.api_core.exceptions import GoogleAPIError

    return (GoogleAPIError, OSError)


def _is_rejection(exc: BaseException) -> bool:
    """A request Firestore (or its client) refuses, as opposed to Firestore being away.

    Client-side ValueError/TypeError: a value the client cannot encode, or a transaction
    that gave up under contention on one document. A retry that timed out is judged by
    what it last met.
    """
    from google.api_core import exceptions as gx

    if isinstance(exc, gx.RetryError) and exc.cause is not None:
        return _is_rejection(exc.cause)
    if isinstance(exc, gx.TooManyRequests):
        return False
    return isinstance(exc, gx.BadRequest | gx.NotFound | gx.Conflict | ValueError | TypeError)
