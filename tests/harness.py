"""Real services for the tests: redis-server processes (single and a 3-node cluster) and
the addresses of the emulator stack that ``make test`` starts.

Environment read here (set by ``scripts/test.sh``; ``make dev`` sets the same names):
- ``CM_FUNCTIONS_URL``: base URL of the emulated functions
  (default ``http://127.0.0.1:5001/demo-chat-memory/us-central1``).
- ``CM_STACK_REDIS_PORT``: port of the redis-server the emulated functions use
  (their ``REDIS_URL``); tests may stop and restart it to simulate an outage.
- ``CM_STACK_REDIS_PERSISTENT``: "1" if that server was started with AOF persistence.
- ``FIRESTORE_EMULATOR_HOST``, ``FIREBASE_AUTH_EMULATOR_HOST``, ``FIREBASE_EMULATOR_HUB``:
  set by ``firebase emulators:exec``.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import weakref
from collections.abc import Iterator
from pathlib import Path
from typing import Any

PROJECT_ID = "demo-chat-memory"
REGION = "us-central1"
MAX_PORT = 55535  # Redis Cluster nodes use port + 10000

_LIVE: weakref.WeakSet[RedisServer] = weakref.WeakSet()


def free_ports(n: int, below: int = MAX_PORT) -> list[int]:
    """n distinct free loopback ports (all held open until all are found). Cluster nodes
    also listen on port + 10000, so stay below 55535."""
    socks: list[socket.socket] = []
    ports: list[int] = []
    try:
        for _ in range(200 + n):
            s = socket.socket()
            socks.append(s)
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
            if port < below:
                ports.append(port)
                if len(ports) == n:
                    return ports
    finally:
        for s in socks:
            s.close()
    raise RuntimeError(f"no {n} free loopback ports below {below}")


def free_port(below: int = MAX_PORT) -> int:
    """A free loopback port below 55535 (see free_ports)."""
    return free_ports(1, below)[0]


def stop_process(proc: subprocess.Popen[Any], timeout: float = 10.0, sig: int = signal.SIGTERM) -> None:
    """Stop a child this process started: ``sig`` (SIGTERM: let it shut down), then SIGKILL
    if it is still there after ``timeout``; reaped either way."""
    if proc.poll() is not None:
        return
    proc.send_signal(sig)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


def ping(port: int, host: str = "127.0.0.1", timeout: float = 0.2) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout) as s:
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def _running(pid: int) -> bool:
    """True while pid is a live process (a zombie, exited but not yet reaped, is not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


class PortTaken(RuntimeError):
    """redis-server could not bind its port: another process took it first."""


class RedisServer:
    """A redis-server on loopback that a test may stop, kill and restart on the same port.

    With ``pid_file`` set, a server started by someone else (``make test``'s stack Redis)
    can be adopted: ``stop()``/``kill()`` signal the pid in that file, ``start()`` starts
    a new one on the same port (and rewrites the pid file).
    """

    def __init__(
        self,
        port: int | None = None,
        *,
        persistent: bool = False,
        data_dir: str | Path | None = None,
        extra_args: list[str] | None = None,
        pid_file: str | Path | None = None,
        cluster_bus: bool = False,
    ) -> None:
        if shutil.which("redis-server") is None:
            raise RuntimeError("redis-server is not installed (Debian: apt-get install -y redis-server)")
        # A port chosen here may be taken by another process (an outgoing connection's
        # ephemeral port) before redis-server binds it: then start() chooses again. A port the
        # caller named is the caller's: never changed.
        self._chosen = port is None
        self._started = False
        self.cluster_bus = cluster_bus  # a cluster node: its bus on a port of its own, chosen too
        self.port, self.bus_port = (
            (free_ports(2) if cluster_bus else [port or free_port(), 0])
            if self._chosen
            else (
                port or 0,
                free_port() if cluster_bus else 0,
            )
        )
        self.persistent = persistent
        self._own_dir = data_dir is None
        self.data_dir = Path(data_dir) if data_dir else Path(tempfile.mkdtemp(prefix="cm-redis-"))
        self.extra_args = list(extra_args or [])
        self.pid_file = Path(pid_file) if pid_file else None
        self.proc: subprocess.Popen[bytes] | None = None
        _LIVE.add(self)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def args(self) -> list[str]:
        args = [
            "redis-server",
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--dir",
            str(self.data_dir),
        ]
        if self.persistent:
            args += ["--appendonly", "yes", "--appendfsync", "always"]
        else:
            args += ["--appendonly", "no"]
        if self.cluster_bus:
            args += ["--cluster-port", str(self.bus_port)]
        args += ["--logfile", str(self.data_dir / "redis.log"), *self.extra_args]
        return args

    def is_up(self) -> bool:
        return ping(self.port)

    def start(self, timeout: float = 10.0) -> RedisServer:
        for _ in range(3):
            try:
                self._start_once(timeout)
            except PortTaken:
                if not self._chosen or self._started:
                    raise
                self.port, self.bus_port = free_ports(2) if self.cluster_bus else (free_port(), 0)
                continue
            self._started = True
            return self
        raise PortTaken(f"redis-server found no free port in three tries (last {self.port})")

    def _start_once(self, timeout: float) -> None:
        if self.is_up():
            raise RuntimeError(f"something already answers PING on port {self.port}")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        log = self.data_dir / "redis.log"
        offset = log.stat().st_size if log.exists() else 0  # this start's lines only
        self.proc = subprocess.Popen(self.args(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if self.pid_file:
            self.pid_file.write_text(f"{self.proc.pid}\n")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.is_up():
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.02)
        tail = log.read_bytes()[offset:][-2000:].decode(errors="replace") if log.exists() else ""
        if self.proc.poll() is not None and "Address already in use" in tail:
            raise PortTaken(f"redis-server: port {self.port} (or its bus port) was taken:\n{tail}")
        raise RuntimeError(f"redis-server did not start on port {self.port}:\n{tail}")

    def _pid(self) -> int | None:
        if self.proc is not None and self.proc.poll() is None:
            return self.proc.pid
        if self.pid_file and self.pid_file.exists():
            try:
                return int(self.pid_file.read_text().strip())
            except ValueError:
                return None
        return None

    def _signal(self, sig: int, timeout: float) -> None:
        pid = self._pid()
        if pid is None:
            return
        if self.proc is not None and self.proc.pid == pid:
            stop_process(self.proc, timeout, sig)
            return
        # not our child (adopted by pid file): signal it, wait until it has exited
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not _running(pid):
                return
            time.sleep(0.02)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)

    def stop(self, timeout: float = 5.0) -> None:
        """SIGTERM: redis-server shuts down (no RDB save: --save '')."""
        self._signal(signal.SIGTERM, timeout)

    def kill(self) -> None:
        """SIGKILL: the abrupt end of a crashed or partitioned server."""
        self._signal(signal.SIGKILL, 5.0)

    def restart(self) -> RedisServer:
        self.stop()
        return self.start()

    def flushall(self) -> None:
        subprocess.run(["redis-cli", "-p", str(self.port), "FLUSHALL"], check=True, capture_output=True, timeout=10)

    def cleanup(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.kill()
        if self._own_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)


class RedisCluster:
    """Three masters joined into a real Redis Cluster on loopback (no replicas)."""

    def __init__(self, size: int = 3) -> None:
        self.size = size
        self.dir = Path(tempfile.mkdtemp(prefix="cm-cluster-"))
        self.nodes: list[RedisServer] = []

    @property
    def url(self) -> str:
        return self.nodes[0].url

    @property
    def startup_nodes(self) -> list[tuple[str, int]]:
        return [("127.0.0.1", n.port) for n in self.nodes]

    def start(self, timeout: float = 30.0) -> RedisCluster:
        for i in range(self.size):
            d = self.dir / str(i)
            d.mkdir()
            node = RedisServer(
                data_dir=d,
                cluster_bus=True,
                extra_args=[
                    "--cluster-enabled",
                    "yes",
                    "--cluster-config-file",
                    str(d / "nodes.conf"),
                    "--cluster-node-timeout",
                    "2000",
                ],
            )
            self.nodes.append(node.start())
        subprocess.run(
            [
                "redis-cli",
                "--cluster",
                "create",
                *[f"127.0.0.1:{n.port}" for n in self.nodes],
                "--cluster-replicas",
                "0",
                "--cluster-yes",
            ],
            check=True,
            capture_output=True,
            timeout=timeout,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            infos = [
                subprocess.run(
                    ["redis-cli", "-p", str(n.port), "CLUSTER", "INFO"],
                    capture_output=True,
                    text=True,
                    timeout=5,
                    check=False,
                ).stdout
                for n in self.nodes
            ]
            if all("cluster_state:ok" in info for info in infos):
                return self
            time.sleep(0.1)
        raise RuntimeError("the Redis Cluster did not reach cluster_state:ok")

    def flushall(self) -> None:
        for n in self.nodes:
            n.flushall()

    def stop(self) -> None:
        for n in self.nodes:
            n.cleanup()
        shutil.rmtree(self.dir, ignore_errors=True)


def functions_base_url() -> str:
    url = os.environ.get("CM_FUNCTIONS_URL") or os.environ.get("CHAT_MEMORY_FUNCTIONS_URL")
    return (url or f"http://127.0.0.1:5001/{PROJECT_ID}/{REGION}").rstrip("/")


def stack_redis() -> RedisServer | None:
    """The redis-server the emulated functions use, adopted by port, or None if not set."""
    port = os.environ.get("CM_STACK_REDIS_PORT")
    if not port:
        return None
    return RedisServer(
        int(port),
        persistent=os.environ.get("CM_STACK_REDIS_PERSISTENT") == "1",
        data_dir=os.environ.get("CM_STACK_REDIS_DIR") or None,
        pid_file=os.environ.get("CM_STACK_REDIS_PIDFILE") or None,
    )


@atexit.register
def _cleanup_all() -> None:
    for srv in list(_LIVE):
        try:
            srv.cleanup()
        except Exception:  # noqa: BLE001 - best effort at interpreter exit
            pass


def hub_emulators(hub: str) -> dict[str, Any]:
    """The emulators the Emulator Hub runs, by name."""
    with urllib.request.urlopen(f"http://{hub}/emulators", timeout=10) as resp:  # noqa: S310 - loopback hub
        return dict(json.load(resp))


@contextlib.contextmanager
def background_triggers_off() -> Iterator[None]:
    """Turn the Functions emulator's background triggers off for a block (Emulator Hub REST
    API), so a test can play the trigger's part itself; always turned back on. Outside
    `firebase emulators:exec` (no hub), or with no Functions emulator among those it runs
    (the hub then refuses the call), there is no emulated trigger and nothing to do."""
    hub = os.environ.get("FIREBASE_EMULATOR_HUB")
    if not hub or "functions" not in hub_emulators(hub):
        yield
        return

    def put(verb: str) -> None:
        # Not a measurement: the call must complete. Enabling re-registers every trigger with
        # the Firestore emulator, which took over 10 s on a machine running two stacks (the
        # teardown then failed on a timeout, with every test passed); idempotent, so a
        # generous wait costs nothing when the hub is quick.
        req = urllib.request.Request(f"http://{hub}/functions/{verb}BackgroundTriggers", method="PUT")
        with urllib.request.urlopen(req, timeout=120) as resp:  # noqa: S310 - loopback hub
            resp.read()

    put("disable")
    try:
        yield
    finally:
        put("enable")


def settle_after_redis_restart() -> None:
    """Wait until every emulated instance's Redis breaker may have closed again (the stack
    runs with REDIS_BREAKER_COOLDOWN_S, 1 s under make test), so what a test does next is
    not served by a fallback layer left over from the outage it caused."""
    time.sleep(float(os.environ.get("REDIS_BREAKER_COOLDOWN_S") or 5) + 0.5)


def main(argv: list[str] | None = None) -> int:
    """The same helpers for the shell scripts (scripts/lib.sh), with only the standard
    library: ``free-port`` prints a free loopback port; ``redis-server PORT DIR
    [--persistent]`` starts one as RedisServer does, prints its pid and leaves it running
    (the caller owns it)."""
    import argparse

    parser = argparse.ArgumentParser(prog="tests/harness.py", description=main.__doc__)
    sub = parser.add_subparsers(dest="cmd", required=True)
    sub.add_parser("free-port")
    redis = sub.add_parser("redis-server")
    redis.add_argument("port", type=int)
    redis.add_argument("dir")
    redis.add_argument("--persistent", action="store_true")
    args = parser.parse_args(argv)
    if args.cmd == "free-port":
        print(free_port())
        return 0
    srv = RedisServer(args.port, persistent=args.persistent, data_dir=args.dir)
    _LIVE.discard(srv)  # outlives this process: not stopped at exit
    try:
        srv.start()
    except RuntimeError as exc:
        print(exc, file=sys.stderr)
        return 1
    assert srv.proc is not None
    print(srv.proc.pid)
    return 0


if __name__ == "__main__":
    sys.exit(main())
