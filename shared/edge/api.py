"""The HTTP contract's handlers: parsed input -> one call of the core -> the response shape.

Each handler takes a ``shared.edge.http.Call`` and returns ``(status, body)``; validation of
fields is the core's (``shared.core.models``), except what only exists at the edge (query
parameter ranges, unknown top-level fields). Every success body is a ``shared.edge.wire`` model,
checked against ``openapi.yaml`` by ``tests/unit/test_wire_contract.py``; the hot ones are
built by ``shared.edge.bodies`` (equal to the model's dump, tested), and ``shared.edge.wire`` is
imported by the handlers that use it: an instance serving get_context never defines its
twenty models.
"""

from __future__ import annotations

import json
import re
import threading
import time
from typing import TYPE_CHECKING, Any

from shared.core.models import Context, validate_session_id
from shared.edge import bodies, ratelimit
from shared.edge.auth import refusal_reason
from shared.edge.http import Call, Reply, Text
from shared.edge.params import int_param, only_fields
from shared.errors import Busy, InvalidArgument
from shared.logs import get_logger
from shared.settings import get_settings

if TYPE_CHECKING:
    from shared.core.manager import SessionManager


_log = get_logger("health")


def _manager() -> SessionManager:
    # Imported on first use: the module graph of the core stays out of discovery.
    from shared.instance import get_instance

    return get_instance().manager()


def create_session(call: Call) -> Reply:
    from shared.edge import wire

    only_fields(call.body, {"user_info", "memory"})
    ratelimit.enforce_session_creation(call.client_ip)
    info = _manager().create_session(call.body.get("user_info"), user_id=call.uid, memory=call.body.get("memory", True))
    return 201, wire.SessionCreated(
        session_id=info.session_id, user_id=info.user_id, created_at=info.created_at, storage=info.storage
    ).model_dump()


def append_message(call: Call) -> Reply:
    body = call.body
    only_fields(body, {"session_id", "role", "content", "metadata", "client_message_id", "item"})
    sid = validate_session_id(body.get("session_id"))
    res = _manager().add_message(
        sid,
        body.get("role"),
        body.get("content"),
        body.get("metadata"),
        client_message_id=body.get("client_message_id"),
        user_id=call.uid,
        backend=call.backend,
        item=body.get("item"),
    )
    return 201, bodies.appended(res)


def get_context(call: Call) -> Reply:
    sid = validate_session_id(call.args.get("session_id"))
    window = get_settings().message_window
    n = int_param(call.args, "max_messages", default=window, lo=1, hi=window)
    ctx: Context = _manager().get_context_for_llm(sid, n, user_id=call.uid)
    return 200, bodies.context(ctx)


def get_history(call: Call) -> Reply:
    from shared.edge import wire

    sid = validate_session_id(call.args.get("session_id"))
    limit = int_param(call.args, "limit", default=None, lo=1, hi=get_settings().history_max_limit)
    hist = _manager().get_history(sid, limit, user_id=call.uid)
    return 200, wire.HistoryResult(
        session_id=hist.session_id,
        messages=[bodies.message(m) for m in hist.messages],
        storage=hist.storage,
        durable=hist.durable,
    ).model_dump()


def end_session(call: Call) -> Reply:
    from shared.edge import wire

    body = call.body
    only_fields(body, {"session_id", "agent_id", "reason"})
    sid = validate_session_id(body.get("session_id"))
    # agent_id and reason are validated by the core (one rule, one place)
    reason = body.get("reason", "completed")
    agent_id = body.get("agent_id")
    res = _manager().end_session_with_analytics(sid, agent_id, reason, user_id=call.uid)
    return 200, wire.EndResult(
        session_id=res.session_id,
        status=res.status,
        summary=res.summary,
        message_count=res.message_count,
        queries_recorded=res.queries_recorded,
    ).model_dump()


def chat(call: Call) -> Reply:
    from shared.edge import wire

    body = call.body
    only_fields(body, {"session_id", "content", "client_message_id"})
    sid = validate_session_id(body.get("session_id"))
    from shared.instance import get_instance

    turn = (
        get_instance()
        .chat()
        .turn(sid, body.get("content"), client_message_id=body.get("client_message_id"), user_id=call.uid)
    )
    return 201, wire.ChatResult.model_validate(turn.model_dump(exclude={"replayed"})).model_dump()


def list_sessions(call: Call) -> Reply:
    from shared.edge import wire
    from shared.instance import get_instance

    limit = int_param(call.args, "limit", default=20, lo=1, hi=50) or 20
    page = get_instance().data_rights().sessions(call.uid, cursor=call.args.get("cursor"), limit=limit)
    return 200, wire.SessionList.model_validate(page).model_dump(exclude_none=True)


