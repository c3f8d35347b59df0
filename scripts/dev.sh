#!/usr/bin/env bash
# make dev: install what is missing, start a local Redis (if redis-server is installed) and
# the Functions, Firestore, Auth and Hosting emulators on the default ports; Ctrl-C stops
# everything this script started, and nothing else.
#
# Environment (all optional):
#   REDIS_URL            use this Redis instead of starting one ("" = no Redis: in-memory fallback)
#   CM_DEV_REDIS_PORT    port for the Redis this script starts (default: a free one)
#   AUTH_DISABLED        default false: the functions verify Firebase ID tokens, the Auth
#                        emulator's here (the console signs in against it; the banner's curl
#                        gets a token from it first). AUTH_DISABLED=true trusts X-User-Id (or
#                        a dev uid) instead; a Bearer token that is sent is still verified.
#   CORS_ORIGINS         default: the Hosting emulator's origins
#   CM_EMULATORS         default functions,firestore,auth,hosting
#   CM_DEV_CONFIG        firebase config (default firebase.json: functions 5001, firestore 8080,
#                        auth 9099, hosting 5000)
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$CM_ROOT"

CM_SKIP_CHROMIUM=1 bash scripts/setup.sh
# The console is rebuilt at every start (a fraction of a second): after a pull it is never stale.
npm --prefix web run --silent build >/dev/null || cm_die "the console's build failed (npm --prefix web run build)"
cm_export_emulator_env

CONFIG="${CM_DEV_CONFIG:-firebase.json}"
REDIS_PID=""
FB_PID=""
WATCH_PID=""
RUN_DIR="$CM_ROOT/.build/dev-$$"
# The emulators' own log (hundreds of lines at start) goes to a file: the banner stays on
# screen; `tail -f` it to follow the functions' logs.
DEV_LOG="$CM_ROOT/.build/dev.log"
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
# Ctrl-C is how make dev is stopped: a clean exit, not an error.
trap 'exit 0' INT TERM

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

export AUTH_DISABLED="${AUTH_DISABLED:-false}"
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
NODE_OPTIONS="--require $CM_ROOT/scripts/node_no_keepalive.cjs --require $CM_ROOT/scripts/node_worker_ports.cjs${NODE_OPTIONS:+ $NODE_OPTIONS}" "$FIREBASE" emulators:start --config "$CONFIG" --project "$CM_PROJECT" --only "${CM_EMULATORS:-functions,firestore,auth,hosting}" >"$DEV_LOG" 2>&1 &
FB_PID=$!

# Wait for the functions to answer, then print the URLs and a curl that works.
for _ in $(seq 1 240); do
  kill -0 "$FB_PID" 2>/dev/null || { tail -40 "$DEV_LOG" >&2; cm_die "the emulators exited (their log: $DEV_LOG)"; }
  # -f: an answer from the emulator itself (a 404 while it loads the functions) is not one
  curl -sf -o /dev/null --max-time 5 "$FN_URL/health" && break
  sleep 0.5
done
AUTH_URL="http://127.0.0.1:$AUTH_PORT/identitytoolkit.googleapis.com/v1/accounts:signUp?key=demo-key"
JSON_FIELD="python3 -c 'import json,sys; print(json.load(sys.stdin)[sys.argv[1]])'"
if [ "$AUTH_DISABLED" = true ]; then
  AUTH_LINE="AUTH_DISABLED=true: X-User-Id (or dev-user) is the caller, with every role (dev only)"
  TOKEN_STEP="    H='X-User-Id: dev-user'"
  ADMIN_LINE="every caller is admin (AUTH_DISABLED)"
else
  AUTH_LINE="on: Firebase ID tokens from the Auth emulator (AUTH_DISABLED=true trusts X-User-Id instead)"
  TOKEN_STEP="    H=\"Authorization: Bearer \$(curl -s -X POST -H 'Content-Type: application/json' \\
         -d '{\"returnSecureToken\": true}' '$AUTH_URL' | $JSON_FIELD idToken)\""
  ADMIN_LINE="make grant ROLE=admin UID=<the uid the console shows>"
fi
cat >&2 <<EOF
==================== chat-memory dev stack ====================
  Console   : http://127.0.0.1:$HOST_PORT/        Admin page: http://127.0.0.1:$HOST_PORT/admin
  Functions : $FN_URL/<name>
  Emulators : Firestore 127.0.0.1:$FS_PORT, Auth 127.0.0.1:$AUTH_PORT
  Redis     : ${REDIS_URL:-none (in-memory fallback)}
  Auth      : $AUTH_LINE
  Admin     : $ADMIN_LINE
  Try (a user, a session, a chat turn; paste the lines into a shell):
$TOKEN_STEP
    SID=\$(curl -s -X POST -H 'Content-Type: application/json' -H "\$H" -d '{}' $FN_URL/create_session | $JSON_FIELD session_id)
    curl -s -X POST -H 'Content-Type: application/json' -H "\$H" \\
         -d "{\"session_id\": \"\$SID\", \"content\": \"How long does shipping take?\", \"client_message_id\": \"turn-1\"}" \\
         $FN_URL/chat
  Logs      : tail -f $DEV_LOG
  Ctrl-C stops the emulators and the Redis this script started.
================================================================
EOF
wait "$FB_PID"
