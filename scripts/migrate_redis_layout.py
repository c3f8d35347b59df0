"""Move every session Redis holds from the six-key layout (before issue 15) to the
three-key one. Sessions move by themselves on their first operation after the deploy; this
moves the rest, and (run again once no instance of the old code is left) takes in what an
old instance wrote to a session after it moved. Idempotent: a second run finds nothing.

    REDIS_URL=redis://... [REDIS_CLUSTER=true] python scripts/migrate_redis_layout.py

Prints {"sessions": n, "moved": n, "stragglers": n, "errors": n} (ended and erased
sessions are left alone: they hold nothing to move; a session that failed is named on
stderr, and a second run retries it).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def main(argv: list[str] | None = None) -> int:
    argparse.ArgumentParser(description=__doc__.split("\n\n")[0]).parse_args(argv)
    from shared.instance import get_instance

    layer = get_instance().manager().redis
    client = layer.client()
    prefix = layer.settings.redis_key_prefix
    from shared.errors import StoreError

    counts = {"sessions": 0, "moved": 0, "stragglers": 0, "errors": 0}
    for key in client.scan_iter(match=f"{prefix}:{{*}}:meta", count=1000):
        sid = key[len(prefix) + 2 : -len("}:meta")]
        counts["sessions"] += 1
        try:
            if layer.migrate_legacy(sid):
                counts["moved"] += 1
            elif layer.migrate_legacy(sid, stragglers=True):
                counts["stragglers"] += 1
        except StoreError as exc:  # one session's trouble does not stop the pass: run it again
            counts["errors"] += 1
            print(json.dumps({"session_id": sid, "error": str(exc)}), file=sys.stderr)
    print(json.dumps(counts))
    return 0


if __name__ == "__main__":
    sys.exit(main())
