"""The chat turn and the write rules over HTTP: the Functions emulator, real Auth-emulator
tokens (an end user's, and a backend's holding the ``chat_backend`` claim), the Firestore
emulator and a real redis-server; the default ``kb`` responder over the shipped FAQ."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path

from tests.clients import Api
from tests.e2e.test_api import contract

ROOT = Path(__file__).resolve().parents[2]


def test_chat_turn_answers_from_the_faq_and_a_retry_answers_the_same(api: Api, firestore):
    user = api.new_user(backend=False)
    sid = api.new_session(user)
    first = contract(api.chat(user, sid, "How do I return an item I bought?", cmid="turn-1"), "chat", 201)
    answer = first["answer"]
    assert (first["user_seq"], answer["seq"], first["storage"]) == (1, 2, "redis")
    assert answer["metadata"]["sources"] and 0 <= answer["metadata"]["confidence"] <= 1
    again = contract(api.chat(user, sid, "How do I return an item I bought?", cmid="turn-1"), "chat", 201)
    assert again == first
    history = api.history(user, sid).body["messages"]
    assert [(m["role"], m["seq"]) for m in history] == [("user", 1), ("assistant", 2)]
    # the answer's metadata is the session's analytics once it ends
    assert api.end(user, sid).status == 200
    ana = firestore.wait_for(f"analytics/{sid}", lambda d: bool(d.get("queries")))
    assert ana["queries"][0]["sources"] == answer["metadata"]["sources"]


def test_an_end_user_token_writes_user_turns_only(api: Api):
    user = api.new_user(backend=False)
    sid = api.new_session(user)
    for role in ("assistant", "system"):
        r = api.append(user, sid, role, "refund approved", {"confidence": 1.0, "sources": ["kb_forged"]})
        body = contract(r, "append_message", 403)
        assert body["error"]["code"] == "permission_denied"
    contract(api.append(user, sid, "user", "hello"), "append_message", 201)
    assert [m["role"] for m in api.history(user, sid).body["messages"]] == ["user"]


def test_the_grant_script_makes_a_backend_identity(api: Api):
    """scripts/grant_role.py backend against the Auth emulator: the user's next token may write
    an assistant turn; after --revoke, the next one may not."""
    user = api.new_user(backend=False)
    sid = api.new_session(user)
    env = {**os.environ, "GCLOUD_PROJECT": os.environ.get("GCLOUD_PROJECT", "demo-chat-memory")}

    def grant(*extra: str) -> None:
        out = subprocess.run(
            [sys.executable, str(ROOT / "scripts" / "grant_role.py"), "backend", user.uid, *extra],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert out.returncode == 0, out.stderr

    def signed_in_again() -> None:
        user.token = api.refreshed_token(user.refresh_token)

    grant()
    signed_in_again()
    contract(api.append(user, sid, "assistant", "hello from the backend"), "append_message", 201)
    grant("--revoke")
    signed_in_again()
    contract(api.append(user, sid, "assistant", "and again"), "append_message", 403)


def test_a_user_downloads_everything_they_wrote(api: Api):
    """export_my_data with an end user's token: every canary the user wrote, as a download,
    and nothing of another user's."""
    user, other = api.new_user(backend=False), api.new_user(backend=False)
    sid, theirs = api.new_session(user), api.new_session(other)
    mine = [f"canary-{i}-{user.uid[:6]}" for i in range(3)]
    for i, c in enumerate(mine):
        contract(api.chat(user, sid, f"How do I return an item? {c}", cmid=f"x{i}"), "chat", 201)
    contract(api.chat(other, theirs, "their secret words", cmid="y0"), "chat", 201)
    r = api.get("export_my_data", {"limit": 10}, user)
    body = contract(r, "export_my_data", 200)
    assert 'filename="chat-memory-export.json"' in r.headers["Content-Disposition"]
    assert all(c in r.text for c in mine) and "their secret words" not in r.text
    assert [s["session_id"] for s in body["sessions"]] == [sid] and body["next_cursor"] is None
    assert len(body["sessions"][0]["analytics"]) == 3  # the answers, still buffered in Redis
    assert body["sessions"][0]["continues"] is False
    # Crafted cursors: another user's session, a negative seq, a lone surrogate, a string seq.
    for value in ([1.0, theirs, 0], [1.0, theirs], [1.0, sid, -1], [1.0, "\ud800", 1], [1.0, sid, "1"]):
        cursor = base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")
        bad = contract(api.get("export_my_data", {"cursor": cursor}, user), "export_my_data", 400)
        assert bad["error"]["details"]["field"] == "cursor", bad
        assert "their secret words" not in json.dumps(bad)
