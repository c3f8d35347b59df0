#!/usr/bin/env python3
"""chat-memory benchmarks (issue 6): `make bench` runs `.venv/bin/python bench/run.py`.

Sections: store (1), roundtrips (2), http (3), coldstart (4), cost (5), scale (6), chat (7), admin (8), erase (9),
faq (10: the kb responder's answers on a held-out set; counts, no services), memory_recall (11: which
past session a returning user's question recalls, the product's search_memories beside two baselines;
counts, no services), memory_cost (12: Firestore reads, Redis round trips and writes that memory costs,
for a user with 200 past sessions), counters (13: 50 session ends a second for 2 minutes from 4
processes, counted sharded and into one document: failed and retried transactions, p99, the
report against a recount).
  --quick            everything small (under a minute): a smoke test of the suite
  --only a,b         only these sections (e.g. `--quick --only store` takes seconds)
  --out PATH         where the JSON goes (default bench/results/latest.json)
Prints a table and writes the JSON. Real servers only: redis-server (started here, on
free loopback ports), the installed Firestore emulator (or FIRESTORE_EMULATOR_HOST),
functions-framework in its own process. Timings are medians of repeated rounds after a
warm-up; nothing here is a pass/fail test.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import report  # noqa: E402
from bench.common import RESULTS, busy_probe, machine  # noqa: E402

SECTIONS = (
    "store", "roundtrips", "http", "coldstart", "cost", "scale", "chat", "admin", "erase", "faq", "memory_recall",
    "memory_cost", "counters",
)  # fmt: skip

# Sizes: (full, quick)
SIZES: dict[str, tuple[Any, Any]] = {
    "store_n": (3000, 200),
    "store_warmup": (500, 50),
    "rounds": (3, 2),
    "roundtrip_ops": (500, 100),
    "http_requests": (4000, 400),
    "http_warmup": (500, 100),
    "http_connections": (8, 8),
    "coldstart_runs": (7, 2),
    "memory_sessions": (1000, 100),
    "scale_levels": ((10, 1_000, 100_000), (10, 1_000, 10_000)),
    "scale_n": (2000, 300),
    "cluster_sessions": (1000, 100),
    "chat_turns": (300, 30),
    "chat_warmup": (30, 5),
    "admin_sessions": (10_000, 1_000),
    "admin_reports": (20, 5),
    "erase_sessions": (1000, 100),
    "memory_past_sessions": (200, 40),
    "counter_rate": (50, 20),  # session ends a second, counted by several processes
    "counter_seconds": (120, 10),
}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="small sizes: a smoke run of every section")
    ap.add_argument("--only", default="", help=f"comma-separated sections of {','.join(SECTIONS)}")
    ap.add_argument("--out", type=Path, default=RESULTS / "latest.json")
    args = ap.parse_args(argv)
    only = [s.strip() for s in args.only.split(",") if s.strip()] or list(SECTIONS)
    bad = [s for s in only if s not in SECTIONS]
    if bad:
        ap.error(f"unknown section(s) {bad}; choose from {SECTIONS}")
    size = {k: v[1] if args.quick else v[0] for k, v in SIZES.items()}
    # The product logs one JSON line per operation; in-process sections would time the
    # log handler writing to this terminal. The HTTP section keeps the product's logging.
    logging.disable(logging.CRITICAL)
    RESULTS.mkdir(parents=True, exist_ok=True)

    started = time.time()
    out: dict[str, Any] = {
        "command": "bench/run.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "mode": "quick" if args.quick else "full",
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
        "machine": machine(),
        "sizes": size,
        "sections": {},
    }
    from tests.harness import RedisServer

    # A SIGTERM (make interrupted, CI timeout) unwinds like Ctrl-C: every server this
    # run started is stopped by its finally block, none is left behind.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    redis_srv = RedisServer()
    redis_srv.start()
    try:
        for name in only:
            t0 = time.time()
            print(f"[bench] {name} ...", file=sys.stderr, flush=True)
            busy = busy_probe()
            try:
                out["sections"][name] = run_section(name, redis_srv, size)
            except Exception as exc:  # one broken section must not lose the others' numbers
                import traceback

                traceback.print_exc()
                out["sections"][name] = {"error": f"{type(exc).__name__}: {exc}"}
            out["sections"][name]["seconds"] = round(time.time() - t0, 1)
            out["sections"][name]["machine_busy_before"] = busy
            print(f"[bench] {name} done in {time.time() - t0:.1f} s", file=sys.stderr, flush=True)
    finally:
        redis_srv.stop()
    out["seconds"] = round(time.time() - started, 1)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2) + "\n")
    print(report.render(out))
    print(f"\nJSON: {os.path.relpath(args.out, Path.cwd())}   ({out['seconds']} s)")
    return 1 if any("error" in s for s in out["sections"].values()) else 0


def run_section(name: str, redis_srv: Any, size: dict[str, Any]) -> dict[str, Any]:  # noqa: PLR0911, PLR0912 - one per section
    # Each section's modules are imported when it runs: `--only store` needs no Firestore.
    if name == "store":
        from bench.store_ops import section_store

        return section_store(redis_srv.url, n=size["store_n"], warmup=size["store_warmup"], rounds=size["rounds"])
    if name == "roundtrips":
        from bench.store_ops import section_roundtrips

        return section_roundtrips(redis_srv.url, k=size["roundtrip_ops"])
    if name == "http":
        from bench.http_load import section_http

        return section_http(
            redis_srv.url,
            requests=size["http_requests"],
            warmup=size["http_warmup"],
            connections=size["http_connections"],
            rounds=size["rounds"],
        )
    if name == "coldstart":
        from bench.coldstart import section_coldstart

        return section_coldstart(redis_srv.url, runs=size["coldstart_runs"])
    if name == "faq":
        from bench.faq_quality import section_faq

        return section_faq()
    if name == "memory_cost":
        from bench.memory_cost import section_memory_cost

        return section_memory_cost(redis_srv.url, past_sessions=size["memory_past_sessions"])
    if name == "counters":
        from bench.counters import section_counters

        return section_counters(rate=size["counter_rate"], seconds=size["counter_seconds"])
    if name == "memory_recall":
        from bench.memory_recall import section_memory_recall

        return section_memory_recall()
    if name == "erase":
        from bench.erase_user import section_erase

        return section_erase(redis_srv.url, sessions=size["erase_sessions"])
    if name == "admin":
        from bench.admin_report import section_admin

        return section_admin(sessions=size["admin_sessions"], days=90, reports=size["admin_reports"])
    if name == "chat":
        from bench.chat_turn import section_chat

        return section_chat(redis_srv.url, turns=size["chat_turns"], warmup=size["chat_warmup"])
    if name == "cost":
        from bench.cost import section_cost

        return section_cost(redis_srv.url, memory_sessions=size["memory_sessions"])
    if name == "scale":
        from bench.scale import section_scale

        return section_scale(
            levels=size["scale_levels"],
            n=size["scale_n"],
            rounds=size["rounds"],
            cluster_sessions=size["cluster_sessions"],
        )
    raise ValueError(name)


if __name__ == "__main__":
    sys.exit(main())
