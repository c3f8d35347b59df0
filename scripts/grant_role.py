"""Grant (or revoke) a role, as a Firebase custom claim:

- `backend` (claim `chat_backend`): may write assistant and system turns and answer metadata
  over HTTP (end users append user turns only; the `chat` function writes its own answers);
- `admin` (claim `admin`): may read the answer-quality reports (admin_* functions).

    python scripts/grant_role.py backend <uid>            # grant
    python scripts/grant_role.py admin <uid> --revoke     # revoke

Locally, with `make dev` running: `make grant ROLE=admin UID=<uid>` (the uid the console
shows). With neither FIREBASE_AUTH_EMULATOR_HOST nor a project set, the script finds the
running Auth emulator itself (its port in firebase.json, or in the config CM_DEV_CONFIG names)
and uses the demo project. Against a real project: run with Application Default Credentials
of an account allowed to manage Firebase Auth users (e.g. `gcloud auth application-default
login`) and GOOGLE_CLOUD_PROJECT set. The claim is in the user's next ID
token: the client refreshes its token (or signs in again) after the change. Other custom
claims of the user are kept.

A revocation also revokes the user's refresh tokens: the ID tokens they hold still carry
the claim, and the functions refuse them once their account check is due (at most
TOKEN_CHECK_CACHE_S later, 60 s by default). The user signs in again to go on.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from shared.edge.auth import ADMIN_CLAIM, BACKEND_CLAIM  # noqa: E402
from shared.firebase_app import get_app  # noqa: E402

ROLES = {"backend": BACKEND_CLAIM, "admin": ADMIN_CLAIM}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("role", choices=sorted(ROLES))
    parser.add_argument("uid")
    parser.add_argument("--revoke", action="store_true", help="remove the claim instead")
    args = parser.parse_args(argv)

    if not _use_a_running_emulator():
        return 2
    from firebase_admin import auth

    app = get_app()
    try:
        user = auth.get_user(args.uid, app=app)
    except auth.UserNotFoundError:
        print(f"no user {args.uid!r} in this project's Firebase Auth (check the uid and the project)", file=sys.stderr)
        return 2
    claims = dict(user.custom_claims or {})
    claim = ROLES[args.role]
    if args.revoke:
        claims.pop(claim, None)
    else:
        claims[claim] = True
    auth.set_custom_user_claims(args.uid, claims or None, app=app)
    if not args.revoke:
        print(f"{args.uid}: {claim} granted (in the user's next ID token: refresh it or sign in again)")
        return 0
    # The ID tokens issued before now still hold the claim: revoke them with the refresh
    # tokens (the functions check revocation at least every TOKEN_CHECK_CACHE_S).
    auth.revoke_refresh_tokens(args.uid, app=app)
    print(f"{args.uid}: {claim} revoked, and the user's tokens revoked with it (they sign in again)")
    return 0


def _use_a_running_emulator() -> bool:
    """With no Auth emulator and no project named, find the local stack's Auth emulator
    (make dev) and use it with the demo project. False (and why, on stderr) if none answers."""
    if os.environ.get("FIREBASE_AUTH_EMULATOR_HOST") or any(os.environ.get(v) for v in _PROJECT_VARS):
        return True
    config = Path(os.environ.get("CM_DEV_CONFIG") or ROOT / "firebase.json")
    if not config.is_absolute():
        config = ROOT / config
    auth = json.loads(config.read_text()).get("emulators", {}).get("auth", {})
    host = f"{auth.get('host', '127.0.0.1')}:{auth.get('port', 9099)}"
    name, port = host.rsplit(":", 1)
    try:
        with socket.create_connection((name, int(port)), timeout=2):
            pass
    except OSError:
        print(
            f"no Auth emulator answers on {host} (start the local stack with `make dev`), and no project is set:"
            " for a real project set GOOGLE_CLOUD_PROJECT and use Application Default Credentials",
            file=sys.stderr,
        )
        return False
    os.environ["FIREBASE_AUTH_EMULATOR_HOST"] = host
    os.environ["GCLOUD_PROJECT"] = os.environ.get("CM_PROJECT", "demo-chat-memory")
    print(f"using the local Auth emulator on {host} (project {os.environ['GCLOUD_PROJECT']})")
    return True


_PROJECT_VARS = ("GOOGLE_CLOUD_PROJECT", "GCLOUD_PROJECT", "GCP_PROJECT")


if __name__ == "__main__":
    sys.exit(main())
