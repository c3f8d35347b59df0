"""A redis-server process the tests own: start, stop, kill and restart on one port."""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path


def free_port(below: int = 55535) -> int:
    """A free loopback port. Cluster nodes also listen on port + 10000, so stay below 55535."""
    for _ in range(100):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if port < below:
            return port
    raise RuntimeError(f"no free port below {below}")


class RedisServer:
    def __init__(self, port: int | None = None, *, persistent: bool = False, data_dir: Path | None = None) -> None:
        if shutil.which("redis-server") is None:
            raise RuntimeError("redis-server is not installed (apt-get install redis-server)")
        self.port = port or free_port()
        self.persistent = persistent
        self.data_dir = Path(data_dir or tempfile.mkdtemp(prefix="cm-redis-"))
        self.proc: subprocess.Popen[bytes] | None = None
        self.start_args: list[str] = []

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
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
        args += ["--appendonly", "yes", "--appendfsync", "always"] if self.persistent else ["--appendonly", "no"]
        args += self.start_args
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                time.sleep(0.02)
        raise RuntimeError(f"redis-server did not start on port {self.port}")

    def kill(self) -> None:
        """SIGKILL: the abrupt end of a crashed or partitioned server."""
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)

    def restart(self) -> None:
        self.stop()
        self.start()


class RedisClusterServers:
    """Three masters joined into a real Redis Cluster on loopback (no replicas)."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="cm-cluster-"))
        self.nodes: list[RedisServer] = []

    @property
    def url(self) -> str:
        return self.nodes[0].url

    def start(self) -> None:
        for i in range(3):
            d = self.dir / str(i)
            d.mkdir()
            srv = RedisServer(data_dir=d)
            self.nodes.append(srv)
            srv.start_args = ["--cluster-enabled", "yes", "--cluster-config-file", str(d / "nodes.conf")]
            srv.start()
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
            timeout=30,
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            out = subprocess.run(
                ["redis-cli", "-p", str(self.nodes[0].port), "cluster", "info"],
                capture_output=True,
                text=True,
                timeout=5,
                check=False,
            ).stdout
            if "cluster_state:ok" in out:
                return
            time.sleep(0.2)
        raise RuntimeError("redis cluster did not become ready")

    def stop(self) -> None:
        for n in self.nodes:
            n.stop()
