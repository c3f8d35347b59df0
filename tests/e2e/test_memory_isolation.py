"""The canary isolation suite of returning users' memory (issue 21), over HTTP: the emulated
functions, real Auth-emulator tokens, the Firestore emulator (the emulated session-end
trigger writes the digests) and the stack's Redis.

Three users (alice, bob, carol) each plant two unique canaries through the real API: one
only in a session of appended user turns (``canary``: never a chat question, so it never
has an analytics entry or a low-confidence row of its own), one in a chat question
(``chat_canary``). Each then has a probe session, ended, whose weak turn recalled the first
(a low-confidence row whose context held the canary), and an active session whose recall
holds it. A fourth user, mallory, holds one memory of her own and throws the crafted search
queries (wildcards, regex and injection text, paths naming another user's memories); fresh
users throw the malformed cursors and forged ids; the three attack each other pairwise
with each other's canaries, ids and cursors. Every answer an attacker gets is searched for
every other user's secrets (canaries, session ids, uid), and every attack has its positive
control: the victim's canary is visible to the victim through the same path, or the
attacker's own memory through the same call (so a search that found nothing proves nothing
only if the path was live).

The admin reports, judged: ``admin_report`` is aggregate, so no canary, session id or uid of
anyone may appear in it. ``admin_low_confidence`` (JSON and CSV) lists weak answers with the
question asked, by design (its existing contract: an audited read of users' questions), so
a canary *typed in a weak chat question* may appear there; a memory digest must add no new
exposure: a canary that reached a later session only by recall (the probe's context held
it) must appear in no row, JSON or CSV, and ``admin_session`` of the probe session must not
hold it either (while ``admin_session`` of the session the canary was typed in does, by
design: the full audited session read, and the positive control of that search).

The rate limit (RATE_LIMIT_PER_MINUTE, 120 per user) bounds what one user may send in a
minute: the pairwise attacks are chosen to stay well inside it, and the payloads that need
no particular victim are thrown by mallory and by a fresh user per test.
"""

from __future__ import annotations

import base64
import csv
import io
import json
import os
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from shared.core.context import MEMORIES_HEADER, MESSAGES_HEADER, SUMMARY_HEADER
from shared.cursor import encode_cursor
from shared.settings import Settings
from tests import harness
from tests.clients import Api, Firestore, Reply, User
from tests.e2e.test_admin import make_admin
from tests.e2e.test_api import contract

TOPIC = "zorblat gadget"  # no word of the FAQ: a question on it is a weak answer
WAIT_S = 30.0  # the emulated trigger writes a digest shortly after the end


@dataclass
class Planted:
    name: str
    user: User
    canary: str  # only in s1's appended user turns
    chat_canary: str  # in s2's chat question
    s1: str = ""  # appended user turns, ended
    s2: str = ""  # chat turns, ended
    probe: str = ""  # ended; its weak turn recalled s1
    active: str = ""  # active; its recall holds s1
    probe_turn: dict[str, Any] = field(default_factory=dict)
    ended_at: dict[str, float] = field(default_factory=dict)  # memory session id -> ended_at

    @property
    def uid(self) -> str:
        return self.user.uid

    @property
    def memory_sids(self) -> set[str]:
        return set(self.ended_at)

    @property
    def secrets(self) -> tuple[str, ...]:
        sids = (self.s1, self.s2, self.probe, self.active)
        return (self.canary, self.chat_canary, *(s for s in sids if s), self.uid)


@dataclass
class World:
    users: list[Planted]  # alice, bob, carol: pairwise attackers and victims
    mallory: Planted  # the crafted payloads; her own memory is s1 only
    fs: Firestore

    @property
    def everyone(self) -> list[Planted]:
        return [*self.users, self.mallory]

    def others(self, p: Planted) -> list[Planted]:
        return [o for o in self.everyone if o.uid != p.uid]

    def pairs(self) -> Iterator[tuple[Planted, Planted]]:
        for a in self.users:
            for v in self.users:
                if a.uid != v.uid:
                    yield a, v


def leaks(text: str, victims: list[Planted]) -> list[str]:
    """Every secret of ``victims`` found in ``text``."""
    return [f"{v.name}:{s}" for v in victims for s in v.secrets if s in text]


