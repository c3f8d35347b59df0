"""The admin functions over HTTP with real Auth-emulator tokens: an admin (the `admin`
claim, given by scripts/grant_role.py), a non-admin (a session's own owner), no token. The
rollups they read are written by the emulated session-end trigger."""

from __future__ import annotations

import csv
import io
import os
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from tests.clients import Api, User
from tests.e2e.test_api import contract

ROOT = Path(__file__).resolve().parents[2]
ADMIN_FUNCTIONS = ("admin_report", "admin_low_confidence", "admin_session")


def grant(*args: str) -> subprocess.CompletedProcess[str]:
    """``make grant`` as the banner and the "Not an admin" page print it: no emulator host and
    no project in the environment; the script finds the running stack's Auth emulator."""
    env = {k: v for k, v in os.environ.items() if k not in ("FIREBASE_AUTH_EMULATOR_HOST", "GCLOUD_PROJECT")}
    env.pop("MAKEFLAGS", None)
    return subprocess.run(
        ["make", "-s", "-C", str(ROOT), "grant", *args],
        env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def make_admin(api: Api) -> User:
    user = api.new_user(backend=False)
    out = grant("ROLE=admin", f"UID={user.uid}")
    assert out.returncode == 0, out.stderr
    assert "using the local Auth emulator" in out.stdout and "admin granted" in out.stdout, out.stdout
    user.token = api.refreshed_token(user.refresh_token)
    return user


def test_granting_a_role_to_an_unknown_uid_says_so_plainly():
    out = grant("ROLE=admin", "UID=no-such-user-here")
    assert out.returncode != 0
    assert "no user 'no-such-user-here'" in out.stderr and "Traceback" not in out.stderr, out.stderr


@pytest.fixture(scope="module")
def ended(api: Api) -> dict[str, Any]:
    """A session of an end user with one weak answer (a question the FAQ cannot answer),
    ended and counted by the emulated trigger."""
    owner = api.new_user(backend=False)
    sid = api.new_session(owner)
    weak = contract(api.chat(owner, sid, "what is the best pizza recipe in naples", cmid="w1"), "chat", 201)
    contract(api.chat(owner, sid, "How do I return an item I bought?", cmid="w2"), "chat", 201)
    assert api.end(owner, sid).status == 200
    return {"owner": owner, "sid": sid, "weak": weak}


def test_every_admin_function_needs_the_admin_claim(api: Api, ended: dict[str, Any]):
    params = {"admin_session": {"session_id": ended["sid"]}}
    for fn in ADMIN_FUNCTIONS:
        assert api.get(fn, params.get(fn)).status == 401
        body = contract(api.get(fn, params.get(fn), ended["owner"]), fn, 403)  # even the session's owner
        assert body["error"]["code"] == "permission_denied"


def test_an_admin_reads_the_report_the_weak_answers_and_a_session(api: Api, ended: dict[str, Any], firestore):
    admin = make_admin(api)
    today = time.strftime("%Y-%m-%d", time.gmtime())
    deadline = time.monotonic() + 30  # the emulated trigger counts the session shortly after its end
    while True:
        page = contract(api.get("admin_low_confidence", {"from": today, "to": today, "limit": 200}, admin),
                        "admin_low_confidence", 200)  # fmt: skip
        mine = [it for it in page["items"] if it["session_id"] == ended["sid"]]
        if mine or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert [it["query"] for it in mine] == ["what is the best pizza recipe in naples"]
    assert mine[0]["confidence"] == ended["weak"]["answer"]["metadata"]["confidence"] < 0.5

    report = contract(api.get("admin_report", {"from": today, "to": today}, admin), "admin_report", 200)
    day = report["days"][0]
    assert day["sessions"] >= 1 and day["low_confidence"] >= 1 and sum(report["confidence_histogram"]) >= 2
    assert report["unused_kb_entries"], "the sample FAQ has entries no test cited"

    csv_reply = api.get("admin_low_confidence", {"from": today, "to": today, "format": "csv"}, admin)
    assert csv_reply.status == 200 and csv_reply.headers["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(csv_reply.text)))
    assert any(r["session_id"] == ended["sid"] for r in rows)

    one = contract(api.get("admin_session", {"session_id": ended["sid"]}, admin), "admin_session", 200)
    assert one["session"]["owner"] == ended["owner"].uid and len(one["analytics"]) == 2
    audit = firestore.list_documents("admin_audit")
    assert any(d.get("admin") == admin.uid and d.get("session_id") == ended["sid"] for d in audit)
    assert all("response" not in d and "query" not in d for d in audit)  # who, what, when; no content


def test_erasure_over_http(api: Api, firestore):
    """delete_session (the owner only), delete_my_data (confirmed; the same receipt twice),
    admin_erase_user (admins only), through the emulated functions with real tokens; the
    emulated trigger runs on every tombstone and counts nothing back."""
    user, other = api.new_user(backend=False), api.new_user(backend=False)
    one, two = api.new_session(user), api.new_session(user)
    for sid in (one, two):
        contract(api.chat(user, sid, "How long does shipping take?", cmid=f"e-{sid[:6]}"), "chat", 201)
    assert api.end(user, two).status == 200
    firestore.wait_for(f"users/{user.uid}", lambda d: d.get("total_sessions") == 1)

    body = contract(api.post("delete_session", {"session_id": one}, other), "delete_session", 403)
    assert body["error"]["code"] == "permission_denied"
    erased = contract(api.post("delete_session", {"session_id": one}, user), "delete_session", 200)
    assert erased["erased"]["sessions"] == 1 and erased["erased"]["messages"] == 2
    assert api.context(user, one).status == 404

    contract(api.post("delete_my_data", {}, user), "delete_my_data", 400)  # confirm is required
    receipt = contract(api.post("delete_my_data", {"confirm": True}, user), "delete_my_data", 200)
    assert receipt["complete"] and receipt["erased"]["sessions"] == 1
    assert contract(api.post("delete_my_data", {"confirm": True}, user), "delete_my_data", 200) == receipt
    time.sleep(1.0)  # the tombstones' trigger events have run; none recreated the user
    assert firestore.get(f"users/{user.uid}") is None and firestore.get(f"analytics/{two}") is None

    contract(api.post("admin_erase_user", {"user_id": other.uid}, user), "admin_erase_user", 403)
    admin = make_admin(api)
    done = contract(api.post("admin_erase_user", {"user_id": other.uid}, admin), "admin_erase_user", 200)
    assert done["complete"] and done["erased"]["sessions"] == 0
