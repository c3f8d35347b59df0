#!/usr/bin/env bash
# Deploy chat-memory to a Firebase / Google Cloud project.
#
#   ./deploy.sh --project my-project [--region europe-west1] [--vpc-connector redis-conn] \
#               [--redis-url-file path | --redis-url-stdin | --redis-secret] [--only functions,firestore,hosting]
#   ./deploy.sh --dry-run      # no cloud: build the bundle, install its requirements into a
#                              # fresh venv, import main and list the functions it would deploy
#   ./deploy.sh --check --project my-project [flags]   # no cloud: steps 1-2 and the check, then stop
#
# What it does (real deploy):
#   1. stages the bundle (.build/functions = functions/ + shared/ + requirements.txt);
#   2. sets, in .build/functions/.env.<project>, the deploy-time settings that
#      functions/main.py reads when the CLI imports it: VPC_CONNECTOR (Serverless VPC Access
#      connector that reaches Memorystore's private IP), MIN_INSTANCES, FUNCTIONS_REGION; every
#      other line of that file (the operator's settings, or functions/.env.<project>) is kept,
#      and a key not given by a flag keeps the file's value; then stops if any .env* file of the
#      bundle sets AUTH_DISABLED=true or an emulator variable (*_EMULATOR_HOST, FUNCTIONS_EMULATOR);
#   3. with --redis-url-file/--redis-url-stdin, stores the Memorystore URL in Secret Manager
#      as the secret REDIS_URL (`firebase functions:secrets:set`) and sets REDIS_URL_SECRET=1,
#      so functions/main.py declares secrets=["REDIS_URL"] (--redis-secret: the secret already
#      exists, declare it without setting it);
#   4. `firebase deploy --only functions,firestore:rules,firestore:indexes,hosting`:
#      Firestore rules (firestore.rules) and indexes (firestore.indexes.json) from
#      firebase.json; the sweep's schedule is the `on_schedule` of sweep_idle_sessions
#      (the CLI creates its Cloud Scheduler job).
#
# Environment (same as the flags): CM_DEPLOY_PROJECT (or GCLOUD_PROJECT), FUNCTIONS_REGION
# (default us-central1), VPC_CONNECTOR, MIN_INSTANCES, CM_DEPLOY_ONLY.
set -euo pipefail
source "$(dirname "$0")/scripts/lib.sh"
cd "$CM_ROOT"

DRY_RUN=0
CHECK_ONLY=0
PROJECT="${CM_DEPLOY_PROJECT:-${GCLOUD_PROJECT:-}}"
REGION="${FUNCTIONS_REGION:-}"    # empty: the bundle's .env.<project>, else us-central1
VPC="${VPC_CONNECTOR:-}"
MIN_INST="${MIN_INSTANCES:-}"     # empty: the bundle's .env.<project>, else 0
ONLY="${CM_DEPLOY_ONLY:-functions,firestore:rules,firestore:indexes,hosting}"
REDIS_URL_SOURCE=""
USE_SECRET="${REDIS_URL_SECRET:-0}"

# The header comment above, and nothing after it.
usage() { awk 'NR == 1 { next } /^#/ { sub(/^# ?/, ""); print; next } { exit }' "$0"; }

while [ $# -gt 0 ]; do
  case "$1" in
    --dry-run) DRY_RUN=1 ;;
    --check) CHECK_ONLY=1 ;;
    --project) PROJECT="$2"; shift ;;
    --region) REGION="$2"; shift ;;
    --vpc-connector) VPC="$2"; shift ;;
    --min-instances) MIN_INST="$2"; shift ;;
    --redis-url-file) REDIS_URL_SOURCE="$2"; shift ;;
    --redis-url-stdin) REDIS_URL_SOURCE="-" ;;
    --redis-secret) USE_SECRET=1 ;;
    --only) ONLY="$2"; shift ;;
    -h|--help) usage; exit 0 ;;
    *) usage >&2; cm_die "unknown argument: $1" ;;
  esac
  shift
done

