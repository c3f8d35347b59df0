#!/usr/bin/env python3
"""Write a copy of firebase.json whose emulators listen on free (or given) loopback ports.

``make test`` runs its own emulator stack beside a developer's ``make dev`` (default
ports) and other test runs: it writes this config into the repository root (so the
relative paths in it resolve; the name matches ``firebase.cm-*.json`` in .gitignore) and
deletes it afterwards. Prints shell assignments of the chosen ports (tests/harness.py's
free_ports: below 55535, as Redis Cluster nodes use port + 10000).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.harness import free_ports  # noqa: E402

EMULATORS = ("functions", "firestore", "auth", "hosting", "hub", "logging", "eventarc", "tasks")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", help="path of the config to write (in the repo root)")
    parser.add_argument("--base", default=str(ROOT / "firebase.json"))
    parser.add_argument("--bundle", default=None, help="functions source dir (relative to the config)")
    args = parser.parse_args(argv)
    cfg = json.loads(Path(args.base).read_text())
    emus = cfg.setdefault("emulators", {})
    *chosen, websocket = free_ports(len(EMULATORS) + 1)
    ports = dict(zip(EMULATORS, chosen, strict=True))
    for name, port in ports.items():
        emus[name] = {**emus.get(name, {}), "host": "127.0.0.1", "port": port}
    # The Firestore emulator's websocket (for the UI) would take 9150 otherwise.
    emus["firestore"]["websocketPort"] = websocket
    emus["ui"] = {"enabled": False}
    if args.bundle:
        for fn in cfg["functions"] if isinstance(cfg["functions"], list) else [cfg["functions"]]:
            fn["source"] = args.bundle
    Path(args.out).write_text(json.dumps(cfg, indent=2) + "\n")
    for name, port in ports.items():
        print(f"CM_PORT_{name.upper()}={port}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