def memories_section(formatted: str) -> str:
    """The "Earlier conversations" section of a formatted context ('' if none)."""
    if MEMORIES_HEADER not in formatted:
        return ""
    rest = formatted.split(MEMORIES_HEADER, 1)[1]
    for header in (SUMMARY_HEADER, MESSAGES_HEADER):
        rest = rest.split("\n\n" + header, 1)[0]
    return rest


def raw_cursor(value: Any) -> str:
    """A cursor of any JSON (or raw bytes), encoded as the API encodes its own."""
    raw = value if isinstance(value, bytes) else json.dumps(value).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def bad_request(r: Reply, op: str, field_name: str | None = None, *, sent: Any = None) -> dict[str, Any]:
    """A 400 of the contract (invalid_argument, naming ``field_name`` if given); ``sent``:
    what was sent, for the failure's message."""
    assert r.status == 400, (op, repr(sent)[:200], r.status, r.text[:300])
    body = contract(r, op, 400)
    assert body["error"]["code"] == "invalid_argument", body
    if field_name is not None:
        assert body["error"].get("details", {}).get("field") == field_name, body
    return body


def memory_ids(body: dict[str, Any]) -> set[str]:
    return {m["session_id"] for m in body["memories"]}


# -- planting ---------------------------------------------------------------------------------


def plant_ended(api: Api, p: Planted, mallory: bool = False) -> None:
    """s1 (appended user turns holding ``canary``) and, but for mallory, s2 (a chat question
    holding ``chat_canary``): both ended."""
    p.s1 = api.new_session(p.user)
    for text in (f"my {TOPIC} serial is {p.canary}", f"the {TOPIC} rattles when it spins"):
        contract(api.append(p.user, p.s1, "user", text), "append_message", 201)
    assert api.end(p.user, p.s1).status == 200
    if mallory:
        return
    p.s2 = api.new_session(p.user)
    question = f"My order reference is {p.chat_canary}: how do I return an item I bought?"
    contract(api.chat(p.user, p.s2, question), "chat", 201)
    assert api.end(p.user, p.s2).status == 200


def await_memories(fs: Firestore, p: Planted, sids: list[str]) -> None:
    for sid in sids:
        fs.wait_for(f"users/{p.uid}/memories/{sid}", lambda d: bool(d.get("search")), timeout=WAIT_S)


def plant_recalling(api: Api, p: Planted) -> None:
    """The probe (a weak turn recalling s1, then ended) and the active session (recalling s1)."""
    p.probe = api.new_session(p.user)
    p.probe_turn = contract(api.chat(p.user, p.probe, f"is my {TOPIC} repaired yet"), "chat", 201)
    assert api.end(p.user, p.probe).status == 200
    p.active = api.new_session(p.user)
    contract(api.chat(p.user, p.active, f"the {TOPIC} again: any news?"), "chat", 201)


@pytest.fixture(scope="module")
def world(api: Api, auth_emulator_host: str) -> World:
    fs = Firestore(os.environ["FIRESTORE_EMULATOR_HOST"], os.environ.get("GCLOUD_PROJECT") or harness.PROJECT_ID)

    def new(name: str) -> Planted:
        return Planted(name, api.new_user(backend=False), f"canary-{uuid.uuid4().hex}", f"canary-{uuid.uuid4().hex}")

    users = [new(n) for n in ("alice", "bob", "carol")]
    mallory = new("mallory")
    for p in users:
        plant_ended(api, p)
    plant_ended(api, mallory, mallory=True)
    for p in users:
        await_memories(fs, p, [p.s1, p.s2])
    await_memories(fs, mallory, [mallory.s1])
    for p in users:
        plant_recalling(api, p)
    for p in [*users, mallory]:
        await_memories(fs, p, [s for s in (p.s1, p.s2, p.probe) if s])
        page = contract(api.get("list_memories", {"limit": 50}, p.user), "list_memories", 200)
        p.ended_at = {m["session_id"]: m["ended_at"] for m in page["items"]}
        assert p.memory_sids == {s for s in (p.s1, p.s2, p.probe) if s}, (p.name, page)
    return World(users, mallory, fs)


# -- the owner sees their own canaries: the positive control of every path --------------------


