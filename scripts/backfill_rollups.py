"""Rebuild the reporting rollups (rollups/{day}, low_confidence/{id}) from the analytics
documents of every counted session: for data written before the rollups existed, or to
repair them. Idempotent (each day is overwritten with its recount). Run it while sessions
are not being counted (a count that lands during the run may be overwritten; run it again).

    python scripts/backfill_rollups.py [--since YYYY-MM-DD]

Against a real project: Application Default Credentials and GOOGLE_CLOUD_PROJECT; against
the emulator: FIRESTORE_EMULATOR_HOST and GCLOUD_PROJECT.
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
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--since", help="rebuild only the UTC days from this one (YYYY-MM-DD) on")
    args = parser.parse_args(argv)
    from shared.instance import get_instance
    from shared.store.firestore import backfill

    inst = get_instance()
    threshold = inst.settings.low_confidence_threshold
    print(json.dumps(backfill.rebuild(inst.stats(), inst.scans(), threshold, since_day=args.since)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
