#!/usr/bin/env bash
# Deploy chat-memory to a Firebase / Google Cloud project.
#
#   ./deploy.sh --project my-project [--region europe-west1] [--vpc-connector redis-conn] \
#               [--redis-url-file path | --redis-url-stdin | --redis-secret] [--only functions,firestore,hosting]
#   ./deploy.sh --dry-run      # no cloud: build the bundle, install its requirements into a
#                              # fresh venv, import main and list the functions it would deploy
#
# What it does (real deploy):
#   1. stages the bundle (.build/functions = functions/ + shared/ + requirements.txt);
#   2. writes .build/functions/.env.<project> with the deploy-time settings that
#      functions/main.py reads when the CLI imports it: VPC_CONNECTOR (Serverless VPC Access
#      connector that reaches Memorystore's private IP), MIN_INSTANCES, FUNCTIONS_REGION;
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
PROJECT="${CM_DEPLOY_PROJECT:-${GCLOUD_PROJECT:-}}"
REGION="${FUNCTIONS_REGION:-us-central1}"
VPC="${VPC_CONNECTOR:-}"
MIN_INST="${MIN_INSTANCES:-0}"
ONLY="${CM_DEPLOY_ONLY:-functions,firestore:rules,firestore:indexes,hosting}"
REDIS_URL_SOURCE=""
USE_SECRET="${REDIS_URL_SECRET:-0}"

usage() { sed -n '2,25p' "$0" | sed 's/^# \{0,1\}//'; }

while [ $# -gt 0 ]; do
  case "$1" in
    --dry-run) DRY_RUN=1 ;;
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

if [ "$DRY_RUN" = 1 ]; then
  T0=$SECONDS
  DRY="$CM_ROOT/.build/dryrun"
  rm -rf "$DRY"
  check_config
  "$(cm_base_python)" scripts/stage.py --out "$DRY/functions" >/dev/null
  cm_log "dry-run: installing the bundle's requirements into a fresh venv (pip cache) ..."
  "$(cm_base_python)" -m venv "$DRY/venv"
  "$DRY/venv/bin/python" -m pip install -q --disable-pip-version-check -r "$DRY/functions/requirements.txt" 2>&1 | cm_pipfilter
  [ "${PIPESTATUS[0]}" -eq 0 ] || cm_die "dry-run: pip install failed"
  # Import as the CLI's discovery does: from the bundle, with no cloud credentials or
  # emulator variables, and only the deploy-time settings.
  cm_log "dry-run: importing main from the bundle; functions it would deploy to ${PROJECT:-<project>} ($REGION):"
  (cd "$DRY/functions" && env -i PATH="/usr/bin:/bin" HOME="$DRY" LANG=C.UTF-8 \
    ${VPC:+VPC_CONNECTOR="$VPC"} MIN_INSTANCES="$MIN_INST" FUNCTIONS_REGION="$REGION" REDIS_URL_SECRET=1 \
    "$DRY/venv/bin/python" "$CM_ROOT/scripts/list_functions.py" .) || cm_die "dry-run: the bundle does not import"
  cm_log "dry-run: would run: firebase deploy --project ${PROJECT:-<project>} --only $ONLY --non-interactive"
  rm -rf "$DRY"
  cm_log "dry-run ok ($((SECONDS - T0)) s)"
  exit 0
fi

[ -n "$PROJECT" ] || cm_die "which project? --project ID or CM_DEPLOY_PROJECT"
case "$PROJECT" in demo-*) cm_die "$PROJECT is an emulator-only (demo-) project" ;; esac
check_config
bash scripts/setup.sh
export PATH="$CM_ROOT/node_modules/.bin:$PATH"

# Deploy-time settings, read by the CLI (discovery) and the deployed functions.
ENV_FILE="$CM_BUNDLE/.env.$PROJECT"
{
  echo "FUNCTIONS_REGION=$REGION"
  echo "MIN_INSTANCES=$MIN_INST"
  if [ -n "$VPC" ]; then echo "VPC_CONNECTOR=$VPC"; fi
  if [ -n "$REDIS_URL_SOURCE" ] || [ "$USE_SECRET" = 1 ]; then echo "REDIS_URL_SECRET=1"; fi
  true # (a false test as the block's last command would end the script under set -e)
} >"$ENV_FILE"
[ -n "$VPC" ] || cm_log "WARNING: no --vpc-connector: the functions cannot reach a Memorystore private IP (they fall back to Firestore)"

if [ -n "$REDIS_URL_SOURCE" ]; then
  cm_log "storing REDIS_URL in Secret Manager (project $PROJECT) ..."
  if [ "$REDIS_URL_SOURCE" = "-" ]; then
    firebase functions:secrets:set REDIS_URL --project "$PROJECT" --data-file - --non-interactive
  else
    firebase functions:secrets:set REDIS_URL --project "$PROJECT" --data-file "$REDIS_URL_SOURCE" --non-interactive
  fi
fi

[ -d web/dist ] && [ -f web/dist/index.html ] || ONLY="$(echo "$ONLY" | sed 's/,hosting//; s/^hosting,//')"
cm_log "firebase deploy --project $PROJECT --only $ONLY"
firebase deploy --project "$PROJECT" --only "$ONLY" --non-interactive --force