def test_each_owner_sees_their_own_canaries_through_every_read_path(api: Api, world: World):
    for p in world.users:
        # chat: the probe's weak turn recalled s1, canary and all
        recalled = {m["session_id"]: m["text"] for m in p.probe_turn["memories"]}
        assert p.s1 in recalled and p.canary in recalled[p.s1], (p.name, p.probe_turn)
        # get_context: the active session's recall, in memories and in the formatted section
        ctx = contract(api.context(p.user, p.active), "get_context", 200)
        assert p.s1 in memory_ids(ctx) and p.canary in memories_section(ctx["formatted_context"])
        # list, search
        page = contract(api.get("list_memories", {"limit": 50}, p.user), "list_memories", 200)
        texts = {m["session_id"]: m["text"] for m in page["items"]}
        assert p.canary in texts[p.s1] and p.chat_canary in texts[p.s2]
        for canary, sid in ((p.canary, p.s1), (p.chat_canary, p.s2), (p.canary.removeprefix("canary-"), p.s1)):
            found = contract(api.get("search_memories", {"q": canary}, p.user), "search_memories", 200)
            assert found["items"][0]["session_id"] == sid and canary in found["items"][0]["text"]
        # export
        export = contract(api.get("export_my_data", None, p.user), "export_my_data", 200)
        assert {m["session_id"] for m in export["memories"]} == p.memory_sids
        assert p.canary in json.dumps(export["memories"]) and p.chat_canary in json.dumps(export["memories"])


# -- search ----------------------------------------------------------------------------------


def search_as(api: Api, world: World, attacker: Planted, q: str, **extra: Any) -> dict[str, Any]:
    """An attacker's search (a valid query): their own memories only, no other user's secret."""
    r = api.get("search_memories", {"q": q, **extra}, attacker.user)
    assert r.status == 200, (attacker.name, q[:80], r.status, r.text[:300])
    assert not leaks(r.text, world.others(attacker)), (attacker.name, q[:80], r.text[:500])
    body = contract(r, "search_memories", 200)
    assert {i["session_id"] for i in body["items"]} <= attacker.memory_sids, (attacker.name, q[:80], body)
    return body


def test_search_with_another_users_canary_finds_only_the_callers_own(api: Api, world: World):
    for a, v in world.pairs():
        # "canary" is a word of the attacker's own memories too: those may be found, no other
        search_as(api, world, a, v.canary)
        search_as(api, world, a, v.chat_canary, limit=50)
        # the canary's own token is in the victim's memories alone
        assert search_as(api, world, a, v.canary.removeprefix("canary-"))["items"] == []
        # the victim's canary with the words of the attacker's own memory: the attacker's own
        # is found (the path is live), the victim's (a better match) is not
        mixed = search_as(api, world, a, f"{TOPIC} {v.canary} {v.chat_canary}")
        assert mixed["items"] and mixed["items"][0]["session_id"] in (a.s1, a.probe)


def test_crafted_search_queries_never_reach_another_users_memories(api: Api, world: World):
    m, victims = world.mallory, world.users
    crafted = [
        "*", "%", "%%", "_", "?", ".*", "(.*)|.*", "[a-z]+", "^.*$", "\\", "\\*", "' OR '1'='1",
        '{"$ne": null}', "*:*", "canary", "canary-*", "canary-%", "\x00", "\u202e\u200bgadget\ufeff",
        "ünïcödé 日本語 🙂 zorblat", "x" * 1000, "canary " * 142, "../", "../../", "users", "users/*/memories",
    ]  # fmt: skip
    for v in victims:
        crafted += [
            v.uid, v.s1, f"users/{v.uid}", f"users/{v.uid}/memories", f"users/{v.uid}/memories/{v.s1}",
            f"../{v.uid}/memories/{v.s1}", f"../../users/{v.uid}/memories", v.canary.removeprefix("canary-"),
        ]  # fmt: skip
    for q in crafted:
        search_as(api, world, m, q)
    # the path is live for mallory: her own memory is found by its words
    assert [i["session_id"] for i in search_as(api, world, m, f"{TOPIC} serial {m.canary}")["items"]] == [m.s1]
    for q in ("", " ", "\t\n", "x" * 1001, "🙂" * 1001):
        bad_request(api.get("search_memories", {"q": q}, m.user), "search_memories", "q", sent=q)
    for limit in ("0", "51", "-1", "1e3", "all"):
        bad_request(api.get("search_memories", {"q": victims[0].canary, "limit": limit}, m.user), "search_memories")
    # bytes that are no UTF-8 text, around another user's canary
    r = api.call("GET", "search_memories", user=m.user, params=f"q={victims[0].canary}%ED%A0%80%FF")  # type: ignore[arg-type]
    assert r.status in (200, 400) and not leaks(r.text, victims), r.text


