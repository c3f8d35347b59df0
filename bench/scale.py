"""Section 6: the same store operations with 10, 1,000 and 100,000 live sessions in
Redis, and against a three-node Redis Cluster.

Prefill: one session is built by the product's own code (create + 20 messages), its six
keys are DUMPed, and RESTOREd under new session ids in pipelines of 1,000 sessions:
every live session is byte for byte what the store writes, in a few seconds.
"""

from __future__ import annotations

import os
import random
import time
import uuid
from typing import Any

from bench.store_ops import (
    PLACEMENTS,
    UID,
    AppendFeed,
    conversation,
    interleaved,
    layer_append_fn,
    manager_for,
    placement,
    redis_pid,
    settings_for,
)

BATCH = 1000


def template(url: str, cluster: bool = False) -> tuple[list[str], list[bytes]]:
    """(key suffixes, DUMP payloads) of one real 20-message session."""
    m = manager_for(settings_for(url, cluster=cluster))
    sid = conversation(m)
    keys = m.redis.keys(sid)
    raw = _raw_client(url, cluster)
    payloads = [raw.dump(k) for k in keys]
    suffixes = [k.rsplit(":", 1)[1] for k in keys]
    kept = [(s, p) for s, p in zip(suffixes, payloads, strict=True) if p is not None]
    return [s for s, _ in kept], [p for _, p in kept]


def _raw_client(url: str, cluster: bool) -> Any:
    if cluster:
        from redis.cluster import RedisCluster

        return RedisCluster.from_url(url, decode_responses=False)
    import redis

    return redis.Redis.from_url(url, decode_responses=False)


def prefill(url: str, cluster: bool, tpl: tuple[list[str], list[bytes]], count: int, prefix: str) -> list[str]:
    raw = _raw_client(url, cluster)
    suffixes, payloads = tpl
    ttl_ms = 7200 * 1000
    sids: list[str] = []
    for start in range(0, count, BATCH):
        pipe = raw.pipeline(transaction=False)
        for _ in range(min(BATCH, count - start)):
            sid = uuid.uuid4().hex
            sids.append(sid)
            for suf, data in zip(suffixes, payloads, strict=True):
                pipe.restore(f"{prefix}:{{{sid}}}:{suf}", ttl_ms, data)
        pipe.execute()
    return sids


def measure(url: str, cluster: bool, live: list[str], *, n: int, rounds: int) -> dict[str, Any]:
    from bench.store_ops import redis_cpu

    m = manager_for(settings_for(url, cluster=cluster))
    client = m.redis.client()
    layer = m.redis
    w = m.settings.message_window
    if cluster:
        node = client.get_default_node()

        def ping(_i: int) -> Any:
            return client.ping(target_nodes=node)
    else:

        def ping(_i: int) -> Any:
            return client.ping()

    def read(_i: int) -> Any:
        out = layer.read(random.choice(live), UID, w)
        assert out.status == "ok", out.status
        return out

    res = interleaved(
        {"ping": ping, "append": layer_append_fn(m, AppendFeed(m, live=live)), "read": read},
        n,
        warmup=max(200, n // 10),
        rounds=rounds,
        server_cpu=redis_cpu(client, cluster),
    )
    return res


def _used_mb(url: str, cluster: bool) -> float:
    raw = _raw_client(url, cluster)
    if cluster:
        info = raw.info("memory", target_nodes=raw.PRIMARIES)
        return sum(int(v["used_memory"]) for v in info.values()) / 1e6
    return int(raw.info("memory")["used_memory"]) / 1e6


def section_scale(*, levels: tuple[int, ...], n: int, rounds: int, cluster_sessions: int) -> dict[str, Any]:
    from tests.harness import RedisCluster, RedisServer

    results: list[dict[str, Any]] = []
    srv = RedisServer()
    srv.start()
    try:
        tpl = template(srv.url)
        pid = redis_pid(srv.url) if (os.cpu_count() or 1) >= 2 else None
        live: list[str] = []
        for level in levels:
            t0 = time.perf_counter()
            live += prefill(srv.url, False, tpl, level - len(live), "cm")
            took = time.perf_counter() - t0
            with placement(pid, *PLACEMENTS["client and redis-server on two cores"]):
                r = measure(srv.url, False, live, n=n, rounds=rounds)
            results.append(
                {
                    "where": "single node",
                    "live_sessions": len(live),
                    **r,
                    "used_memory_mb": _used_mb(srv.url, False),
                    "prefill_s": took,
                }
            )
    finally:
        srv.stop()
    cl = RedisCluster()
    t_cluster = time.perf_counter()
    try:
        cl.start()
        started = time.perf_counter() - t_cluster
        tpl = template(cl.url, cluster=True)
        t0 = time.perf_counter()
        live = prefill(cl.url, True, tpl, cluster_sessions, "cm")
        took = time.perf_counter() - t0
        r = measure(cl.url, True, live, n=n, rounds=rounds)
        results.append(
            {
                "where": "3-node cluster",
                "live_sessions": len(live),
                **r,
                "used_memory_mb": _used_mb(cl.url, True),
                "prefill_s": took,
                "cluster_start_s": started,
            }
        )
    finally:
        cl.stop()
    return {
        "results": results,
        "prefill": (
            f"one 20-message session written by the store, its keys (meta, log, sum) DUMPed and RESTOREd under new ids "
            f"(pipelines of {BATCH} sessions); appends and reads go to a random live session; "
            f"{rounds} interleaved rounds of {n} ops each after warm-up; cluster: RedisCluster client "
            f"(the product's REDIS_CLUSTER=true), PING to one node; single node: client on CPU 0, "
            f"redis-server on CPU 1 (cluster nodes unpinned)"
        ),
    }
