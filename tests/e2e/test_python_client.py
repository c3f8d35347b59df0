"""The Python client (clients/python) against the emulated functions: every call it makes is
the contract's, a retried turn is stored once, errors come typed, a backend acts for a user,
and the Firebase token provider refreshes against the Auth emulator."""

from __future__ import annotations

import asyncio
import os
import threading
from typing import Any

import httpx
import pytest
from chat_memory_client import (
    AsyncChatMemoryClient,
    ChatMemoryClient,
    InvalidArgument,
    NotFound,
    PayloadTooLarge,
    PermissionDenied,
    TransportError,
)
from chat_memory_client.auth import FirebaseTokenProvider

from tests.clients import Api


def client_for(api: Api, token: Any, **kw: Any) -> ChatMemoryClient:
    return ChatMemoryClient(api.base_url, token, **kw)


def test_a_conversation_through_the_sync_client(api: Api):
    user = api.new_user(backend=False)
    with client_for(api, user.token) as cm:
        sid = cm.create_session({"platform": "python"})["session_id"]
        first = cm.append_message(sid, "user", "my parcel to Lisbon is late", client_message_id="turn-1")
        again = cm.append_message(sid, "user", "my parcel to Lisbon is late", client_message_id="turn-1")
        assert first["message_count"] == again["message_count"] == 1  # a retry: stored once
        assert "Lisbon" in cm.get_context(sid)["formatted_context"]
        assert [m["content"] for m in cm.get_history(sid)["messages"]] == ["my parcel to Lisbon is late"]
        with pytest.raises(InvalidArgument) as bad:  # sent as is (the client refuses a bad role itself)
            cm._send(
                cm.calls.post("append_message", {"session_id": sid, "role": "robot", "content": "x"}, repeatable=True)
            )
        assert bad.value.field == "role" and bad.value.status == 400  # the server's 400 names the field
        with pytest.raises(PermissionDenied):
            cm.append_message(sid, "assistant", "an end user may not write this")
        with pytest.raises(NotFound):
            cm.get_context("0" * 32)
        for call, field in (
            (lambda: cm.get_context("not-hex"), "session_id"),
            (lambda: cm.list_memories(limit=999), "limit"),
        ):
            with pytest.raises(InvalidArgument) as named:
                call()
            assert named.value.field == field  # every 400 names its field
        for role, content, field in (("user", 42, "content"), ("user", "  ", "content"), ("robot", "x", "role")):
            with pytest.raises(InvalidArgument) as local:
                cm.append_message(sid, role, content)  # type: ignore[arg-type]
            assert local.value.status == 0 and local.value.field == field  # refused before sending
        with pytest.raises(PayloadTooLarge):  # the server's own check, past a client told a larger limit
            ChatMemoryClient(api.base_url, user.token, max_content_bytes=10**6).append_message(
                sid, "user", "x" * 40_000
            )
        assert cm.get_history(sid)["messages"][-1]["content"] == "my parcel to Lisbon is late"  # nothing half-written
        assert cm.end_session(sid)["status"] == "ended"
        assert cm.end_session(sid)["status"] == "ended"  # the same answer: safe to retry


def test_a_conversation_through_the_async_client_and_a_backend_acting_for_the_user(api: Api):
    backend, alice = api.new_user(backend=True), api.new_user(backend=False)

    async def run() -> str:
        async with AsyncChatMemoryClient(api.base_url, backend.token, user_id=alice.uid) as cm:
            sid = (await cm.create_session())["session_id"]
            await cm.append_message(sid, "user", "hello")
            await cm.append_message(sid, "assistant", "hi Alice", {"sources": [], "confidence": 0.9})
            ctx = await cm.get_context(sid)
            assert [m["role"] for m in ctx["messages"]] == ["user", "assistant"]
            return str(sid)

    out: dict[str, Any] = {}
    t = threading.Thread(target=lambda: out.setdefault("sid", asyncio.run(run())))  # Playwright's loop: not here
    t.start()
    t.join()
    sid = out["sid"]
    with client_for(api, alice.token) as mine:  # the session is hers
        assert [m["content"] for m in mine.get_history(sid)["messages"]] == ["hello", "hi Alice"]
        with pytest.raises(PermissionDenied):
            mine.get_context(sid, user_id="someone-else")  # an end user names no user


class LoseFirstAnswer(httpx.HTTPTransport):
    """A real transport to the emulated functions that drops the first answer of ``fn``: the
    request reached the function and did its work, the client never hears of it."""

    def __init__(self, fn: str) -> None:
        super().__init__()
        self.fn = fn
        self.sent: list[str] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = super().handle_request(request)
        if request.url.path.endswith(f"/{self.fn}"):
            self.sent.append(request.content.decode())
            if len(self.sent) == 1:
                response.read()
                raise httpx.ReadError("the answer was lost", request=request)
        return response