def _memories() -> Any:
    from shared.instance import get_instance

    return get_instance().memories()


def list_memories(call: Call) -> Reply:
    from shared.edge import wire
    from shared.features.memories import MAX_PAGE

    limit = int_param(call.args, "limit", default=20, lo=1, hi=MAX_PAGE) or 20
    page = _memories().list(call.uid, limit=limit, cursor=call.args.get("cursor"))
    return 200, wire.MemoryPage.model_validate(page).model_dump(exclude_none=True)


def search_memories(call: Call) -> Reply:
    from shared.edge import wire
    from shared.features.memories import MAX_PAGE

    limit = int_param(call.args, "limit", default=10, lo=1, hi=MAX_PAGE) or 10
    page = _memories().search(call.uid, call.args.get("q"), limit=limit)
    return 200, wire.MemoryPage.model_validate(page).model_dump(exclude_none=True)


def delete_memory(call: Call) -> Reply:
    from shared.edge import wire

    only_fields(call.body, {"session_id"})
    sid = validate_session_id(call.body.get("session_id"))
    return 200, wire.MemoryDeleted.model_validate(_memories().delete(call.uid, sid)).model_dump()


def get_state(call: Call) -> Reply:
    from shared.edge import wire
    from shared.instance import get_instance

    trusted = call.backend or call.admin
    got = (
        get_instance()
        .app_state()
        .get(call.uid, scope=call.args.get("scope"), app=call.args.get("app"), trusted=trusted)
    )
    return 200, wire.StateAnswer.model_validate(got).model_dump()


def update_state(call: Call) -> Reply:
    from shared.edge import wire
    from shared.instance import get_instance

    body = call.body
    only_fields(body, {"scope", "app", "delta", "if_absent"})
    got = (
        get_instance()
        .app_state()
        .update(
            call.uid,
            scope=body.get("scope"),
            app=body.get("app"),
            delta=body.get("delta"),
            if_absent=body.get("if_absent", False),
            trusted=call.backend or call.admin,
        )
    )
    return 200, wire.StateAnswer.model_validate(got).model_dump()


def admin_report(call: Call) -> Reply:
    from shared.edge import wire
    from shared.features import admin

    admin.require_admin(call.admin)
    report = _reports().report(call.args.get("from"), call.args.get("to"))
    return 200, wire.AdminReport.model_validate(report).model_dump()


def admin_low_confidence(call: Call) -> Reply:
    from shared.edge import wire
    from shared.features import admin

    admin.require_admin(call.admin)
    fmt = call.args.get("format", "json")
    if fmt not in ("json", "csv"):
        raise InvalidArgument("format must be json or csv", details={"field": "format"})
    limit = int_param(call.args, "limit", default=50, lo=1, hi=admin.MAX_PAGE) or 50
    args = call.args
    assert call.uid is not None
    items, cursor = _reports().low_confidence(
        args.get("from"), args.get("to"), limit, args.get("cursor"), admin_uid=call.uid
    )
    if fmt == "csv":
        return 200, Text(admin.to_csv(items), "text/csv", filename="low-confidence.csv")
    return 200, wire.LowConfidencePage.model_validate({"items": items, "next_cursor": cursor}).model_dump()


def admin_session(call: Call) -> Reply:
    from shared.edge import wire
    from shared.features import admin

    admin.require_admin(call.admin)
    assert call.uid is not None
    return 200, wire.AdminSession.model_validate(_reports().session(call.args.get("session_id"), call.uid)).model_dump()


def _reports() -> Any:
    from shared.instance import get_instance

    return get_instance().reports()


_export_slots: threading.BoundedSemaphore | None = None
_export_slots_lock = threading.Lock()


def export_slots() -> threading.BoundedSemaphore:
    """The instance's export slots: a page takes a few times EXPORT_PAGE_MAX_BYTES while it
    is built, so only EXPORT_MAX_CONCURRENT of an instance's requests may be exports at once
    (4 x 4 MiB pages, about 64 MiB at most, on a 512 MiB instance serving 80 requests)."""
    global _export_slots
    with _export_slots_lock:
        if _export_slots is None:
            _export_slots = threading.BoundedSemaphore(get_settings().export_max_concurrent)
        return _export_slots