check_config() {
  "$(cm_base_python)" - "$@" <<'EOF'
import json, pathlib, sys
cfg = json.loads(pathlib.Path("firebase.json").read_text())
fns = cfg["functions"] if isinstance(cfg["functions"], list) else [cfg["functions"]]
assert fns[0]["runtime"] == "python311", fns[0]
for key in ("rules", "indexes"):
    path = pathlib.Path(cfg["firestore"][key])
    if not path.is_file():
        sys.exit(f"deploy: firebase.json names {path}, which does not exist")
    if path.suffix == ".json":
        json.loads(path.read_text())
print(f"deploy: firebase.json ok (source {fns[0]['source']}, rules {cfg['firestore']['rules']}, "
      f"indexes {cfg['firestore']['indexes']}, hosting {cfg.get('hosting', {}).get('public')})")
EOF
}

# Deploy-time settings, read by the CLI (discovery) and the deployed functions: set the keys
# deploy.sh owns, keep the rest of the operator's file.
write_env_file() {
  local args=(--default FUNCTIONS_REGION=us-central1 --default MIN_INSTANCES=0)
  if [ -n "$REGION" ]; then args+=(--set "FUNCTIONS_REGION=$REGION"); fi
  if [ -n "$MIN_INST" ]; then args+=(--set "MIN_INSTANCES=$MIN_INST"); fi
  if [ -n "$VPC" ]; then args+=(--set "VPC_CONNECTOR=$VPC"); fi
  if [ -n "$REDIS_URL_SOURCE" ] || [ "$USE_SECRET" = 1 ]; then args+=(--set REDIS_URL_SECRET=1); fi
  "$(cm_base_python)" scripts/bundle_env.py merge "$1/.env.$PROJECT" "${args[@]}"
}

# Every .env* file of the bundle is uploaded; none may open the doors (docs/security.md, "Deployment guard").
check_env_files() {
  "$(cm_base_python)" scripts/bundle_env.py check "$1" \
    || cm_die "the bundle $1 carries emulator-only settings (above): a deployed function would refuse to serve"
}

# What a deploy can know before it starts: Hosting's rewrites name the functions' region,
# a VPC connector (Memorystore has a private IP only), REDIS_URL's scheme and options.
check_deploy_settings() {
  local region
  region="$(sed -n 's/^[[:space:]]*\(export[[:space:]]\+\)\{0,1\}FUNCTIONS_REGION=//p' "$1/.env.$PROJECT" | tail -1)"
  "$(cm_base_python)" - "${region:-us-central1}" <<'EOF' || cm_die "firebase.json's Hosting rewrites do not reach the functions' region"
import json, pathlib, sys
region = sys.argv[1]
cfg = json.loads(pathlib.Path("firebase.json").read_text())
pinned = sorted({r["function"].get("region", "us-central1") for r in cfg.get("hosting", {}).get("rewrites", [])
                 if isinstance(r.get("function"), dict)} - {region})
if pinned:
    sys.exit(f"deploy: the functions go to {region}, but firebase.json's Hosting rewrites name {', '.join(pinned)}: "
             f"set each rewrite's \"region\" to {region}")
EOF
  [ -n "$VPC" ] || grep -Eq '^\s*(export\s+)?VPC_CONNECTOR=.' "$1/.env.$PROJECT" \
    || cm_log "WARNING: no --vpc-connector: the functions cannot reach a Memorystore private IP (they fall back to Firestore)"
  if [ -n "$REDIS_URL_SOURCE" ] && [ "$REDIS_URL_SOURCE" != "-" ]; then
    if [ -x "$CM_VENV/bin/python" ]; then
      "$CM_VENV/bin/python" - "$REDIS_URL_SOURCE" <<'EOF' || cm_die "REDIS_URL (from $REDIS_URL_SOURCE) would be refused at start"
import pathlib, sys
sys.path.insert(0, ".")
from shared.settings import _check_redis_url
url = pathlib.Path(sys.argv[1]).read_text().strip()
try:
    _check_redis_url(url)
except ValueError as exc:  # its text names the option, never the URL (it may hold a password)
    sys.exit(f"deploy: {exc}")
if not url.startswith("rediss://"):
    print("[chat-memory] WARNING: REDIS_URL is not TLS (redis://): fine only if Memorystore has no in-transit "
          "encryption; with it, use rediss://…:6378 and REDIS_TLS_CA_PATH", file=sys.stderr)
EOF
    else
      cm_log "WARNING: no $CM_VENV: REDIS_URL's options not checked (make setup)"
    fi
  fi
  cm_log "reminder: Memorystore must run with maxmemory-policy noeviction (docs/operations.md); this script cannot see it"
}

