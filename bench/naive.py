"""The straightforward way, written plainly to compare with: the same steps as
shared/store/redis/lua/append.lua and read.lua, one Redis command (one round trip) per step,
no script and no pipeline. Not atomic (two appends can interleave between the owner
check and the counter); that is the price the scripts do not pay, besides latency.
"""

from __future__ import annotations

import time
from typing import Any


def append(  # noqa: PLR0913 - one parameter per ARGV of append.lua, to compare like with like
    r: Any,
    keys: list[str],
    owner: str,
    role: str,
    tail: str,
    mid: str,
    *,
    ttl: int,
    interval: int,
    ana_max: int,
    now: str,
) -> tuple[str, int]:
    meta, log, summ = keys
    status, cur_owner, seq_s, sc_s, lb_s, an_s, prev = r.hmget(
        meta, "status", "owner", "seq", "sc", "lb", "an", f"m:{mid}"
    )
    if status is None:
        return "missing", 0
    if owner and cur_owner != owner:
        return "forbidden", 0
    if status != "active":
        return "ended", 0
    if prev:  # exactly once per message id, as append.lua
        return "dup", 0
    seq = int(seq_s or 0) + 1
    an = int(an_s or 0) + (1 if role == "assistant" else 0)
    if an > ana_max:
        return "full", 0
    msg = f'{{"seq":{seq},{tail}'
    r.rpush(log, msg)
    lb = int(lb_s or 0) + len(msg) * 5 // 4 + 64 + len(mid) + 16
    due = 1 if seq % interval == 0 else 0
    r.hset(
        meta, mapping={"seq": seq, "last_active_at": now, "lb": lb, "an": an, f"m:{mid}": f"{seq}{'!' if due else ''}"}
    )
    for k in keys:
        r.expire(k, ttl)
    if due:
        r.get(summ)
        r.lrange(log, -(seq - int(sc_s or 0)), -1)
    return "ok", seq


def read(r: Any, keys: list[str], owner: str, n: int, ttl: int) -> tuple[str, list[str]]:
    meta, log = keys[0], keys[1]
    status, cur_owner, _seq, _end, _doc = r.hmget(meta, "status", "owner", "seq", "end_result", "fs_doc")
    if status is None:
        return "missing", []
    if owner and cur_owner != owner:
        return "forbidden", []
    out = r.lrange(log, -n, -1)
    if status == "active":
        r.hset(meta, "last_active_at", repr(time.time()))
        for k in keys:
            r.expire(k, ttl)
    r.get(keys[2])
    return "ok", out
