"""functions/main.py as it would be with firebase-admin and the Firestore client imported
eagerly at the top (the usual sample code): the cold-start comparison of section 4."""

import importlib.util
from pathlib import Path

import firebase_admin  # noqa: F401
import google.cloud.firestore  # noqa: F401
from firebase_admin import firestore  # noqa: F401

_MAIN = Path(__file__).resolve().parents[2] / "functions" / "main.py"
_spec = importlib.util.spec_from_file_location("cm_functions_main", _MAIN)
assert _spec and _spec.loader
_mod = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_mod)

get_context = _mod.get_context
