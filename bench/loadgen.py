#!/usr/bin/env python3
"""A small closed-loop HTTP/1.1 load generator, run in its own process.

C keep-alive connections, each sending its next request as soon as the previous answer
is complete; a bounded number of requests (warm-up, then rounds). Requests are built
before the clock starts. Prints JSON: per round the wall time, status counts and every
latency in µs. Standard library only (selectors, raw sockets): its own cost per
request is a few tens of µs, which matters on a two-core machine.

    loadgen.py --port P --kind get_context|append|empty --sids a,b --uid U
               --requests N --warmup W --connections C --rounds R [--token ID_TOKEN | --token-file F]
"""

from __future__ import annotations

import argparse
import json
import selectors
import socket
import sys
import time
import uuid

USER = "What did you say about resetting my password a moment ago?"


def build_requests(
    kind: str, port: int, sids: list[str], uid: str, count: int, *, token: str = "", tokens: list[str] | None = None
) -> list[bytes]:
    host = f"127.0.0.1:{port}"
    # who calls: a Firebase ID token (one, or the i-th of many), or (AUTH_DISABLED) a uid on trust
    who = f"Authorization: Bearer {token}" if token else f"X-User-Id: {uid}"
    out = []
    for i in range(count):
        if tokens:
            who = f"Authorization: Bearer {tokens[i % len(tokens)]}"
        sid = sids[i % len(sids)] if sids else ""
        if kind == "append":
            body = json.dumps(
                {
                    "session_id": sid,
                    "role": "user",
                    "content": f"{USER} ({i})",
                    "client_message_id": uuid.uuid4().hex[:20],
                }
            ).encode()
            head = (
                f"POST / HTTP/1.1\r\nHost: {host}\r\n{who}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\n\r\n"
            ).encode()
            out.append(head + body)
        elif kind == "get_context":
            out.append(f"GET /?session_id={sid} HTTP/1.1\r\nHost: {host}\r\n{who}\r\n\r\n".encode())
        else:
            out.append(f"GET / HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
    return out


def _response_end(buf: bytes) -> tuple[int, int] | None:
    """(status, total length) of the first complete response in buf, or None."""
    end = buf.find(b"\r\n\r\n")
    if end < 0:
        return None
    head = buf[:end].decode("latin-1")
    lines = head.split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    length = 0
    for line in lines[1:]:
        k, _, v = line.partition(":")
        k = k.strip().lower()
        if k == "content-length":
            length = int(v.strip())
        elif k == "transfer-encoding":
            raise RuntimeError("chunked responses are not supported by this load generator")
    total = end + 4 + length
    return (status, total) if len(buf) >= total else None


def run(port: int, reqs: list[bytes], connections: int) -> dict[str, object]:
    sel = selectors.DefaultSelector()
    nxt = 0
    done = 0
    total = len(reqs)
    lat: list[float] = []
    statuses: dict[str, int] = {}
    reconnects = 0
    clock = time.perf_counter_ns

    def connect() -> socket.socket:
        s = socket.create_connection(("127.0.0.1", port))
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return s

    state: dict[socket.socket, list] = {}  # sock -> [start_ns, buffer, request]

    def send(s: socket.socket) -> None:
        nonlocal nxt
        req = reqs[nxt]
        nxt += 1
        state[s] = [clock(), b"", req]
        s.sendall(req)

    t_start = clock()
    for _ in range(min(connections, total)):
        s = connect()
        sel.register(s, selectors.EVENT_READ)
        send(s)
    while done < total:
        for key, _ in sel.select(timeout=30):
            s = key.fileobj
            st = state[s]
            chunk = s.recv(65536)
            if not chunk:
                # the server closed this keep-alive connection: reconnect, send again
                sel.unregister(s)
                s.close()
                reconnects += 1
                s2 = connect()
                sel.register(s2, selectors.EVENT_READ)
                state[s2] = [clock(), b"", st[2]]
                s2.sendall(st[2])
                del state[s]
                continue
            st[1] += chunk
            got = _response_end(st[1])
            if got is None:
                continue
            status, _length = got
            lat.append((clock() - st[0]) / 1000)
            statuses[str(status)] = statuses.get(str(status), 0) + 1
            done += 1
            if nxt < total:
                send(s)
    wall = (clock() - t_start) / 1e9
    for s in list(state):
        s.close()
    return {"wall_s": wall, "statuses": statuses, "lat_us": lat, "reconnects": reconnects}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--kind", required=True, choices=["get_context", "append", "empty"])
    ap.add_argument("--sids", default="")
    ap.add_argument("--uid", default="bench-user")
    ap.add_argument("--requests", type=int, required=True)
    ap.add_argument("--warmup", type=int, default=0)
    ap.add_argument("--connections", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--token", default="", help="a Firebase ID token sent as Authorization: Bearer")
    ap.add_argument("--token-file", default="", help="ID tokens, one a line: request i sends the i-th")
    a = ap.parse_args()
    sids = [x for x in a.sids.split(",") if x]
    reqs = build_requests(
        a.kind,
        a.port,
        sids,
        a.uid,
        a.warmup + a.requests * a.rounds,
        token=a.token,
        tokens=open(a.token_file).read().split() if a.token_file else None,  # noqa: SIM115 - read once
    )
    out: dict[str, object] = {}
    if a.warmup:
        w = run(a.port, reqs[: a.warmup], a.connections)
        out["warmup"] = {"statuses": w["statuses"], "wall_s": w["wall_s"]}
    rounds = []
    for r in range(a.rounds):
        base = a.warmup + r * a.requests
        rounds.append(run(a.port, reqs[base : base + a.requests], a.connections))
    out["rounds"] = rounds
    json.dump(out, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
