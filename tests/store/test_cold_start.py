"""A new instance's first request, in a fresh process against a real redis-server. The
start-up policy check runs in a background thread; two threads importing redis-py at once
can each meet the other's half-initialised module, which made the first append of a new
instance answer 500 (seen in `make bench`). So redis-py is imported, and the client built,
before that thread starts: checked at the moment it starts."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FIRST_REQUEST = """
import sys, threading
started = []
real_start = threading.Thread.start
def start(self):
    redis = sys.modules.get("redis")
    started.append(redis is not None and hasattr(redis, "Redis"))
    real_start(self)
threading.Thread.start = start
from shared.instance import get_instance
m = get_instance().manager()
assert started == [True], started  # redis-py fully imported before the policy thread
sid = m.create_session({}, user_id="cold-user").session_id
assert m.add_message(sid, "user", "hello", user_id="cold-user").storage == "redis"
"""


def test_redis_py_is_imported_before_the_start_up_thread(redis_server):
    env = {k: v for k, v in os.environ.items() if not k.startswith("FIRESTORE_EMULATOR")}
    env.update({"REDIS_URL": redis_server.url, "FIRESTORE_ENABLED": "false", "PYTHONPATH": str(ROOT)})
    cmd = [sys.executable, "-c", FIRST_REQUEST]
    out = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, timeout=60, check=False)
    assert out.returncode == 0, out.stderr[-2000:]
