"""functions/main.py with firebase-admin trusting a local stand-in for Google's token
certificates and Auth API (tests/tokens.py): the "real token" rows of section 3. Real
RS256 ID tokens, verified by firebase-admin's own verify path (the certificate fetched
over HTTP once and cached per its Cache-Control, as in production); the product's code is
unchanged. The stand-in's URL and service account come from the environment."""

import importlib.util
import json
import os
import sys
from pathlib import Path

_ROOT = Path(__file__).resolve().parents[2]
if str(_ROOT) not in sys.path:
    sys.path.insert(0, str(_ROOT))

from tests.tokens import point_firebase_admin  # noqa: E402

point_firebase_admin(os.environ["CM_BENCH_GOOGLE_URL"], json.loads(os.environ["CM_BENCH_SERVICE_ACCOUNT"]))

_MAIN = _ROOT / "functions" / "main.py"
_spec = importlib.util.spec_from_file_location("cm_functions_main", _MAIN)
assert _spec and _spec.loader
_mod = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_mod)

get_context = _mod.get_context
append_message = _mod.append_message