# -- list ------------------------------------------------------------------------------------


def list_as(api: Api, world: World, attacker: Planted, params: dict[str, Any]) -> dict[str, Any]:
    r = api.get("list_memories", params, attacker.user)
    assert not leaks(r.text, world.others(attacker)), (attacker.name, params, r.text[:500])
    body = contract(r, "list_memories", 200)
    assert {i["session_id"] for i in body["items"]} <= attacker.memory_sids, (attacker.name, params, body)
    return body


def test_a_cursor_forged_from_another_users_memories_pages_only_the_callers_own(api: Api, world: World):
    for a, v in world.pairs():
        # the victim's newest memory, as the victim's own page would end on it
        newest = max(v.memory_sids, key=lambda s: v.ended_at[s])
        list_as(api, world, a, {"cursor": encode_cursor(v.ended_at[newest], newest)})
        # a cursor "before everything", naming the victim's memory: the attacker's whole list
        whole = list_as(api, world, a, {"cursor": encode_cursor(1e12, v.s1), "limit": 50})
        assert {i["session_id"] for i in whole["items"]} == a.memory_sids


MALFORMED_CURSORS: list[Any] = [
    "!!", "%%%", "a", "AAAA", "é", "x" * 513, b"[]", b"[1]", b"{}", b"null", b'"x"', b"\xff\xfe\x00",
    b"[1e999, \"0123456789abcdef0123456789abcdef\"]", b"[NaN, \"0123456789abcdef0123456789abcdef\"]",
    ["x", "0123456789abcdef0123456789abcdef"], [True, "0123456789abcdef0123456789abcdef"],
    [1.0, "../x"], [1.0, ""], [1.0, "x" * 400], [1.0, {"a": 1}], [1.0, None], [1.0, "users/x/memories/y"],
    [1.0, "0123456789ABCDEF0123456789ABCDEF"], [1.0, "__name__"], [1.0, ".."],
    [1.0, "0123456789abcdef0123456789abcdef", 3], [[1.0], "0123456789abcdef0123456789abcdef"],
    # an integer past the float range: json reads it, float() cannot take it
    [10**309, "0123456789abcdef0123456789abcdef"],
]  # fmt: skip


def cursor_text(c: Any) -> str:
    return c if isinstance(c, str) else raw_cursor(c)


def test_a_malformed_cursor_is_a_400_naming_the_cursor_never_a_500(api: Api, world: World):
    m = api.new_user(backend=False)  # a stranger: the rate limit is per user
    victim_paths = [[v.ended_at[v.s1], f"users/{v.uid}/memories/{v.s1}"] for v in world.users]
    victim_paths += [[v.ended_at[v.s1], v.s1, 1] for v in world.users]  # the export's shape
    for c in [*MALFORMED_CURSORS, *victim_paths]:
        r = api.get("list_memories", {"cursor": cursor_text(c)}, m)
        assert not leaks(r.text, world.everyone), r.text
        bad_request(r, "list_memories", "cursor", sent=c)


# -- delete ----------------------------------------------------------------------------------


def test_deleting_another_users_memory_is_a_404_and_the_victim_keeps_it(api: Api, world: World):
    for a, v in world.pairs():
        for sid in (v.s1, v.s2, v.probe):
            r = api.post("delete_memory", {"session_id": sid}, a.user)
            assert not leaks(r.text, world.others(a)), r.text
            assert contract(r, "delete_memory", 404)["error"]["code"] == "not_found"
    m = api.new_user(backend=False)  # a stranger: the rate limit is per user
    for v in world.users:
        forged: list[Any] = [
            "../" + v.s1, f"users/{v.uid}/memories/{v.s1}", v.s1.upper(), v.s1 + "\n", " " + v.s1, v.s1[:-1],
        ]  # fmt: skip
        for sid in forged:
            bad_request(api.post("delete_memory", {"session_id": sid}, m), "delete_memory", sent=sid)
    for bad in ("", "../x", "x" * 1000, "users/x", 123, None, True, [world.users[0].s1], {"$ne": None}):
        bad_request(api.post("delete_memory", {"session_id": bad}, m), "delete_memory", sent=bad)
    # the victims still hold every memory, through their own list and in Firestore
    for v in world.users:
        page = contract(api.get("list_memories", {"limit": 50}, v.user), "list_memories", 200)
        assert {i["session_id"] for i in page["items"]} == v.memory_sids
        assert all(world.fs.get(f"users/{v.uid}/memories/{sid}") is not None for sid in v.memory_sids)


