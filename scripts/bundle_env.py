#!/usr/bin/env python3
"""The functions bundle's .env files, for deploy.sh.

    bundle_env.py check DIR
        Stop (exit 1, naming the file and the key) if any DIR/.env* file sets what only the
        emulator may have: AUTH_DISABLED true, an *_EMULATOR_HOST, FUNCTIONS_EMULATOR,
        FIREBASE_EMULATOR_HUB. Every .env* file counts, .env.local too: the bundle uploads them all.
    bundle_env.py merge FILE [--set KEY=VALUE ...] [--default KEY=VALUE ...]
        Write the keys deploy.sh owns into FILE and keep every other line the operator put
        there. --set replaces the key; --default only fills it in when FILE lacks it.

Lines are read as the Firebase CLI reads them: ``[export] KEY=VALUE``, values optionally
quoted, ``#`` comments.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

_LINE = re.compile(r"^\s*(?:export\s+)?([\w./]+)\s*=\s*(.*?)\s*$")
# pydantic's false words; any other AUTH_DISABLED value would turn verification off
_FALSE = {"", "0", "false", "f", "no", "n", "off"}
_EMULATOR_KEYS = {"FUNCTIONS_EMULATOR", "FIREBASE_EMULATOR_HUB"}


def parse(text: str) -> list[tuple[str | None, str, str]]:
    """(key or None, value, the raw line) per line."""
    out: list[tuple[str | None, str, str]] = []
    for raw in text.splitlines():
        m = _LINE.match(raw)
        if not m or raw.lstrip().startswith("#"):
            out.append((None, "", raw))
            continue
        key, value = m.group(1), m.group(2)
        if value[:1] in ("'", '"') and len(value) > 1 and value.endswith(value[0]):
            value = value[1:-1]
        else:
            value = value.split(" #", 1)[0].strip()
        out.append((key, value, raw))
    return out


def open_doors(path: Path) -> list[str]:
    """The keys of one .env file that must never reach a deployed function."""
    found = []
    for key, value, _ in parse(path.read_text(encoding="utf-8", errors="replace")):
        if key is None:
            continue
        # The settings read names case-insensitively (auth_disabled=true turns auth off too).
        name = key.upper()
        if name == "AUTH_DISABLED" and value.strip().lower() not in _FALSE:
            found.append(f"{key}={value}")
        elif name.endswith("_EMULATOR_HOST") or name in _EMULATOR_KEYS:
            found.append(key)
    return found


def check(bundle: Path) -> int:
    problems = [f"{path}: {key}" for path in sorted(bundle.glob(".env*")) if path.is_file() for key in open_doors(path)]
    for p in problems:
        print(f"deploy: {p} is for local development or the emulator only; remove it before deploying", file=sys.stderr)
    return 1 if problems else 0


def merge(path: Path, set_: dict[str, str], default: dict[str, str]) -> list[str]:
    """Write the owned keys into ``path``; return the operator's keys that were kept."""
    lines = parse(path.read_text(encoding="utf-8")) if path.exists() else []
    present = {key for key, _, _ in lines if key}
    owned = {k: v for k, v in default.items() if k not in present} | set_
    kept_lines = [raw for key, _, raw in lines if key not in owned]
    kept = [key for key, _, _ in lines if key and key not in owned]
    body = kept_lines + [f"{k}={v}" for k, v in owned.items()]
    path.write_text("\n".join(body) + "\n", encoding="utf-8")
    return kept


def _pairs(items: list[str]) -> dict[str, str]:
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"bundle_env: {item!r} is not KEY=VALUE")
        out[key] = value
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("check")
    c.add_argument("bundle", type=Path)
    m = sub.add_parser("merge")
    m.add_argument("file", type=Path)
    m.add_argument("--set", action="append", default=[])
    m.add_argument("--default", action="append", default=[])
    args = parser.parse_args(argv)
    if args.cmd == "check":
        return check(args.bundle)
    kept = merge(args.file, _pairs(args.set), _pairs(args.default))
    if kept:
        print(f"deploy: {args.file.name}: kept the operator's {', '.join(kept)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
