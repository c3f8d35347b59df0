"""chat-memory's Cloud Functions: decorated entry points only.

Each HTTP function is deployed as its own service and is one line: ``handle`` (the HTTP
edge in ``shared/edge/http.py``) around one handler of ``shared/edge/api.py``. The trigger and the
schedule convert their event and call the core. Nothing here does I/O at import: the
Firebase CLI imports this file to discover the functions.

Deploy-time options are read from the environment when the CLI imports this file
(``functions/.env`` or the shell): MIN_INSTANCES (default 0) and, when Redis sits on a
private network, VPC_CONNECTOR.
"""

from __future__ import annotations

import os
from typing import Any

from firebase_functions import https_fn, options, scheduler_fn

from shared.edge import api, auth
from shared.edge.http import handle
from shared.logs import configure_logging, get_logger

configure_logging()
log = get_logger("functions")
# A deployed function with an emulator-only switch set serves nothing (503); say why at start.
auth.log_if_refusing()

# Read when the CLI imports this file at deploy (from the shell or functions/.env).
MIN_INSTANCES = int(os.environ.get("MIN_INSTANCES", "0"))
# deploy.sh --region; Hosting's rewrites in firebase.json name the region too.
options.set_global_options(region=os.environ.get("FUNCTIONS_REGION") or "us-central1")
# A Serverless VPC Access connector reaches Memorystore's private IP; read at deploy.
_VPC: dict[str, Any] = (
    {
        "vpc_connector": os.environ["VPC_CONNECTOR"],
        "vpc_connector_egress_settings": options.VpcEgressSetting.PRIVATE_RANGES_ONLY,
    }
    if os.environ.get("VPC_CONNECTOR")
    else {}
)
# REDIS_URL from Secret Manager: deploy.sh sets REDIS_URL_SECRET=1 (in the bundle's
# .env.<project>, read by the CLI at discovery) once it has stored the secret. Unset under
# the emulator, which takes REDIS_URL from the environment instead.
_SECRETS: dict[str, Any] = {"secrets": ["REDIS_URL"]} if os.environ.get("REDIS_URL_SECRET") == "1" else {}
# Handlers are thread-safe (pooled clients), so one instance serves many requests at once;
# concurrency above 1 needs a whole CPU.
_HTTP: dict[str, Any] = {
    "memory": options.MemoryOption.MB_512,
    "cpu": 1,
    "concurrency": 80,
    "timeout_sec": 30,
    "min_instances": MIN_INSTANCES,
    **_VPC,
    **_SECRETS,
}


@https_fn.on_request(**_HTTP)
def create_session(req: https_fn.Request) -> https_fn.Response:
    return handle(req, api.create_session, method="POST", acts_for=True)


@https_fn.on_request(**_HTTP)
def append_message(req: https_fn.Request) -> https_fn.Response:
    return handle(req, api.append_message, method="POST", acts_for=True)


@https_fn.on_request(**_HTTP)
def get_context(req: https_fn.Request) -> https_fn.Response:
    return handle(req, api.get_context, method="GET", acts_for=True)


@https_fn.on_request(**_HTTP)
def get_history(req: https_fn.Request) -> https_fn.Response:
    return handle(req, api.get_history, method="GET", acts_for=True)


@https_fn.on_request(**{**_HTTP, "timeout_sec": 60})
def end_session(req: https_fn.Request) -> https_fn.Response:
    # Ending writes the summary and analytics to Firestore in one batch: allow more time.
    return handle(req, api.end_session, method="POST", acts_for=True)


@https_fn.on_request(**{**_HTTP, "timeout_sec": 60})
def chat(req: https_fn.Request) -> https_fn.Response:
    # The responder runs here (retrieval in memory, or Gemini with its own timeout).
    return handle(req, api.chat, method="POST", acts_for=True)


@https_fn.on_request(**_HTTP)
def admin_report(req: https_fn.Request) -> https_fn.Response:
    return handle(req, api.admin_report, method="GET")


@https_fn.on_request(**_HTTP)
def admin_low_confidence(req: https_fn.Request) -> https_fn.Response:
    return handle(req, api.admin_low_confidence, method="GET")


@https_fn.on_request(**_HTTP)
def admin_session(req: https_fn.Request) -> https_fn.Response:
    return handle(req, api.admin_session, method="GET")


@https_fn.on_request(**{**_HTTP, "timeout_sec": 120})
def export_my_data(req: https_fn.Request) -> https_fn.Response:
    # A page of a user's sessions with their messages and analytics: many reads.
    return handle(req, api.export_my_data, method="GET")


