#!/usr/bin/env bash
# make test: install what is missing, run the web console's unit tests (node --test), then
# run the whole Python suite against real services:
#   a dedicated redis-server for the emulated functions (REDIS_URL), and the Functions,
#   Firestore, Auth and Hosting emulators on free ports (a temporary firebase config), with
#   pytest run by `firebase emulators:exec`; beside it, tests/unit in its own pytest (it needs
#   no emulator) and `./deploy.sh --dry-run`. The whole suite runs on two such stacks at once:
#   tests/store on one (a child run of this script), the e2e, reliability and browser tiers on
#   the other (measured: 313 s and 379 s side by side, make test 444 s, against 621 s on one).
#
# Environment (all optional):
#   PYTEST_ARGS            extra pytest arguments, e.g. "-k failover -x" (default: whole suite)
#   CM_TEST_PATHS          what pytest collects (default: tests)
#   CM_EMULATORS           emulators to start (default: functions,firestore,auth,hosting)
#   CM_STACK_REDIS_PERSISTENT=1  run the functions' Redis with AOF (a restart keeps data)
#   CM_SKIP_DRY_RUN=1      do not run ./deploy.sh --dry-run
#   CM_RUN_CMD             run this instead of pytest in the stack (make bench uses it)
#   CM_ONE_STACK=1         the whole suite on one stack (no second stack for tests/store)
# Exported to the tests (see tests/harness.py):
#   CM_FUNCTIONS_URL / CHAT_MEMORY_FUNCTIONS_URL, CHAT_MEMORY_WEB_URL, CM_STACK_REDIS_PORT,
#   CM_STACK_REDIS_PIDFILE, CM_STACK_REDIS_DIR, CM_STACK_REDIS_PERSISTENT, REDIS_URL (the
#   functions' Redis), plus what emulators:exec sets (FIRESTORE_EMULATOR_HOST,
#   FIREBASE_AUTH_EMULATOR_HOST, FIREBASE_EMULATOR_HUB, GCLOUD_PROJECT).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$CM_ROOT"
T0=$SECONDS

RUN_ID="$$"
RUN_DIR="$CM_ROOT/.build/test-$RUN_ID"
export CM_BUNDLE="$RUN_DIR/functions"
CONFIG="firebase.cm-test-$RUN_ID.json"
# make grant (scripts/grant_role.py) finds the stack's Auth emulator in this config, as it
# finds make dev's in firebase.json
export CM_DEV_CONFIG="$CONFIG"
REDIS_PID=""

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  # (a list that fails must not end the trap early under set -e: the run's status is rc)
  if [ -n "${DRY_PID:-}" ]; then kill "$DRY_PID" 2>/dev/null || true; fi
  if [ -n "${UNIT_PID:-}" ]; then kill "$UNIT_PID" 2>/dev/null || true; fi
  if [ -n "${STORE_PID:-}" ]; then kill "$STORE_PID" 2>/dev/null && wait "$STORE_PID" 2>/dev/null || true; fi
  if [ -f "$RUN_DIR/redis.pid" ]; then
    cm_stop_pid "$(cat "$RUN_DIR/redis.pid")"
  fi
  [ -n "$REDIS_PID" ] && cm_stop_pid "$REDIS_PID"
  [ -n "${FB_PID:-}" ] && kill -INT "$FB_PID" 2>/dev/null && wait "$FB_PID" 2>/dev/null
  cm_reap_workers "$CM_BUNDLE"
  rm -f "$CM_ROOT/$CONFIG"
  rm -rf "$RUN_DIR"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# 1. Installs (idempotent; a child run for tests/store, CM_SHARD_OF, has its parent's).
[ -n "${CM_SHARD_OF:-}" ] || bash scripts/setup.sh
cm_export_emulator_env
cm_log "setup done ($((SECONDS - T0)) s)"

# 2. The web console's unit tests (node:test; they import only web/src, no packages). A
#    failure fails the run, after the Python suite has had its say.
WEB_RC=0
if [ -z "${CM_RUN_CMD:-}" ] && [ -z "${CM_SHARD_OF:-}" ]; then
  web_out="$(npm --prefix web run --silent check 2>&1)" || { WEB_RC=$?; printf '%s\n' "$web_out" >&2; }
  cm_log "web unit tests (web/test): exit $WEB_RC"
fi