# -- export ----------------------------------------------------------------------------------


def test_the_export_holds_the_callers_own_memories_and_refuses_another_users_cursor(api: Api, world: World):
    for a in world.users:
        r = api.get("export_my_data", None, a.user)
        body = contract(r, "export_my_data", 200)
        assert not leaks(r.text, world.others(a)), (a.name, r.text[:500])
        assert {m["session_id"] for m in body["memories"]} == a.memory_sids and a.canary in r.text
    for a, v in world.pairs():
        created = world.fs.get(f"sessions/{v.s1}")
        assert created is not None
        for cursor in (encode_cursor(created["created_at"], v.s1), encode_cursor(created["created_at"], v.s2, 1)):
            r = api.get("export_my_data", {"cursor": cursor}, a.user)
            assert not leaks(r.text, [v]), r.text
            bad_request(r, "export_my_data", "cursor", sent=cursor)
    m = api.new_user(backend=False)  # a stranger: the rate limit is per user
    for c in ([10**309, world.users[0].s1], [1.0, f"users/{world.users[0].uid}/memories/x"], b'[1e999, "x"]'):
        bad_request(api.get("export_my_data", {"cursor": cursor_text(c)}, m), "export_my_data", "cursor", sent=c)


# -- another user's sessions -----------------------------------------------------------------


def test_another_users_sessions_are_refused_on_every_path_and_left_as_they_were(api: Api, world: World):
    for a, v in world.pairs():
        attempts = [
            ("get_context", api.context(a.user, v.active)),
            ("chat", api.chat(a.user, v.active, f"{TOPIC} {v.canary}")),
            ("end_session", api.end(a.user, v.active)),
            ("delete_session", api.post("delete_session", {"session_id": v.active}, a.user)),
            ("get_context", api.context(a.user, v.s1)),
            ("get_history", api.history(a.user, v.s1)),
            ("get_history", api.history(a.user, v.active)),
            ("delete_session", api.post("delete_session", {"session_id": v.s1}, a.user)),
        ]
        for op, r in attempts:
            assert not leaks(r.text, [v]), (op, r.text)
            assert contract(r, op, 403)["error"]["code"] == "permission_denied", (op, r.text)
    for v in world.users:  # untouched: still active, still recalling, still remembered
        ctx = contract(api.context(v.user, v.active), "get_context", 200)
        assert v.canary in memories_section(ctx["formatted_context"])
        assert all(world.fs.get(f"users/{v.uid}/memories/{sid}") is not None for sid in v.memory_sids)
    m, v = api.new_user(backend=False), world.users[0]  # a stranger: the rate limit is per user
    for sid in ("../x", "x" * 1000, "users/x", f"users/{v.uid}/memories/{v.s1}", v.s1.upper(), v.s1 + "\n"):
        bad_request(api.get("get_context", {"session_id": sid}, m), "get_context", sent=sid)
    bad_request(api.get("get_context", {}, m), "get_context")
    for bad in (None, 123, [v.s1], "../" + v.s1, ""):
        bad_request(api.post("end_session", {"session_id": bad}, m), "end_session", sent=bad)
        bad_request(api.post("delete_session", {"session_id": bad}, m), "delete_session", sent=bad)


# -- a user id named by an end user ---------------------------------------------------------


