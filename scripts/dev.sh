#!/usr/bin/env bash
# make dev: install what is missing, start a local Redis (if redis-server is installed) and
# the Functions, Firestore, Auth and Hosting emulators on the default ports; Ctrl-C stops
# everything this script started, and nothing else.
#
# Environment (all optional):
#   REDIS_URL            use this Redis instead of starting one ("" = no Redis: in-memory fallback)
#   CM_DEV_REDIS_PORT    port for the Redis this script starts (default: a free one)
#   AUTH_DISABLED        default true under make dev: the functions trust X-User-Id (or a dev
#                        uid) instead of a Firebase ID token. Set AUTH_DISABLED=false to use
#                        the Auth emulator's tokens, as in production.
#   CORS_ORIGINS         default: the Hosting emulator's origins
#   CM_EMULATORS         default functions,firestore,auth,hosting
#   CM_DEV_CONFIG        firebase config (default firebase.json: functions 5001, firestore 8080,
#                        auth 9099, hosting 5000)
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$CM_ROOT"

bash scripts/setup.sh
cm_export_emulator_env

CONFIG="${CM_DEV_CONFIG:-firebase.json}"
REDIS_PID=""
FB_PID=""
WATCH_PID=""
RUN_DIR="$CM_ROOT/.build/dev-$$"
mkdir -p "$RUN_DIR"

cleanup() {
  trap - EXIT INT TERM
  [ -n "$FB_PID" ] && { cm_log "stopping the emulators ..."; kill -INT "$FB_PID" 2>/dev/null || true; wait "$FB_PID" 2>/dev/null || true; }
  cm_reap_workers "${CM_BUNDLE:-}"
  [ -n "$WATCH_PID" ] && cm_stop_pid "$WATCH_PID"
  [ -n "$REDIS_PID" ] && { cm_log "stopping redis-server (pid $REDIS_PID) ..."; cm_stop_pid "$REDIS_PID"; }
  rm -rf "$RUN_DIR"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [ -n "${REDIS_URL+set}" ]; then
  if [ -n "$REDIS_URL" ]; then
    cm_log "using REDIS_URL=$REDIS_URL (from the environment)"
  else
    unset REDIS_URL
    cm_log "REDIS_URL is empty: no Redis layer; the functions use Firestore and the in-memory fallback"
  fi
elif command -v redis-server >/dev/null; then
  port="${CM_DEV_REDIS_PORT:-$(cm_free_port)}"
  cm_port_in_use "$port" && cm_die "port $port is taken (CM_DEV_REDIS_PORT)"
  REDIS_PID="$(cm_start_redis "$port" "$RUN_DIR/redis" 0)"
  export REDIS_URL="redis://127.0.0.1:$port/0"
  export CM_STACK_REDIS_PORT="$port"
  cm_log "started redis-server on $REDIS_URL (pid $REDIS_PID)"
else
  cm_log "redis-server is not installed: running without REDIS_URL (Firestore + in-memory fallback)"
fi

export AUTH_DISABLED="${AUTH_DISABLED:-true}"
export GCLOUD_PROJECT="$CM_PROJECT"
read -r FN_PORT FS_PORT AUTH_PORT HOST_PORT < <("$(cm_base_python)" - "$CONFIG" <<'EOF'
import json, sys
e = json.load(open(sys.argv[1])).get("emulators", {})
print(*(e.get(k, {}).get("port", d) for k, d in (("functions", 5001), ("firestore", 8080), ("auth", 9099), ("hosting", 5000))))
EOF
)
export CORS_ORIGINS="${CORS_ORIGINS:-http://127.0.0.1:$HOST_PORT,http://localhost:$HOST_PORT,http://localhost:5173}"
for p in "$FN_PORT" "$FS_PORT" "$AUTH_PORT" "$HOST_PORT"; do
  cm_port_in_use "$p" && cm_die "port $p is already in use (another make dev?). Stop it, or use CM_DEV_CONFIG with other ports."
done

FN_URL="http://127.0.0.1:$FN_PORT/$CM_PROJECT/us-central1"
# Keep the staged bundle in sync with functions/ and shared/: the emulator reloads on change.
"$CM_VENV/bin/python" scripts/stage.py --out "$CM_BUNDLE" --watch >/dev/null &
WATCH_PID=$!
NODE_OPTIONS="--require $CM_ROOT/scripts/node_no_keepalive.cjs${NODE_OPTIONS:+ $NODE_OPTIONS}" "$FIREBASE" emulators:start --config "$CONFIG" --project "$CM_PROJECT" --only "${CM_EMULATORS:-functions,firestore,auth,hosting}" &
FB_PID=$!

# Wait for the functions to answer, then print the URLs and a curl that works.
for _ in $(seq 1 240); do
  kill -0 "$FB_PID" 2>/dev/null || cm_die "the emulators exited"
  # -f: an answer from the emulator itself (a 404 while it loads the functions) is not one
  curl -sf -o /dev/null --max-time 5 "$FN_URL/health" && break
  sleep 0.5
done
cat >&2 <<EOF

==================== chat-memory dev stack ====================
  Functions : $FN_URL/<name>
  Firestore : 127.0.0.1:$FS_PORT      Auth: 127.0.0.1:$AUTH_PORT
  Console   : http://127.0.0.1:$HOST_PORT/   (Hosting; /api/<name> -> function)
  Redis     : ${REDIS_URL:-none (in-memory fallback)}
  Auth      : AUTH_DISABLED=$AUTH_DISABLED$( [ "$AUTH_DISABLED" = true ] && echo " (dev only: X-User-Id header or a dev uid; set AUTH_DISABLED=false for real tokens)")

  Console   : http://127.0.0.1:$HOST_PORT/admin   (admin reports; AUTH_DISABLED: everyone is admin)

  Try:
    curl -s -X POST -H 'Content-Type: application/json' -H 'X-User-Id: dev-user' \\
         -d '{}' $FN_URL/create_session
    # then a chat turn with the session_id it answered:
    curl -s -X POST -H 'Content-Type: application/json' -H 'X-User-Id: dev-user' \\
         -d '{"session_id": "<session_id>", "content": "How long does shipping take?"}' $FN_URL/chat

  Ctrl-C stops the emulators and the Redis this script started.
================================================================
EOF
wait "$FB_PID"