def export_my_data(call: Call) -> Reply:
    from shared.edge import wire
    from shared.features.export import MAX_PAGE
    from shared.instance import get_instance

    limit = int_param(call.args, "limit", default=50, lo=1, hi=MAX_PAGE) or 50
    slots = export_slots()
    if not slots.acquire(timeout=get_settings().export_slot_wait_s):
        raise Busy("this instance is busy with other exports; try again shortly", retry_after_s=2)
    try:
        page = get_instance().data_rights().export(call.uid, cursor=call.args.get("cursor"), limit=limit)
    finally:
        slots.release()
    body = wire.ExportPage.model_validate(page).model_dump(exclude_none=False)
    for first_page_only in ("user", "memories"):
        if body[first_page_only] is None:
            del body[first_page_only]
    # a file the browser downloads (JSON, as it answers)
    text = json.dumps(body, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return 200, Text(text, "application/json", filename="chat-memory-export.json")


def delete_session(call: Call) -> Reply:
    from shared.edge import wire

    only_fields(call.body, {"session_id"})
    sid = validate_session_id(call.body.get("session_id"))
    counts = _erasure().erase_session(sid, call.uid)
    return 200, wire.SessionErased.model_validate({"session_id": sid, "erased": counts}).model_dump()


def delete_my_data(call: Call) -> Reply:
    from shared.edge import wire

    only_fields(call.body, {"confirm"})
    if call.body.get("confirm") is not True:
        raise InvalidArgument("confirm must be true: this erases all your data", details={"field": "confirm"})
    assert call.uid is not None
    receipt = _erasure().erase_user(call.uid, requested_by="self")
    return 200, wire.ErasureReceipt.model_validate(receipt).model_dump()


def admin_erase_user(call: Call) -> Reply:
    from shared.edge import wire
    from shared.features import admin

    admin.require_admin(call.admin)
    only_fields(call.body, {"user_id"})
    receipt = _erasure().erase_user(call.body.get("user_id"), requested_by=f"admin:{call.uid}")
    return 200, wire.ErasureReceipt.model_validate(receipt).model_dump()


def _erasure() -> Any:
    from shared.instance import get_instance

    return get_instance().erasure()


def get_user_stats(call: Call) -> Reply:
    from shared.edge import wire

    return 200, wire.UserStats.model_validate(_manager().get_user_stats(call.uid).model_dump()).model_dump()


def health(call: Call) -> Reply:
    reason = refusal_reason()
    if reason is not None:
        return 503, {"status": "refused", "reason": reason}
    return _health_probe.get(_manager(), get_settings().health_cache_s)


# A layer's report may carry status words and figures; anything else (error text, exception
# names, hosts) stays in the log: health is public.
_WORD_RE = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")


def _public_layer(name: str, report: dict[str, Any]) -> dict[str, Any]:
    shown: dict[str, Any] = {}
    for key, value in report.items():
        if isinstance(value, bool | int | float) or (isinstance(value, str) and _WORD_RE.fullmatch(value)):
            shown[key] = value
    if report.get("status") != "up" and len(shown) < len(report):
        _log.warning(f"health: {name} is {report.get('status')}", extra={"layer": name, "report": report})
    shown.setdefault("status", "unknown")
    return shown


class _HealthProbe:
    """The stores are probed at most once per interval per instance, whoever calls: health
    is public, and must not be a way to make Firestore reads and Redis PINGs on demand."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._reply: Reply | None = None
        self._at = 0.0
        self._manager: object = None

    def get(self, manager: Any, interval: float) -> Reply:
        reply = self._fresh(manager, interval)
        if reply is not None:
            return reply
        # One request probes; the others meanwhile get the previous answer (or wait for the first).
        previous = self._reply
        if previous is not None and self._manager is manager:
            if not self._lock.acquire(blocking=False):
                return previous
        else:
            self._lock.acquire()
        try:
            reply = self._fresh(manager, interval)
            if reply is None:
                report = manager.health()
                layers = {name: _public_layer(name, layer) for name, layer in report["layers"].items()}
                reply = (200, {"status": report["status"], "layers": layers})
                self._reply, self._manager, self._at = reply, manager, time.monotonic()
            return reply
        finally:
            self._lock.release()

    def _fresh(self, manager: Any, interval: float) -> Reply | None:
        """The last answer, if it is this manager's and younger than ``interval``."""
        if self._manager is manager and time.monotonic() - self._at < interval:
            return self._reply
        return None


_health_probe = _HealthProbe()


def reset_export_slots() -> None:
    global _export_slots
    with _export_slots_lock:
        _export_slots = None


def reset_health() -> None:
    """For tests: forget the last probe."""
    global _health_probe
    _health_probe = _HealthProbe()
