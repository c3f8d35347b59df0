"""The printed table (Markdown, so BENCHMARKS.md can hold it as printed)."""

from __future__ import annotations

from typing import Any


def _f(x: Any, nd: int = 0) -> str:
    if x is None:
        return "-"
    if isinstance(x, float):
        return f"{x:,.{nd}f}"
    return f"{x:,}" if isinstance(x, int) else str(x)


def _table(head: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def render(out: dict[str, Any]) -> str:
    m = out["machine"]
    parts = [
        f"## chat-memory benchmarks ({out['mode']} run, {out['started_at']})",
        "",
        f"Machine: {m['cpu']}, {m['cores']} cores; Python {m['python']}; redis-server {m['redis_server']}, "
        f"redis-py {m['redis_py']}; functions-framework {m['functions_framework']} on gunicorn {m['gunicorn']}.",
    ]
    renderers = {"store": _store, "roundtrips": _roundtrips, "http": _http, "coldstart": _coldstart,
                 "cost": _cost, "scale": _scale, "chat": _chat, "admin": _admin, "erase": _erase,
                 "faq": _faq, "memory_recall": _memory_recall, "memory_cost": _memory_cost}  # fmt: skip
    for name, fn in renderers.items():
        if name not in out["sections"]:
            continue
        s = out["sections"][name]
        parts.append("")
        if "error" in s:
            parts.append(f"### {name}: FAILED: {s['error']}")
        else:
            parts.append(fn(s))
        b = s.get("machine_busy_before") or {}
        if b:
            parts.append(
                f"\n_({s.get('seconds', '?')} s; other load on the machine just before: {b['busy_pct']}% "
                f"of all cores busy, load average {b['loadavg_1m']})_"
            )
    return "\n".join(parts)


def _faq(s: dict[str, Any]) -> str:
    head = ["### 10. kb responder: answers on a held-out set", "", f"How: {s.get('how', s.get('heldout', ''))}", ""]
    rows = []
    for name in ("questions", "conversations"):
        r = s[name]
        rows.append([name, r["n"], f"{r['top1']} ({_f(r['accuracy_at_1'], 3)})", r["answered_right"],
                     r["answered_wrong"], r["i_dont_know"]])  # fmt: skip
    table = _table(["set", "n", "accuracy@1", "answered right", "answered from another entry", "I don't know"], rows)
    off = s["off_topic"]
    share = _f(off["i_dont_know_share"], 3)
    tail = f'\n\nOff-topic: {off["i_dont_know"]} of {off["n"]} answered "I don\'t know" ({share})'
    if off["answered"]:
        answered = [f"{a['q']!r} -> {a['answered']} ({a['confidence']})" for a in off["answered"]]
        tail += "; answered: " + "; ".join(answered)
    misses = sum(len(s[name]["misses"]) for name in ("questions", "conversations"))
    tail += f".\n\n{misses} on-topic questions not answered from their entry (listed in the JSON, or by "
    tail += "`.venv/bin/python -m bench.faq_quality --misses`)"
    return "\n".join(head) + "\n" + table + tail + "."


def _memory_cost(s: dict[str, Any]) -> str:
    if "skipped" in s:
        return f"### 12. returning users' memory: what it costs\n\nskipped: {s['skipped']}"
    head = ["### 12. returning users' memory: what it costs", "",
            f"How: a user with {s['past_sessions']} past sessions starts {s['conversations']} new conversations "
            "(after one warm-up); counted at the clients (Firestore documents on the emulator, Redis round "
            "trips)", ""]  # fmt: skip
    rows = []
    for name, label in (("embeddings_none", "memory (BM25)"), ("embeddings_local", "memory, EMBEDDINGS=local"),
                        ("no_memory", "no memory wired")):  # fmt: skip
        r = s[name]
        rows.append([label, r["first_message_firestore_reads"], r["later_message_firestore_reads_max"],
                     r["first_message_redis_round_trips"], r["later_message_redis_round_trips"],
                     r["context_read_redis_round_trips_max"], r["memories_in_context_min"],
                     r["first_message_ms_median"], r["later_message_ms_median"]])  # fmt: skip
    table = _table(["", "1st user message: Firestore reads", "later ones: reads (max)", "1st: Redis RTs",
                    "later: Redis RTs", "context read: Redis RTs (max)", "memories in context (min)",
                    "1st message ms (median)", "later ones ms (median)"], rows)  # fmt: skip
    w = s["end_trigger_writes"]
    tail = (f"\n\nA user message with memory takes {s['first_message_ms_ratio_to_no_memory']}x the time it "
            f"takes without when it is the conversation's first (its recall reads the memories), "
            f"{s['later_message_ms_ratio_to_no_memory']}x later (the recall ranks the cached ones). "
            f"An ended session's trigger writes {w['with_memory']} documents "
            f"with memory, {w['without_memory']} without: {w['extra']} extra (the digest).")  # fmt: skip
    return "\n".join(head) + "\n" + table + tail


def _memory_recall(s: dict[str, Any]) -> str:
    title = "### 11. returning users' memory: which past session a question recalls"
    head = [title, "", f"How: {s.get('how', '')}", ""]
    labels = {
        "product": "product (search_memories)",
        "product_local_embeddings": "product, EMBEDDINGS=local (BM25 + find_nearest, fused)",
        "recency": "baseline: the 3 most recent sessions",
        "summary": "baseline: BM25 over the rolling summary",
        "transcript": "reference: BM25 over the transcript",
    }
    rows = []
    for name, r in s["rankers"].items():
        if not r["available"]:
            rows.append([labels.get(name, name), f"not available ({r['why']})", "-", "-", "-"])
            continue
        rows.append([labels.get(name, name), f"{r['hits_at_1']}/{r['probes']} ({_f(r['recall_at_1'], 3)})",
                     f"{r['hits_at_3']}/{r['probes']} ({_f(r['recall_at_3'], 3)})", r["probes"],
                     r["candidates_median"]])  # fmt: skip
    table = _table(["ranker", "recall@1", "recall@3", "probes", "median candidates"], rows)
    prod = s["rankers"]["product"]
    target = s["target_recall_at_3"]
    if prod["available"]:
        verdict = f"{_f(prod['recall_at_3'], 3)}: " + ("met" if s["target_met"] else "**not met**")
    else:
        verdict = "not measured (product: not available)"
    return "\n".join(head) + "\n" + table + f"\n\nTarget: product recall@3 >= {target}: {verdict}."


def _erase(s: dict[str, Any]) -> str:
    if "skipped" in s:
        return f"### 9. erase a user: skipped ({s['skipped']})"
    head = ["### 9. delete_my_data: a user with many sessions", "", f"How: {s.get('how', '')}", ""]
    table = _table(
        ["sessions", "erased", "seconds", "ms per session", "share of the 540 s limit", "second call: same receipt"],
        [[s["sessions"], s["erased_sessions"], _f(s["erase_s"], 1), _f(s["ms_per_session"], 1),
          _f(s["share_of_limit"], 3), s["second_call_same_receipt"]]],
    )  # fmt: skip
    return "\n".join(head) + "\n" + table


def _admin(s: dict[str, Any]) -> str:
    if "skipped" in s:
        return f"### 8. admin report: skipped ({s['skipped']})"
    head = ["### 8. admin_report", "", f"How: {s.get('how', '')}", ""]
    table = _table(
        ["sessions", "days", "reports", "p50 ms", "p99 ms", "Firestore reads per report"],
        [[s["sessions"], s["days"], s["reports"], _f(s["latency_p50_ms"], 1), _f(s["latency_p99_ms"], 1),
          s["firestore_reads_per_report"]]],
    )  # fmt: skip
    return "\n".join(head) + "\n" + table


def _chat(s: dict[str, Any]) -> str:
    rows = []
    for name, r in s.items():
        if isinstance(r, dict) and "latency_p50_ms" in r:
            rows.append([name, _f(r["latency_p50_ms"], 1), _f(r["latency_p99_ms"], 1), _f(r["cpu_mean_ms"], 1),
                         _f(r["cpu_p99_ms"], 0), r["turns"]])  # fmt: skip
    head = ["### 7. chat turn over HTTP", "", f"How: {s.get('how', '')}", ""]
    table = _table(["path", "p50 ms", "p99 ms", "server CPU ms/turn (mean)", "CPU p99 ms", "turns"], rows)
    tail = f"\n\nRatios (chat / three calls): latency p50 {s.get('latency_ratio_p50')}, CPU {s.get('cpu_ratio_mean')}"
    return "\n".join(head) + "\n" + table + tail


def _store(s: dict[str, Any]) -> str:
    head = ["operation", "median µs", "p99 µs", "median vs PING", "client CPU µs/op", "redis CPU µs/op",
            "round medians µs"]  # fmt: skip
    parts = []
    for place, res in s["placements"].items():
        rows = [
            [
                k,
                _f(v["median"], 1),
                _f(v["p99"], 1),
                f"{v['x_ping']:.2f}x",
                _f(v.get("cpu_us"), 1),
                _f(v.get("server_cpu_us"), 1),
                " / ".join(_f(x, 1) for x in v["round_medians"]),
            ]
            for k, v in res.items()
        ]
        n = next(iter(res.values()))
        parts.append(
            f"{place} ({n['rounds']} rounds x {n['n_per_round']} ops, after warm-up):\n\n" + _table(head, rows)
        )
    two = next((res for place, res in s["placements"].items() if "two cores" in place), None)
    if two:
        verdicts = []
        for name, target in (("add_message (SessionManager)", 2.0), ("get_context_for_llm (SessionManager)", 1.7)):
            got = two[name]["x_ping"]
            verdicts.append(
                f"{name} {got:.2f}x PING (target <= {target}x): " + ("met" if got <= target else "**NOT met**")
            )
        parts.append("Targets, two cores: " + "; ".join(verdicts) + ".")
    cpu = s.get("client_cpu")
    if cpu:
        names = list(cpu)
        part_names: list[str] = []
        for v in cpu.values():
            part_names += [p for p in v["parts"] if p not in part_names]
        rows = [[p, *(_f(cpu[n]["parts"].get(p), 1) for n in names)] for p in part_names]
        rows.append(["**total (profiled)**", *(_f(cpu[n]["profiled_us_per_op"], 1) for n in names)])
        parts.append(
            "Where the client's CPU goes (cProfile, own time per op in µs, by the file a function lives in; "
            "profiling slows Python code more than C code, so read shares, not absolute times):\n\n"
            + _table(["part", *names], rows)
        )
    return (
        "### 1. Store operations in-process, local redis-server\n\n"
        + "\n\n".join(parts)
        + f"\n\nWorkload: {s['workload']}."
    )


def _roundtrips(s: dict[str, Any]) -> str:
    rows = []
    for k, v in s["results"].items():
        top = ", ".join(f"{c} {n:g}" for c, n in list(v["by_command"].items())[:8])
        rows.append([k, _f(v["round_trips_per_op"], 2), _f(v["commands_per_op"], 2), _f(v["server_us_per_op"], 1), top])
    head = ["operation", "round trips/op", "commands/op", "server µs/op", "commands/op by name (top 8)"]
    out = f"### 2. Round trips and commands per operation (counted over {s['ops']} ops)\n\n" + _table(head, rows)
    kinds = s.get("append_by_kind")
    if kinds:
        krows = [[k, v["appends"], _f(v["mean"], 2), v["max"]] for k, v in kinds.items()]
        worst = max((v["max"] for k, v in kinds.items() if not k.startswith("summary")), default=0)
        out += (
            "\n\nRedis commands per RedisLayer append by kind (each append counted on its own):\n\n"
            + _table(["kind", "appends", "commands (mean)", "commands (max)"], krows)
            + f"\n\nTarget: at most 10 commands per append, summary claims apart: max {worst}, "
            + ("met." if worst <= 10 else "**NOT met**.")
        )
    return out


def _http(s: dict[str, Any]) -> str:
    rows = [
        [
            k,
            _f(v["rps"], 0),
            _f(v["p50_ms"], 2),
            _f(v["p99_ms"], 2),
            f"{v['vs_empty']:.0%}",
            _f(v.get("server_cpu_us_per_req"), 0),
            f"{v['cpu_vs_empty']:.2f}x" if v.get("cpu_vs_empty") else "-",
            _f(v["errors"]),
            " / ".join(_f(x, 0) for x in v["round_rps"]),
        ]
        for k, v in s["results"].items()
    ]
    head = ["function", "req/s", "p50 ms", "p99 ms", "req/s vs empty", "server CPU µs/req", "CPU vs empty",
            "non-2xx", "round req/s"]  # fmt: skip
    return (
        f"### 3. Through HTTP: functions-framework, one instance ({s['server']})\n\n"
        + _table(head, rows)
        + f"\n\nLoad: {s['load']}."
        + _http_targets(s["results"])
    )


# Issue 15: server CPU per request against the empty function's, same run.
_HTTP_TARGETS = {"": 1.5, ", real ID token": 2.0}


def _http_targets(results: dict[str, Any]) -> str:
    lines = []
    for suffix, limit in _HTTP_TARGETS.items():
        for fn in ("get_context", "append_message"):
            for conns in ("8 connections", "1 connection"):
                v = results.get(f"{fn}{suffix}, {conns}", {}).get("cpu_vs_empty")
                if v is not None:
                    verdict = "met" if v <= limit else "**not met**"
                    lines.append(f"{fn}{suffix}, {conns}: {v:.2f}x (target <= {limit}x: {verdict})")
    if not lines:
        return ""
    return "\n\nIssue 15 targets, server CPU per request vs the empty function: " + "; ".join(lines) + "."


def _coldstart(s: dict[str, Any]) -> str:
    rows = [
        [k, _f(v["median_ms"], 0), _f(v["min_ms"], 0), _f(v["max_ms"], 0), _f(v.get("cpu_median_ms"), 0), v["runs"]]
        for k, v in s["results"].items()
    ]
    head = ["variant", "wall ms (median)", "min", "max", "server CPU ms (median)", "runs"]
    txt = f"### 4. Cold start: fresh process to first answered request ({s['runs']} runs each)\n\n" + _table(head, rows)
    imp = s.get("imports")
    if imp:
        txt += (
            f"\n\nWhat the lazy path avoids: importing {', '.join(imp['modules'])} after the get_context path "
            f"is loaded costs a median {imp['median_ms']:.0f} ms more ({imp['runs']} fresh processes), "
            f"{imp['extra_modules']} more modules. What they pull in, largest first (-X importtime, cumulative, "
            "nested entries overlap): " + ", ".join(f"{n} {ms:.0f} ms" for n, ms in imp["top"]) + "."
        )
        if imp.get("firebase_admin_already_loaded"):
            txt += " firebase_admin itself is already imported by firebase_functions on the lazy path."
    res = s["results"]
    floor = next((v["median_ms"] for k, v in res.items() if k.startswith("empty function")), None)
    if floor:
        ratios = []
        for k, v in res.items():
            if k.startswith(("get_context as shipped", "chat as shipped")):
                r = v["median_ms"] / floor
                target = " (target <= 1.25x: " + ("met" if r <= 1.25 else "**not met**") + ")"
                ratios.append(f"{k.split(' (')[0]} {r:.2f}x" + (target if k.startswith("get_context") else ""))
        txt += "\n\nIssue 15, cold start vs the empty function (medians, same run): " + "; ".join(ratios) + "."
    return txt


def _cost(s: dict[str, Any]) -> str:
    parts = ["### 5. Cost per conversation"]
    fs = s.get("firestore", {})
    if fs.get("skipped"):
        parts.append(f"\nFirestore: skipped: {fs['skipped']}")
    elif fs:
        rows = [[ph, v["reads"], v["writes"], v["redis_round_trips"]] for ph, v in fs["phases"].items()]
        rows.append(["**total**", fs["total_reads"], fs["total_writes"], fs["total_redis_round_trips"]])
        # create 1, end 2 (session, analytics), trigger 3 (user, its counted marker, the day's
        # rollup) + one per distinct KB entry (+ one per answer below the threshold: none here)
        target = 6 + fs["kb_entries"]
        parts.append(
            f"\nFirestore documents for one {fs['messages']}-message session citing {fs['kb_entries']} "
            "distinct KB entries (counted at the client, against the emulator):\n\n"
            + _table(["phase", "doc reads", "doc writes", "Redis round trips"], rows)
            + f"\n\nTarget (docs/data-model.md, Costs): writes <= 6 + {fs['kb_entries']} = {target}: "
            + ("met." if fs["total_writes"] <= target else "**NOT met**.")
        )
    mem = s.get("redis_memory")
    if mem:
        rows = [[k, _f(v)] for k, v in mem["memory_usage_by_key"].items()]
        parts.append(
            f"\nRedis memory per active session ({mem['messages']} messages each):\n\n"
            + _table(["key", "MEMORY USAGE bytes"], rows)
            + f"\n\nSum of MEMORY USAGE: {mem['memory_usage_total']:,} bytes; INFO used_memory delta over "
            f"{mem['sessions']:,} sessions / {mem['sessions']:,}: {mem['used_memory_per_session']:,.0f} bytes "
            f"(~{mem['sessions_per_gb']:,.0f} sessions per GB)."
        )
        if mem.get("content_bytes"):
            ratio = mem["used_memory_vs_content"]
            parts.append(
                f"\nWhat Redis must hold of such a session, as JSON records (window, messages no summary "
                f"covers yet, question/answer pairs, summary): {mem['content_bytes']:,} bytes; as text only "
                f"(each distinct message's content once, the summary's text): {mem['text_bytes']:,} bytes. "
                f"used_memory per session is **{ratio:.2f}x** the records and {mem['used_memory_vs_text']:.2f}x "
                "the text. Target: at most 1.0x the records: " + ("met." if ratio <= 1.0 else "**NOT met**.")
            )
    return "\n".join(parts)


def _scale(s: dict[str, Any]) -> str:
    rows = [
        [
            v["where"],
            _f(v["live_sessions"]),
            _f(v["ping"]["median"], 1),
            _f(v["append"]["median"], 1),
            _f(v["append"]["p99"], 1),
            _f(v["append"].get("server_cpu_us"), 1),
            _f(v["read"]["median"], 1),
            _f(v["read"]["p99"], 1),
            _f(v["read"].get("server_cpu_us"), 1),
            _f(v["used_memory_mb"], 1),
            _f(v.get("prefill_s"), 1),
        ]
        for v in s["results"]
    ]
    head = ["redis", "live sessions", "PING µs", "append µs", "append p99", "append redis CPU µs", "read µs",
            "read p99", "read redis CPU µs", "used_memory MB", "prefill s"]  # fmt: skip
    return (
        "### 6. Scale: RedisLayer append / context read with N live sessions\n\n"
        + _table(head, rows)
        + f"\n\nPrefill: {s['prefill']}."
    )
