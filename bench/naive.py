"""The straightforward way, written plainly to compare with: the same steps as
shared/store/lua/append.lua and read.lua, one Redis command (one round trip) per step,
no script and no pipeline. Not atomic (two appends can interleave between the owner
check and the counter); that is the price the scripts do not pay, besides latency.
"""

from __future__ import annotations

from typing import Any


def append(  # noqa: PLR0913 - one parameter per ARGV of append.lua, to compare like with like
    r: Any,
    keys: list[str],
    owner: str,
    role: str,
    tail: str,
    mid: str,
    *,
    window: int,
    ttl: int,
    interval: int,
    ana_max: int,
    now: str,
    content_json: str,
    ana_tail: str,
    pend_max: int,
) -> tuple[str, int]:
    meta, msgs, pend, ana, cmids, summ = keys
    if not r.exists(meta):
        return "missing", 0
    cur_owner, status = r.hmget(meta, "owner", "status")
    if owner and cur_owner != owner:
        return "forbidden", 0
    if status != "active":
        return "ended", 0
    idkey = f"mid:{mid}"  # exactly once per message id, as append.lua
    if r.hget(cmids, idkey):
        return "dup", 0
    if role == "assistant" and r.llen(ana) >= ana_max:
        return "full", 0
    seq = int(r.hincrby(meta, "seq", 1))
    msg = f'{{"seq":{seq},{tail}'
    r.rpush(msgs, msg)
    r.ltrim(msgs, -window, -1)
    r.rpush(pend, msg)
    r.ltrim(pend, -pend_max, -1)
    if role == "user":
        r.hset(meta, "pending_query", content_json)
    elif role == "assistant":
        q = r.hget(meta, "pending_query") or "null"
        r.rpush(ana, f'{{"seq":{seq},"query":{q},{ana_tail}')
        r.hdel(meta, "pending_query")
    r.hset(meta, "last_active_at", now)
    due = 1 if seq % interval == 0 else 0
    r.hset(cmids, idkey, f'{{"seq":{seq},"summary_due":{due}}}')
    for k in keys:
        r.expire(k, ttl)
    if due:
        r.get(summ)
        r.lrange(pend, 0, -1)
    return "ok", seq


def read(r: Any, keys: list[str], owner: str, n: int, ttl: int) -> tuple[str, list[str]]:
    meta, msgs = keys[0], keys[1]
    if not r.exists(meta):
        return "missing", []
    cur_owner, status, _seq, _end = r.hmget(meta, "owner", "status", "seq", "end_result")
    if owner and cur_owner != owner:
        return "forbidden", []
    out = r.lrange(msgs, -n, -1)
    if status == "active":
        for k in keys:
            r.expire(k, ttl)
    r.get(keys[5])
    return "ok", out