def test_a_user_id_named_by_an_end_user_is_refused_or_ignored(api: Api, world: World):
    users = world.users
    for i, a in enumerate(users):
        v = users[(i + 1) % len(users)]
        # where a backend may act for a user, an end user naming one is 403 (issue 22's rule);
        # elsewhere user_id is no field of the function: 400 naming it
        forbidden = [
            ("create_session", api.post("create_session", {"user_id": v.uid}, a.user)),
            ("chat", api.post("chat", {"session_id": a.active, "content": "hi", "user_id": v.uid}, a.user)),
            ("append_message", api.post("append_message", {"session_id": a.active, "role": "user",
                                                           "content": "hi", "user_id": v.uid}, a.user)),
            ("end_session", api.post("end_session", {"session_id": v.active, "user_id": v.uid}, a.user)),
            ("delete_session", api.post("delete_session", {"session_id": v.s1, "user_id": v.uid}, a.user)),
            ("get_context", api.get("get_context", {"session_id": v.active, "user_id": v.uid}, a.user)),
            ("list_memories", api.get("list_memories", {"user_id": v.uid, "limit": 50}, a.user)),
            ("search_memories", api.get("search_memories", {"q": v.canary, "user_id": v.uid}, a.user)),
        ]  # fmt: skip
        for op, r in forbidden:
            body = contract(r, op, 403)
            assert body["error"]["code"] == "permission_denied" and "user_id" in body["error"]["message"], (op, body)
            assert not leaks(r.text, [v]), (op, r.text[:300])
        refused = [
            ("delete_memory", api.post("delete_memory", {"session_id": v.s1, "user_id": v.uid}, a.user)),
            ("export_my_data", api.get("export_my_data", {"user_id": v.uid}, a.user)),
        ]
        for op, r in refused:
            body = bad_request(r, op, "user_id", sent=(op, "user_id"))
            assert not leaks(r.text, [v]), (op, r.text[:300])
        erase = api.post("admin_erase_user", {"user_id": v.uid}, a.user)
        assert contract(erase, "admin_erase_user", 403)["error"]["code"] == "permission_denied"
        # X-User-Id is a local-development header (AUTH_DISABLED): ignored beside a token,
        # and no identity at all without one
        r = api.get("list_memories", {"limit": 50}, a.user, headers={"X-User-Id": v.uid})
        assert {i["session_id"] for i in contract(r, "list_memories", 200)["items"]} == a.memory_sids
        r = api.call("GET", "list_memories", headers={"X-User-Id": v.uid})
        assert contract(r, "list_memories", 401) and not leaks(r.text, [v])
    for v in users:  # nothing acted for them
        assert all(world.fs.get(f"users/{v.uid}/memories/{sid}") is not None for sid in v.memory_sids)
        session = world.fs.get(f"sessions/{v.active}")
        assert session is None or session.get("status") != "ended"


# -- the attacker's own context and chat, asked with the victim's canary ----------------------


def test_context_and_chat_asked_with_another_users_canary_recall_only_the_callers_own(api: Api, world: World):
    for a in world.users:
        sid = api.new_session(a.user)
        try:
            for v in world.others(a):
                for q in (f"{TOPIC} {v.canary}", f"return an item, order reference {v.chat_canary}"):
                    turn = contract(api.chat(a.user, sid, q), "chat", 201)
                    assert turn["memories"] and memory_ids(turn) <= a.memory_sids, (a.name, q, turn["memories"])
                    assert not leaks(json.dumps(turn["memories"]) + turn["answer"]["content"], world.others(a))
                ctx = contract(api.context(a.user, sid), "get_context", 200)
                section = memories_section(ctx["formatted_context"])
                assert memory_ids(ctx) <= a.memory_sids
                assert not leaks(json.dumps(ctx["memories"]) + section, world.others(a)), section
                # the section is live: it quotes the attacker's own recalled memory
                assert a.canary in section or a.chat_canary in section, section
        finally:  # what the attacker typed (the victims' canaries) goes with the session
            contract(api.post("delete_session", {"session_id": sid}, a.user), "delete_session", 200)


# -- admin reports ---------------------------------------------------------------------------


def test_admin_reports_need_the_admin_claim(api: Api, world: World):
    for a in world.users:
        v = world.others(a)[0]
        calls = [
            ("admin_report", api.get("admin_report", None, a.user)),
            ("admin_low_confidence", api.get("admin_low_confidence", None, a.user)),
            ("admin_low_confidence", api.get("admin_low_confidence", {"format": "csv"}, a.user)),
            ("admin_session", api.get("admin_session", {"session_id": v.s1}, a.user)),
        ]
        for op, r in calls:
            assert contract(r, op, 403)["error"]["code"] == "permission_denied" and not leaks(r.text, [v])


def low_confidence_pages(api: Api, admin: User, days: dict[str, str]) -> list[dict[str, Any]]:
    """Every low-confidence row of the range (following the cursor; bounded)."""
    items: list[dict[str, Any]] = []
    cursor = None
    for _ in range(50):
        params = {**days, "limit": 200, **({"cursor": cursor} if cursor else {})}
        page = contract(api.get("admin_low_confidence", params, admin), "admin_low_confidence", 200)
        items += page["items"]
        cursor = page.get("next_cursor")
        if not cursor:
            return items
    raise AssertionError("more than 50 pages of low-confidence rows")


