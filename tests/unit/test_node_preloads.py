"""The Firebase CLI's preloads (scripts/*.cjs): the Functions emulator's worker ports."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.skipif(
    shutil.which("node") is None or not (ROOT / "node_modules" / "portfinder").exists(), reason="no node"
)
def test_worker_ports_come_from_the_os_and_never_twice():
    script = """
    const pf = require("portfinder");
    (async () => {
      const workers = [];
      for (let i = 0; i < 40; i += 1) workers.push(await pf.getPortPromise({ port: 8081 + (i * 25) % 1000 }));
      const other = await pf.getPortPromise({ port: 4000 });
      console.log(JSON.stringify({ workers, other }));
    })();
    """
    out = subprocess.run(
        ["node", "--require", str(ROOT / "scripts" / "node_worker_ports.cjs"), "-e", script],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    ).stdout
    got = json.loads(out)
    assert len(set(got["workers"])) == 40  # none handed out twice
    assert not any(8081 <= p <= 9081 for p in got["workers"])  # not portfinder's shared window
    assert got["other"] >= 4000  # other callers: portfinder as it is
