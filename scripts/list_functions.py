#!/usr/bin/env python3
"""Import ``main`` from a functions bundle, as the Firebase CLI does, and list its functions.

Run with the bundle's own interpreter and the bundle as the working directory:
    <venv>/bin/python scripts/list_functions.py <bundle>
Exits non-zero if the import fails or no function is found. No network: the import
must do no I/O (as the CLI's discovery requires).
"""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path
from typing import Any


def describe(name: str, endpoint: Any) -> dict[str, Any]:
    if hasattr(endpoint, "__dict__") or hasattr(endpoint, "__dataclass_fields__"):
        try:
            from dataclasses import asdict

            raw = asdict(endpoint)
        except TypeError:
            raw = dict(vars(endpoint))
    else:
        raw = {}
    if "httpsTrigger" in raw and raw["httpsTrigger"] is not None:
        kind = "https"
    elif raw.get("eventTrigger"):
        kind = "event " + str(raw["eventTrigger"].get("eventType"))
    elif raw.get("scheduleTrigger"):
        kind = "schedule " + str(raw["scheduleTrigger"].get("schedule"))
    else:
        kind = "?"
    return {"name": name, "kind": kind, "vpc": raw.get("vpc"), "secrets": raw.get("secretEnvironmentVariables")}


def main(argv: list[str]) -> int:
    bundle = Path(argv[1] if len(argv) > 1 else ".").resolve()
    sys.path.insert(0, str(bundle))
    try:
        main_mod = importlib.import_module("main")
    except Exception as exc:  # noqa: BLE001 - report any import failure and fail
        print(f"dry-run: importing main from {bundle} failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        raise
    found = []
    for name, obj in sorted(vars(main_mod).items()):
        endpoint = getattr(obj, "__firebase_endpoint__", None)
        if endpoint is not None:
            found.append(describe(name, endpoint))
    if not found:
        print(f"dry-run: {bundle}/main.py defines no Firebase function", file=sys.stderr)
        return 1
    for f in found:
        extra = []
        if f["vpc"]:
            extra.append(f"vpc={json.dumps(f['vpc'], default=str)}")
        if f["secrets"]:
            extra.append(f"secrets={json.dumps(f['secrets'], default=str)}")
        print(f"  {f['name']:<22} {f['kind']}" + (("  " + " ".join(extra)) if extra else ""))
    print(f"dry-run: {len(found)} functions would be deployed")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
