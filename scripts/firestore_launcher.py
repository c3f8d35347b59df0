#!/usr/bin/env python3
"""Write a launcher jar for the Google Cloud CLI's Cloud Firestore emulator, if needed.

firebase-tools runs ``java -jar $FIRESTORE_EMULATOR_BINARY_PATH``, but the jar that the
Cloud CLI installs has no Main-Class. The launcher holds only a manifest naming the main
class, with the real jar on its Class-Path. It is written only where the CLI cannot use
its own download: no jar cached under ~/.cache/firebase/emulators and the installed jar
exists. Prints the launcher's path, or nothing when the CLI's own jar should be used.
"""

from __future__ import annotations

import argparse
import os
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GCLOUD_JAR = Path("/usr/lib/google-cloud-sdk/platform/cloud-firestore-emulator/cloud-firestore-emulator.jar")
MAIN_CLASS = "com.google.cloud.datastore.emulator.firestore.CloudFirestore"


def cli_has_own_jar() -> bool:
    cache = Path(os.environ.get("HOME", "~")).expanduser() / ".cache" / "firebase" / "emulators"
    return any(cache.glob("cloud-firestore-emulator*.jar"))


def write_launcher(out: Path, real_jar: Path) -> Path:
    out.parent.mkdir(parents=True, exist_ok=True)
    rel = os.path.relpath(real_jar, out.parent)
    manifest = f"Manifest-Version: 1.0\nMain-Class: {MAIN_CLASS}\nClass-Path: {rel}\n\n"
    tmp = out.with_suffix(".tmp")
    with zipfile.ZipFile(tmp, "w") as zf:
        zf.writestr("META-INF/MANIFEST.MF", manifest)
    tmp.replace(out)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(ROOT / ".cache" / "firestore-launcher.jar"))
    parser.add_argument("--jar", default=os.environ.get("CM_GCLOUD_FIRESTORE_JAR", str(GCLOUD_JAR)))
    args = parser.parse_args(argv)
    if cli_has_own_jar():
        return 0
    real = Path(args.jar)
    if not real.is_file():
        print(
            f"firestore_launcher: no cached emulator jar and no {real}; the Firebase CLI will try to download it",
            file=sys.stderr,
        )
        return 0
    out = Path(args.out)
    if not out.is_file():
        write_launcher(out, real)
    print(out.resolve())
    return 0


if __name__ == "__main__":
    sys.exit(main())
