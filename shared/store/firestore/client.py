"""How the Firestore client is built (the instance's one client: ``shared.instance``,
imported and created only when first needed).

A context read served from Redis never imports google.cloud.firestore or
firebase_admin (they cost hundreds of milliseconds of cold start).
Against the emulator, firebase_admin.firestore.client() would still ask for
Application Default Credentials, so the emulator gets an anonymous client; this is
the one place that choice is made.
"""

from __future__ import annotations

import os
from typing import Any

from shared.settings import get_settings


def project_id(settings: Any = None) -> str:
    return (settings or get_settings()).gcp_project or "demo-chat-memory"


def build(settings: Any) -> Any:
    from google.cloud import firestore

    if os.environ.get("FIRESTORE_EMULATOR_HOST"):
        from google.auth.credentials import AnonymousCredentials

        client = firestore.Client(project=project_id(settings), credentials=AnonymousCredentials())
    else:
        from firebase_admin import firestore as admin_firestore

        from shared.firebase_app import get_app

        client = admin_firestore.client(app=get_app())
    return bound_rpc_deadlines(client, settings.firestore_timeout_s)


def bound_rpc_deadlines(client: Any, seconds: float) -> Any:
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
    transport = client._firestore_api._transport
    for raw in list(transport._wrapped_methods):
        transport._wrapped_methods[raw] = gapic_v1.method.wrap_method(raw, default_retry=retry, default_timeout=seconds)
    return client
