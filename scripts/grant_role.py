"""Grant (or revoke) a role, as a Firebase custom claim:

- `backend` (claim `chat_backend`): may write assistant and system turns and answer metadata
  over HTTP (end users append user turns only; the `chat` function writes its own answers);
- `admin` (claim `admin`): may read the answer-quality reports (admin_* functions).

    python scripts/grant_role.py backend <uid>            # grant
    python scripts/grant_role.py admin <uid> --revoke     # revoke

Against a real project: run with Application Default Credentials of an account allowed to
manage Firebase Auth users (e.g. `gcloud auth application-default login`) and
GOOGLE_CLOUD_PROJECT set. Against the Auth emulator: set FIREBASE_AUTH_EMULATOR_HOST (e.g.
127.0.0.1:9099) and GCLOUD_PROJECT=demo-chat-memory. The claim is in the user's next ID
token: the client refreshes its token (or signs in again) after the change. Other custom
claims of the user are kept.

A revocation also revokes the user's refresh tokens: the ID tokens they hold still carry
the claim, and the functions refuse them once their account check is due (at most
TOKEN_CHECK_CACHE_S later, 60 s by default). The user signs in again to go on.
"""

from __future__ import annotations

import argparse
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


if __name__ == "__main__":
    sys.exit(main())