def test_a_lost_answer_is_retried_with_the_same_message_id(api: Api):
    """The first attempt reaches the function and its answer is lost (the transport drops it):
    the client sends the same client_message_id again, and the message is stored once."""
    user = api.new_user(backend=False)
    lose = LoseFirstAnswer("append_message")
    sent = lose.sent

    with ChatMemoryClient(api.base_url, user.token, transport=lose) as cm:
        sid = cm.create_session()["session_id"]
        assert cm.append_message(sid, "user", "once only")["message_count"] == 1
        assert len(sent) == 2 and sent[0] == sent[1]  # the same body, the same client_message_id
        assert [m["content"] for m in cm.get_history(sid)["messages"]] == ["once only"]


def test_a_lost_end_is_retried_and_a_lost_create_or_erase_is_not(api: Api):
    """end_session answers an ended session with its first end's result: retried after a lost
    answer. create_session and delete_session are not (a second session; a receipt of zero):
    the caller gets TransportError after exactly one request, which did its work."""
    user = api.new_user(backend=False)
    with ChatMemoryClient(api.base_url, user.token) as plain:
        sid = plain.create_session()["session_id"]
        plain.append_message(sid, "user", "to be ended")
    lose = LoseFirstAnswer("end_session")
    with ChatMemoryClient(api.base_url, user.token, transport=lose) as cm:
        ended = cm.end_session(sid)
        assert len(lose.sent) == 2 and ended["status"] == "ended" and ended["message_count"] == 1
    before = {s["session_id"] for s in plain_list(api, user.token)}
    lose = LoseFirstAnswer("create_session")
    with ChatMemoryClient(api.base_url, user.token, transport=lose) as cm, pytest.raises(TransportError):
        cm.create_session()
    assert len(lose.sent) == 1
    made = {s["session_id"] for s in plain_list(api, user.token)} - before
    assert len(made) == 1  # the one request made one session, and no retry made a second
    lose = LoseFirstAnswer("delete_session")
    with ChatMemoryClient(api.base_url, user.token, transport=lose) as cm, pytest.raises(TransportError):
        cm.delete_session(sid)
    assert len(lose.sent) == 1
    with ChatMemoryClient(api.base_url, user.token) as plain, pytest.raises(NotFound):
        plain.get_history(sid)  # the lost request did erase it


def plain_list(api: Api, token: str) -> list[Any]:
    with ChatMemoryClient(api.base_url, token) as cm:
        return list(cm.list_sessions(limit=50)["items"])


def test_the_firebase_token_provider_refreshes_against_the_auth_emulator(api: Api):
    user = api.new_user(backend=False)
    provider = FirebaseTokenProvider("any", user.refresh_token, auth_host=os.environ["FIREBASE_AUTH_EMULATOR_HOST"])
    with client_for(api, provider) as cm:
        sid = cm.create_session()["session_id"]
        assert cm.get_context(sid)["session_id"] == sid
    assert provider.uid == user.uid


def test_list_sessions_pages_the_callers_own_oldest_first(api: Api):
    alice, bob, backend = api.new_user(backend=False), api.new_user(backend=False), api.new_user(backend=True)
    with client_for(api, alice.token) as cm, client_for(api, bob.token) as theirs:
        mine = [cm.create_session()["session_id"] for _ in range(3)]
        cm.append_message(mine[0], "user", "x" * 20_000)  # what a session holds is never listed
        cm.end_session(mine[0])
        theirs.create_session()
        first = cm.list_sessions(limit=2)
        assert [s["session_id"] for s in first["items"]] == mine[:2]
        assert first["items"][0]["status"] == "ended" and first["items"][0]["message_count"] == 1
        assert all(
            set(s) <= {"session_id", "status", "created_at", "last_active_at", "ended_at", "message_count", "memory"}
            for s in first["items"]
        )
        rest = cm.list_sessions(limit=2, cursor=first["next_cursor"])
        assert [s["session_id"] for s in rest["items"]] == mine[2:] and "next_cursor" not in rest
        assert len(theirs.list_sessions()["items"]) == 1  # bob's own only
        with pytest.raises(InvalidArgument) as bad:
            cm.list_sessions(cursor="not-a-cursor")
        assert bad.value.field == "cursor"
    with client_for(api, backend.token, user_id=alice.uid) as acting:
        assert [s["session_id"] for s in acting.list_sessions()["items"]] == mine
