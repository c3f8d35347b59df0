"""Memories over HTTP: the emulated functions, real Auth-emulator tokens, the Firestore
emulator (the emulated session-end trigger writes the memories) and a real redis-server. A
canary per user; every read path attacked with the other user's token, forged ids, a cursor
naming another user's memory and crafted queries."""

from __future__ import annotations

import uuid

from shared.cursor import encode_cursor
from tests.clients import Api, User
from tests.e2e.test_api import contract


def ended_with_memory(api: Api, firestore, user: User, turns: list[str], **create) -> str:
    r = contract(api.post("create_session", create or {}, user), "create_session", 201)
    sid = r["session_id"]
    for t in turns:
        contract(api.chat(user, sid, t), "chat", 201)
    assert api.end(user, sid).status == 200
    if create.get("memory", True):
        firestore.wait_for(f"users/{user.uid}/memories/{sid}", lambda d: bool(d.get("search")))
    return sid


def test_memories_are_recalled_controlled_and_isolated(api: Api, firestore):
    alice, mallory = api.new_user(backend=False), api.new_user(backend=False)
    canary = "canary" + uuid.uuid4().hex[:10]
    theirs = ended_with_memory(api, firestore, mallory, [f"my secret word is {canary}, track my parcel"])
    mine = ended_with_memory(api, firestore, alice, ["How do I return an item I bought?"])

    # a first-time user: nothing recalled
    newcomer = api.new_user(backend=False)
    fresh = api.new_session(newcomer)
    assert contract(api.chat(newcomer, fresh, "How do I return an item I bought?"), "chat", 201)["memories"] == []
    assert contract(api.context(newcomer, fresh), "get_context", 200)["memories"] == []

    # recall: the next conversation starts where the last left off
    sid = api.new_session(alice)
    turn = contract(api.chat(alice, sid, "I want to return the item I bought last week"), "chat", 201)
    assert [m["session_id"] for m in turn["memories"]] == [mine]
    ctx = contract(api.context(alice, sid), "get_context", 200)
    assert [m["session_id"] for m in ctx["memories"]] == [mine]
    assert "Earlier conversations" in ctx["formatted_context"] and canary not in ctx["formatted_context"]

    # list, search: the caller's own only, whatever the query or cursor
    page = contract(api.get("list_memories", {"limit": 10}, alice), "list_memories", 200)
    assert [i["session_id"] for i in page["items"]] == [mine]
    forged = encode_cursor(1e12, theirs)  # a cursor naming mallory's memory
    page = contract(api.get("list_memories", {"cursor": forged}, alice), "list_memories", 200)
    assert theirs not in [i["session_id"] for i in page["items"]]
    found = contract(api.get("search_memories", {"q": "return item"}, alice), "search_memories", 200)
    assert [i["session_id"] for i in found["items"]] == [mine] and found["items"][0]["score"] > 0
    assert contract(api.get("search_memories", {"q": canary}, alice), "search_memories", 200)["items"] == []
    for bad in ({"q": ""}, {"q": "x" * 1001}, {}, {"q": "ok", "limit": 0}):
        body = contract(api.get("search_memories", bad, alice), "search_memories", 400)
        assert body["error"]["code"] == "invalid_argument"
    for bad_cursor in ("!!", encode_cursor(1.0, "../x")):
        contract(api.get("list_memories", {"cursor": bad_cursor}, alice), "list_memories", 400)
    r = api.call("GET", "search_memories", user=alice, params="q=%ED%A0%80%00%FF")  # type: ignore[arg-type]
    assert r.status in (200, 400), r.text

    # delete: another user's session id is 404, like one that never existed
    for forged_sid in (theirs, uuid.uuid4().hex):
        contract(api.post("delete_memory", {"session_id": forged_sid}, alice), "delete_memory", 404)
    contract(api.post("delete_memory", {"session_id": "../" + theirs}, alice), "delete_memory", 400)
    assert firestore.get(f"users/{mallory.uid}/memories/{theirs}") is not None

    # export holds them with lineage; the owner deletes one; nothing brings it back
    export = api.get("export_my_data", None, alice).body
    assert [(m["session_id"], m["seq_from"]) for m in export["memories"]] == [(mine, 1)]
    assert canary not in str(export)
    done = contract(api.post("delete_memory", {"session_id": mine}, alice), "delete_memory", 200)
    assert done == {"session_id": mine, "deleted": True}
    contract(api.post("delete_memory", {"session_id": mine}, alice), "delete_memory", 404)
    assert contract(api.get("list_memories", None, alice), "list_memories", 200)["items"] == []
    contract(api.chat(alice, sid, "and how do I return the other item?"), "chat", 201)
    assert contract(api.context(alice, sid), "get_context", 200)["memories"] == []


def test_a_memory_off_session_leaves_nothing_and_erasure_counts_memories(api: Api, firestore):
    user = api.new_user(backend=False)
    kept = ended_with_memory(api, firestore, user, ["How do I return an item I bought?"])
    off = ended_with_memory(api, firestore, user, ["How do I return an item I bought?"], memory=False)
    firestore.wait_for(f"users/{user.uid}", lambda d: d.get("total_sessions") == 2)
    assert firestore.get(f"users/{user.uid}/memories/{off}") is None
    sid = contract(api.post("create_session", {"memory": False}, user), "create_session", 201)["session_id"]
    turn = contract(api.chat(user, sid, "How do I return an item I bought?"), "chat", 201)
    assert turn["memories"] == []
    contract(api.post("create_session", {"memory": "no"}, user), "create_session", 400)
    erased = contract(api.post("delete_session", {"session_id": kept}, user), "delete_session", 200)
    assert erased["erased"]["memories"] == 1
    assert firestore.get(f"users/{user.uid}/memories/{kept}") is None
    receipt = contract(api.post("delete_my_data", {"confirm": True}, user), "delete_my_data", 200)
    assert receipt["erased"]["memories"] == 0 and receipt["complete"]