def test_memory_digests_add_no_exposure_to_the_admin_reports(api: Api, world: World):
    admin = make_admin(api)
    now = time.time()
    days = {
        "from": time.strftime("%Y-%m-%d", time.gmtime(now - 86400)),
        "to": time.strftime("%Y-%m-%d", time.gmtime(now)),
    }
    probes = {p.probe for p in world.users}
    deadline = time.monotonic() + WAIT_S  # the trigger writes the rows at the probes' end
    while True:
        items = low_confidence_pages(api, admin, days)
        if probes <= {it["session_id"] for it in items} or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    rows = {it["session_id"]: it for it in items}
    assert probes <= set(rows), "the probes' weak turns are low-confidence rows (the positive control)"
    recalled_only = [p.canary for p in world.everyone]  # typed in no chat question: recall alone took it on
    text = json.dumps(items)
    assert not [c for c in recalled_only if c in text]
    r = api.get("admin_low_confidence", {**days, "limit": 200, "format": "csv"}, admin)
    assert r.status == 200 and r.headers["Content-Type"].startswith("text/csv"), r.text[:300]
    csv_rows = list(csv.DictReader(io.StringIO(r.text)))
    assert probes <= {row["session_id"] for row in csv_rows}
    assert not [c for c in recalled_only if c in r.text]
    for c in ([10**309, "x"], b'[1e999, "x"]'):
        r = api.get("admin_low_confidence", {**days, "cursor": cursor_text(c)}, admin)
        bad_request(r, "admin_low_confidence", "cursor", sent=c)
    # the aggregate report: no one's canary, session or uid, and our sessions counted in it
    r = api.get("admin_report", days, admin)
    report = contract(r, "admin_report", 200)
    assert not leaks(r.text, world.everyone), r.text[:500]
    assert sum(d["sessions"] for d in report["days"]) >= 3 * len(world.users) + 1
    # one session in full: the one the canary was typed in holds it (by design, audited);
    # the probe, whose context recalled it, does not
    for p in world.users:
        typed = contract(api.get("admin_session", {"session_id": p.s1}, admin), "admin_session", 200)
        assert p.canary in json.dumps(typed)
        r = api.get("admin_session", {"session_id": p.probe}, admin)
        assert contract(r, "admin_session", 200) and p.canary not in r.text, r.text[:800]


# -- bounds ----------------------------------------------------------------------------------


def test_a_session_of_many_large_messages_leaves_a_digest_within_the_bounds(api: Api, firestore):
    settings = Settings()
    user = api.new_user(backend=False)
    sid = api.new_session(user)
    n = settings.message_window + 4
    for i in range(n):
        # many words, four bytes a character where it counts, no sentence end: every bound is reached
        words = " ".join(f"w{i}x{j}🙂é" for j in range(2400))
        content = words.encode()[: settings.max_content_bytes].decode("utf-8", "ignore")
        contract(api.append(user, sid, "user", content), "append_message", 201)
    assert api.end(user, sid).status == 200
    doc = firestore.wait_for(f"users/{user.uid}/memories/{sid}", lambda d: bool(d.get("search")), timeout=WAIT_S)
    search_bytes = len(doc["search"].encode())
    assert settings.memory_search_max_bytes - 8 <= search_bytes <= settings.memory_search_max_bytes
    assert 0 < len(doc["text"]) <= settings.memory_text_max_chars
    assert doc["text"].count("\n") + 1 < n  # not every message fitted: the bound, not the input, decided
    page = contract(api.get("list_memories", None, user), "list_memories", 200)
    assert [len(i["text"]) <= settings.memory_text_max_chars for i in page["items"]] == [True]
    export = contract(api.get("export_my_data", {"limit": 1}, user), "export_my_data", 200)
    (mem,) = export["memories"]
    assert len(mem["search"].encode()) <= settings.memory_search_max_bytes
    assert len(mem["text"]) <= settings.memory_text_max_chars
    # the user's list of memories (the per-user bound's bookkeeping) holds it, within MEMORY_MAX_SESSIONS
    held = (firestore.get(f"users/{user.uid}") or {}).get("memory_sessions") or []
    assert held == [sid] and len(held) <= settings.memory_max_sessions