@https_fn.on_request(**_HTTP)
def delete_session(req: https_fn.Request) -> https_fn.Response:
    return handle(req, api.delete_session, method="POST", acts_for=True)


@https_fn.on_request(**{**_HTTP, "timeout_sec": 540})
def delete_my_data(req: https_fn.Request) -> https_fn.Response:
    # Every session of the user; resumable: a call that stops is finished by the next.
    return handle(req, api.delete_my_data, method="POST")


@https_fn.on_request(**{**_HTTP, "timeout_sec": 540})
def admin_erase_user(req: https_fn.Request) -> https_fn.Response:
    return handle(req, api.admin_erase_user, method="POST")


@https_fn.on_request(**_HTTP)
def list_sessions(req: https_fn.Request) -> https_fn.Response:
    return handle(req, api.list_sessions, method="GET", acts_for=True)


@https_fn.on_request(**_HTTP)
def list_memories(req: https_fn.Request) -> https_fn.Response:
    return handle(req, api.list_memories, method="GET", acts_for=True)


@https_fn.on_request(**_HTTP)
def search_memories(req: https_fn.Request) -> https_fn.Response:
    # Ranks the caller's memories (at most MEMORY_MAX_SESSIONS reads) in memory.
    return handle(req, api.search_memories, method="GET", acts_for=True)


@https_fn.on_request(**_HTTP)
def delete_memory(req: https_fn.Request) -> https_fn.Response:
    return handle(req, api.delete_memory, method="POST")


@https_fn.on_request(**_HTTP)
def get_user_stats(req: https_fn.Request) -> https_fn.Response:
    return handle(req, api.get_user_stats, method="GET")


@https_fn.on_request(**_HTTP)
def get_state(req: https_fn.Request) -> https_fn.Response:
    return handle(req, api.get_state, method="GET", acts_for=True)


@https_fn.on_request(**_HTTP)
def update_state(req: https_fn.Request) -> https_fn.Response:
    return handle(req, api.update_state, method="POST", acts_for=True)


@https_fn.on_request(**_HTTP)
def mcp(req: https_fn.Request) -> https_fn.Response:
    # A remote MCP server (Streamable HTTP, stateless, JSON answers): shared/edge/mcp.py.
    from shared.edge import mcp as mcp_server

    return handle(req, mcp_server.mcp, method="POST", acts_for="tools")


@https_fn.on_request(**_HTTP)
def health(req: https_fn.Request) -> https_fn.Response:
    return handle(req, api.health, method="GET", public=True)


@scheduler_fn.on_schedule(
    schedule="every 10 minutes", timeout_sec=300, memory=options.MemoryOption.MB_512, **_VPC, **_SECRETS
)
def sweep_idle_sessions(event: scheduler_fn.ScheduledEvent) -> None:
    from shared.features import sweep
    from shared.instance import get_instance

    inst = get_instance()
    result = sweep.sweep_idle_sessions(inst.manager(), inst.scans(), inst.stats())
    log.info("sweep done", extra={"function": "sweep_idle_sessions", **result})


# Every function runs as its own service and FUNCTION_TARGET names the one an instance
# serves (unset when the CLI discovers them all). firestore_fn imports
# google.cloud.firestore (~100 ms of cold start), so only the trigger's instances load it.
if os.environ.get("FUNCTION_TARGET") in (None, "", "on_session_ended"):
    from firebase_functions import firestore_fn

    @firestore_fn.on_document_written(document="sessions/{session_id}", timeout_sec=120, **_VPC, **_SECRETS)
    def on_session_ended(event: firestore_fn.Event[firestore_fn.Change[firestore_fn.DocumentSnapshot | None]]) -> None:
        # Every write of a session document arrives here (the core acts only on the turn
        # to "ended"). Delivery is at least once: the core dedupes on the event id.
        # firebase-functions 0.6.0 has no retry option for event triggers, so a failed
        # run is not redelivered; the failure is logged with the event id.
        from shared.features.triggers import handle_session_written
        from shared.instance import get_instance

        before, after = event.data.before, event.data.after
        try:
            handle_session_written(
                event.params["session_id"],
                before.to_dict() if before is not None and before.exists else None,
                after.to_dict() if after is not None and after.exists else None,
                event.id,
                stats=get_instance().stats(),
            )
        except Exception:
            log.exception("session trigger failed", extra={"event_id": event.id})
            raise