# 3. The functions' own Redis, on a free loopback port.
command -v redis-server >/dev/null || cm_die "redis-server is not installed (Debian: apt-get install -y redis-server)"
export CM_STACK_REDIS_PORT="$(cm_free_port)"
export CM_STACK_REDIS_DIR="$RUN_DIR/redis"
export CM_STACK_REDIS_PIDFILE="$RUN_DIR/redis.pid"
export CM_STACK_REDIS_PERSISTENT="${CM_STACK_REDIS_PERSISTENT:-0}"
REDIS_PID="$(cm_start_redis "$CM_STACK_REDIS_PORT" "$CM_STACK_REDIS_DIR" "$CM_STACK_REDIS_PERSISTENT")"
echo "$REDIS_PID" >"$CM_STACK_REDIS_PIDFILE"
export REDIS_URL="redis://127.0.0.1:$CM_STACK_REDIS_PORT/0"

# 4. A firebase config with free ports, in the repo root (relative paths resolve there).
#    The browser test calls the functions cross-origin from the Hosting page too (and
#    tests/e2e checks CORS with the web dev server's origin http://localhost:5173).
CORS_GIVEN="${CORS_ORIGINS:-}"
choose_ports() {
  eval "$("$CM_VENV/bin/python" scripts/firebase_config.py "$CONFIG" --bundle "${CM_BUNDLE#"$CM_ROOT/"}")"
  export CM_FUNCTIONS_URL="http://127.0.0.1:$CM_PORT_FUNCTIONS/$CM_PROJECT/us-central1"
  export CHAT_MEMORY_FUNCTIONS_URL="$CM_FUNCTIONS_URL"
  export CHAT_MEMORY_WEB_URL="http://127.0.0.1:$CM_PORT_HOSTING/"
  export CORS_ORIGINS="${CORS_GIVEN:-http://127.0.0.1:$CM_PORT_HOSTING,http://localhost:$CM_PORT_HOSTING,http://localhost:5173}"
}
choose_ports
# A short breaker cool-down: after a test restarts the functions' Redis, every emulated
# instance is back on Redis within a second, so the next test does not inherit fallbacks.
export REDIS_BREAKER_COOLDOWN_S="${REDIS_BREAKER_COOLDOWN_S:-1}"
export FIRESTORE_BREAKER_COOLDOWN_S="${FIRESTORE_BREAKER_COOLDOWN_S:-1}"
# The whole suite calls from 127.0.0.1 and reuses its users: the per-network creation limit
# and the per-user session cap are tested at their own size (tests/unit/test_bounds_edge.py,
# tests/store/test_bounds.py), not imposed on every other test.
export SESSION_CREATE_PER_IP_PER_MINUTE="${SESSION_CREATE_PER_IP_PER_MINUTE:-0}"
export MAX_ACTIVE_SESSIONS_PER_USER="${MAX_ACTIVE_SESSIONS_PER_USER:-10000}"
export GCLOUD_PROJECT="$CM_PROJECT"

EMULATORS="${CM_EMULATORS:-functions,firestore,auth,hosting}"
# The whole suite (no CM_TEST_PATHS): tests/unit needs no emulator, so it runs in its own
# pytest beside the stack's (2 cores: the stack's tests spend much of their time waiting on
# the emulators), its output shown after the stack's. tests/store runs on a stack of its own
# (the child run below), so it is left out here too.
UNIT_APART=0
STORE_APART=0
if [ -z "${CM_TEST_PATHS:-}" ] && [ -z "${CM_RUN_CMD:-}" ] && [ -d tests/unit ]; then
  UNIT_APART=1
  PYTEST_CMD="$CM_VENV/bin/python -m pytest tests --ignore=tests/unit ${PYTEST_ARGS:-}"
  if [ "${CM_ONE_STACK:-0}" != 1 ] && [ -d tests/store ]; then
    STORE_APART=1
    PYTEST_CMD="$PYTEST_CMD --ignore=tests/store"
  fi
else
  PYTEST_CMD="${CM_RUN_CMD:-$CM_VENV/bin/python -m pytest ${CM_TEST_PATHS:-tests} ${PYTEST_ARGS:-}}"
fi
cm_log "Redis for the functions: $REDIS_URL; emulators: $EMULATORS (functions :$CM_PORT_FUNCTIONS, firestore :$CM_PORT_FIRESTORE, auth :$CM_PORT_AUTH, hosting :$CM_PORT_HOSTING)"
cm_log "running: $PYTEST_CMD"

# 5. The suite, under the emulators. emulators:exec exits with the command's status.
#    The emulators' own log goes to a file (shown in part on failure); pytest's output is
#    followed live.
#    If the emulators never got as far as starting pytest (a port another process took
#    between the choice and the bind, a JVM that failed to start), that is said, with the
#    emulators' log, and the stack is started once more on fresh ports: a test failure
#    is never retried.
# The deploy dry run (step 6) needs nothing of the stack: it runs beside the suite (its pip
# install is mostly waiting on the disk), and its output is shown after the suite's.
DRY_PID=""
if [ "${CM_SKIP_DRY_RUN:-0}" != 1 ] && [ -z "${CM_RUN_CMD:-}" ]; then
  T2=$SECONDS
  ./deploy.sh --dry-run >"$RUN_DIR/dryrun.log" 2>&1 &
  DRY_PID=$!
fi
UNIT_PID=""
if [ "$UNIT_APART" = 1 ]; then
  # shellcheck disable=SC2086 # PYTEST_ARGS is a list of words
  "$CM_VENV/bin/python" -m pytest tests/unit ${PYTEST_ARGS:-} >"$RUN_DIR/unit.log" 2>&1 &
  UNIT_PID=$!
fi
# tests/store on a second stack of its own (its own Redis, emulators and ports: the tiers
# restart the stack's Redis and switch the emulated triggers off, so they never share one).
STORE_PID=""
if [ "$STORE_APART" = 1 ]; then
  CM_TEST_PATHS=tests/store CM_SKIP_DRY_RUN=1 CM_SHARD_OF="$RUN_ID" CORS_ORIGINS="$CORS_GIVEN" \
    bash scripts/test.sh >"$RUN_DIR/store.log" 2>&1 &
  STORE_PID=$!
fi
T1=$SECONDS
EMU_LOG="$CM_ROOT/.build/test-$RUN_ID.emulators.log"
PY_LOG="$RUN_DIR/pytest.log"
for attempt in 1 2; do
: >"$PY_LOG"
set +e
NODE_OPTIONS="--require $CM_ROOT/scripts/node_no_keepalive.cjs --require $CM_ROOT/scripts/node_worker_ports.cjs${NODE_OPTIONS:+ $NODE_OPTIONS}" "$FIREBASE" emulators:exec --config "$CONFIG" --project "$CM_PROJECT" --only "$EMULATORS" \
  "$PYTEST_CMD >'$PY_LOG' 2>&1" >"$EMU_LOG" 2>&1 </dev/null &
FB_PID=$!
tail -n +1 -f --pid="$FB_PID" "$PY_LOG" &
TAIL_PID=$!
wait "$FB_PID"
TEST_RC=$?
wait "$TAIL_PID" 2>/dev/null
set -e
if [ "$TEST_RC" -ne 0 ] && [ ! -s "$PY_LOG" ] && [ "$attempt" = 1 ]; then
  cm_log "the emulators exited ($TEST_RC) before pytest started; their log:"
  grep -v '^\s*$' "$EMU_LOG" | tail -n "${CM_EMU_LOG_LINES:-60}" >&2
  cm_log "starting the stack once more, on fresh ports"
  choose_ports
  continue
fi
break
done
cm_log "tests: exit $TEST_RC ($((SECONDS - T1)) s)"
if [ "$TEST_RC" -ne 0 ]; then
  cm_log "last lines of the emulators' log (all of it: $EMU_LOG):"
  grep -v '^\s*$' "$EMU_LOG" | tail -n "${CM_EMU_LOG_LINES:-60}" >&2
else
  rm -f "$EMU_LOG"
fi

# A test run beside this stack's: waited for, its log shown, its exit said and kept.
#   await_beside PID_VAR LOG RC_VAR WHAT
await_beside() {
  local pid="${!1}" rc=0
  printf -v "$3" '%s' 0
  [ -n "$pid" ] || return 0
  wait "$pid" || rc=$?
  printf -v "$1" '%s' ""
  printf -v "$3" '%s' "$rc"
  cat "$2"
  cm_log "$4: exit $rc"
}
await_beside STORE_PID "$RUN_DIR/store.log" STORE_RC "tests/store (on a second stack, beside)"
await_beside UNIT_PID "$RUN_DIR/unit.log" UNIT_RC "tests/unit (beside the stack's tests)"

# 6. The deploy bundle imports and lists its functions.
DRY_RC=0
if [ -n "$DRY_PID" ]; then
  wait "$DRY_PID" || DRY_RC=$?
  DRY_PID=""
  cat "$RUN_DIR/dryrun.log" >&2
  cm_log "deploy.sh --dry-run (beside the suite): exit $DRY_RC (done $((SECONDS - T2)) s after it started)"
fi

cm_log "make test finished in $((SECONDS - T0)) s"
[ "$TEST_RC" -eq 0 ] && [ "$STORE_RC" -eq 0 ] && [ "$UNIT_RC" -eq 0 ] && [ "$DRY_RC" -eq 0 ] && [ "$WEB_RC" -eq 0 ]