if [ "$CHECK_ONLY" = 1 ]; then
  [ -n "$PROJECT" ] || cm_die "which project? --project ID or CM_DEPLOY_PROJECT"
  check_config
  "$(cm_base_python)" scripts/stage.py --out "$CM_BUNDLE" >/dev/null
  write_env_file "$CM_BUNDLE"
  check_env_files "$CM_BUNDLE"
  check_deploy_settings "$CM_BUNDLE"
  cm_log "check ok: $CM_BUNDLE/.env.$PROJECT written, no .env* file carries emulator-only settings"
  exit 0
fi

if [ "$DRY_RUN" = 1 ]; then
  T0=$SECONDS
  DRY="$CM_ROOT/.build/dryrun"
  rm -rf "$DRY"
  check_config
  "$(cm_base_python)" scripts/stage.py --out "$DRY/functions" >/dev/null
  check_env_files "$DRY/functions"
  cm_log "dry-run: installing the bundle's requirements into a fresh venv (pip cache) ..."
  "$(cm_base_python)" -m venv "$DRY/venv"
  "$DRY/venv/bin/python" -m pip install -q --disable-pip-version-check -r "$DRY/functions/requirements.txt" 2>&1 | cm_pipfilter
  [ "${PIPESTATUS[0]}" -eq 0 ] || cm_die "dry-run: pip install failed"
  # Import as the CLI's discovery does: from the bundle, with no cloud credentials or
  # emulator variables, and only the deploy-time settings.
  cm_log "dry-run: importing main from the bundle; functions it would deploy to ${PROJECT:-<project>} (${REGION:-us-central1}):"
  (cd "$DRY/functions" && env -i PATH="/usr/bin:/bin" HOME="$DRY" LANG=C.UTF-8 \
    ${VPC:+VPC_CONNECTOR="$VPC"} MIN_INSTANCES="${MIN_INST:-0}" FUNCTIONS_REGION="${REGION:-us-central1}" REDIS_URL_SECRET=1 \
    "$DRY/venv/bin/python" "$CM_ROOT/scripts/list_functions.py" .) || cm_die "dry-run: the bundle does not import"
  cm_log "dry-run: would run: firebase deploy --project ${PROJECT:-<project>} --only $ONLY --non-interactive"
  rm -rf "$DRY"
  cm_log "dry-run ok ($((SECONDS - T0)) s)"
  exit 0
fi

[ -n "$PROJECT" ] || cm_die "which project? --project ID or CM_DEPLOY_PROJECT"
case "$PROJECT" in demo-*) cm_die "$PROJECT is an emulator-only (demo-) project" ;; esac
check_config
CM_SKIP_CHROMIUM=1 bash scripts/setup.sh  # Chromium is for the browser tests only
export PATH="$CM_ROOT/node_modules/.bin:$PATH"

write_env_file "$CM_BUNDLE"
check_env_files "$CM_BUNDLE"
check_deploy_settings "$CM_BUNDLE"

if [ -n "$REDIS_URL_SOURCE" ]; then
  cm_log "storing REDIS_URL in Secret Manager (project $PROJECT) ..."
  if [ "$REDIS_URL_SOURCE" = "-" ]; then
    firebase functions:secrets:set REDIS_URL --project "$PROJECT" --data-file - --non-interactive
  else
    firebase functions:secrets:set REDIS_URL --project "$PROJECT" --data-file "$REDIS_URL_SOURCE" --non-interactive
  fi
fi

if ! { [ -d web/dist ] && [ -f web/dist/index.html ]; }; then
  cm_log "WARNING: no web/dist/index.html (npm --prefix web run build): Hosting is left out of this deploy"
  ONLY="$(echo "$ONLY" | sed 's/,hosting//; s/^hosting,//')"
fi
cm_log "firebase deploy --project $PROJECT --only $ONLY"
firebase deploy --project "$PROJECT" --only "$ONLY" --non-interactive --force
