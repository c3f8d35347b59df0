"""get_state / update_state and a message's item, through the emulated functions with real
tokens: whose state is whose, the app's state for backends only, merges from many callers at
once all landing, create-if-absent agreeing on one value, bounds naming their field, and a
user's state in their export and gone with their erasure."""

from __future__ import annotations

import threading
import uuid

import pytest
from chat_memory_client import ChatMemoryClient, InvalidArgument, PayloadTooLarge, PermissionDenied

from tests.clients import Api


def _client(api: Api, token: str, **kw) -> ChatMemoryClient:
    return ChatMemoryClient(api.base_url, token, **kw)


def test_a_users_state_is_theirs_and_the_apps_is_the_backends(api: Api):
    alice, bob, backend = api.new_user(backend=False), api.new_user(backend=False), api.new_user(backend=True)
    app = "app-" + uuid.uuid4().hex[:8]
    with _client(api, alice.token) as a, _client(api, bob.token) as b, _client(api, backend.token) as be:
        assert a.get_state("user", app) == {"scope": "user", "app": app, "state": {}, "updated_at": None}
        got = a.update_state("user", app, {"user:theme": "dark", "a.b`c": [[1]], "__x__": {"deep": None}})
        assert got["state"] == {"user:theme": "dark", "a.b`c": [[1]], "__x__": {"deep": None}}
        assert b.get_state("user", app)["state"] == {}  # the same app, another user: nothing shared
        # a backend acting for alice reads and writes hers, not its own
        assert be.get_state("user", app, user_id=alice.uid)["state"]["user:theme"] == "dark"
        be.update_state("user", app, {"user:theme": None, "n": 1}, user_id=alice.uid)
        assert a.get_state("user", app)["state"] == {"a.b`c": [[1]], "__x__": {"deep": None}, "n": 1}
        assert be.get_state("user", app)["state"] == {}  # the backend's own user state: untouched
        # the app's state: the backend's to read and write, never an end user's
        be.update_state("app", app, {"app:greeting": "hello"}, user_id=alice.uid)
        assert be.get_state("app", app, user_id=bob.uid)["state"] == {"app:greeting": "hello"}
        for call in (lambda: a.get_state("app", app), lambda: a.update_state("app", app, {"app:greeting": "pwned"})):
            with pytest.raises(PermissionDenied):
                call()
        assert be.get_state("app", app, user_id=bob.uid)["state"] == {"app:greeting": "hello"}
        with pytest.raises(PermissionDenied):  # an end user naming another user
            a.update_state("user", app, {"k": 1}, user_id=bob.uid)


@pytest.mark.parametrize(
    ("args", "field"),
    [
        ({"scope": "session", "app": "x", "delta": {"k": 1}}, "scope"),
        ({"scope": "user", "app": "..", "delta": {"k": 1}}, "app"),
        ({"scope": "user", "app": "__app__", "delta": {"k": 1}}, "app"),
        ({"scope": "user", "app": "a/b", "delta": {"k": 1}}, "app"),
        ({"scope": "user", "app": "x", "delta": {}}, "delta"),
        ({"scope": "user", "app": "x", "delta": ["k"]}, "delta"),
        ({"scope": "user", "app": "x", "delta": {"": 1}}, "delta"),
        ({"scope": "user", "app": "x", "delta": {"k" * 257: 1}}, "delta"),
        ({"scope": "user", "app": "x", "delta": {"k": 1}, "if_absent": "yes"}, "if_absent"),
        ({"scope": "user", "app": "x", "delta": {"k": 1}, "extra": 1}, "extra"),
    ],
)
def test_bad_state_input_is_a_400_naming_its_field(api: Api, args, field):
    user = api.new_user(backend=False)
    r = api.post("update_state", args, user)
    assert r.status == 400, r.text
    assert r.body["error"]["details"]["field"] == field


def test_the_state_bounds_refuse_and_keep_what_was_there(api: Api):
    user = api.new_user(backend=False)
    app = "big-" + uuid.uuid4().hex[:8]
    with _client(api, user.token) as c:
        c.update_state("user", app, {"keep": "me"})
        for i in range(4):  # each request fits; together they pass the 16 KiB bound
            try:
                c.update_state("user", app, {f"blob{i}": "x" * 5000})
            except PayloadTooLarge as exc:
                assert exc.field == "delta"
                break
        else:
            pytest.fail("the state grew past STATE_MAX_BYTES")
        state = c.get_state("user", app)["state"]
        assert state["keep"] == "me" and len(state) == i + 1  # the refused merge wrote nothing
        for n in range(9):  # STATE_MAX_APPS (10) apps per user
            c.update_state("user", f"{app}-{n}", {"k": n})
        r = api.post("update_state", {"scope": "user", "app": f"{app}-10", "delta": {"k": 1}}, user)
        assert r.status == 409 and r.body["error"]["details"]["field"] == "app"
        c.update_state("user", app, {"still": "writable"})  # an existing app's state still takes merges


def test_merges_at_once_all_land_and_if_absent_agrees_on_one(api: Api):
    user = api.new_user(backend=False)
    app = "race-" + uuid.uuid4().hex[:8]
    winners: list[str] = []
    errors: list[BaseException] = []

    def worker(n: int) -> None:
        try:
            with _client(api, user.token) as c:
                c.update_state("user", app, {f"k{n}": n})
                got = c.update_state("user", app, {"session:main": f"sid-{n}"}, if_absent=True)
                winners.append(got["state"]["session:main"])
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    with _client(api, user.token) as c:
        state = c.get_state("user", app)["state"]
    assert {k: v for k, v in state.items() if k.startswith("k")} == {f"k{n}": n for n in range(6)}  # none lost
    assert len(set(winners)) == 1 and state["session:main"] == winners[0]  # every racer learned the one stored


def test_a_users_state_is_in_their_export_and_gone_with_their_erasure(api: Api):
    user = api.new_user(backend=False)
    app = "rights-" + uuid.uuid4().hex[:8]
    with _client(api, user.token) as c:
        c.update_state("user", app, {"user:name": "Ada"})
        page = c.export_my_data()
        assert page["state"] == {app: {"user:name": "Ada"}}
        c.delete_my_data()
        assert c.get_state("user", app)["state"] == {}


def test_an_item_goes_through_the_api_whole(api: Api):
    backend = api.new_user(backend=True)
    end_user = api.new_user(backend=False)
    item = {"id": "evt-1", "content": {"parts": [{"function_call": {"name": "f", "args": {"x": [[1, 2]]}}}]}}
    with _client(api, backend.token, user_id=end_user.uid) as be, _client(api, end_user.token) as me:
        sid = be.create_session()["session_id"]
        be.append_message(sid, "assistant", "", item=item, client_message_id="evt-1")
        be.append_message(sid, "assistant", "", item=item, client_message_id="evt-1")  # a retry
        [msg] = me.get_history(sid)["messages"]
        assert msg["item"] == item and msg["content"] == ""
        assert me.get_context(sid)["messages"][0]["item"] == item
        with pytest.raises(InvalidArgument) as exc:
            be.append_message(sid, "assistant", "", item={"blob": "x" * 40_000})
        assert exc.value.field in ("item", "body")  # 413 past the request's own bound, or the item's
        r = api.post("append_message", {"session_id": sid, "role": "user", "content": "", "item": "x"}, end_user)
        assert r.status == 400 and r.body["error"]["details"]["field"] == "item"
        assert len(me.get_history(sid)["messages"]) == 1  # nothing half-written
