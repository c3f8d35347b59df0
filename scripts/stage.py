#!/usr/bin/env python3
"""Build the functions bundle that Firebase uploads (and the emulator runs).

Firebase uploads only ``functions.source``, so the top-level ``shared/`` package must
be copied next to ``main.py``. One layout for the emulator, the tests and deploy:

    <out>/main.py            (and anything else in functions/, but venv/ and caches)
    <out>/shared/            (copy of the top-level package)
    <out>/requirements.txt   (copy of the top-level requirements.txt)
    <out>/venv -> <venv-dir>  (only with --venv; the Functions emulator activates it)

``--link`` symlinks instead of copying (``make dev``: edits show up in the emulator
without re-staging). ``--venv`` creates/refreshes one shared venv (default
``.build/venv``) and links it as ``<out>/venv``; pip runs only when requirements.txt or
the Python version changed (a stamp file inside the venv), under a lock, so several
bundles (dev, each test run) share one install. Firebase never uploads ``venv``.
"""

from __future__ import annotations

import argparse
import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
KEEP = {"venv"}  # survives re-staging
IGNORE = shutil.ignore_patterns("venv", "__pycache__", "*.pyc", ".pytest_cache", ".mypy_cache", ".ruff_cache")
STAMP = ".cm-requirements.sha256"


def _clear(out: Path) -> None:
    for child in out.iterdir():
        if child.name in KEEP:
            continue
        if child.is_symlink() or child.is_file():
            child.unlink()
        else:
            shutil.rmtree(child)


def _place(src: Path, dst: Path, link: bool) -> None:
    if link:
        dst.symlink_to(os.path.relpath(src, dst.parent))
    elif src.is_dir():
        shutil.copytree(src, dst, ignore=IGNORE)
    else:
        shutil.copy2(src, dst)


def stage(out: Path, link: bool) -> None:
    out.mkdir(parents=True, exist_ok=True)
    _clear(out)
    functions = ROOT / "functions"
    if functions.is_dir():
        for item in sorted(functions.iterdir()):
            if item.name in {"venv", "__pycache__", "shared", "requirements.txt"} or item.suffix == ".pyc":
                continue
            _place(item, out / item.name, link)
    _place(ROOT / "shared", out / "shared", link)
    # Always a real file: pip and the Firebase CLI read it from the bundle.
    shutil.copy2(ROOT / "requirements.txt", out / "requirements.txt")
    if not (out / "main.py").exists():
        print(f"stage: note: functions/main.py does not exist yet; {out} has no entry module", file=sys.stderr)


def _requirements_digest(requirements: Path, python: str) -> str:
    h = hashlib.sha256()
    h.update(requirements.read_bytes())
    h.update(python.encode())
    return h.hexdigest()


def ensure_venv(venv_dir: Path, requirements: Path, python: str = sys.executable, quiet: bool = True) -> bool:
    """Create venv_dir if missing, install requirements if they changed. True if pip ran."""
    version = subprocess.run(
        [python, "-c", "import sys; print(sys.version)"], check=True, capture_output=True, text=True
    ).stdout.strip()
    digest = _requirements_digest(requirements, version)
    stamp = venv_dir / STAMP
    vpy = venv_dir / "bin" / "python"
    if vpy.exists() and stamp.exists() and stamp.read_text().strip() == digest:
        return False
    if not vpy.exists():
        if python == sys.executable:
            venv.EnvBuilder(with_pip=True, clear=True).create(venv_dir)
        else:
            subprocess.run([python, "-m", "venv", "--clear", str(venv_dir)], check=True)
    cmd = [str(vpy), "-m", "pip", "install", "--disable-pip-version-check", "-r", str(requirements)]
    if quiet:
        cmd.insert(4, "-q")
    print(f"stage: installing {requirements.name} into {venv_dir} ...", file=sys.stderr, flush=True)
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, check=False)
    noise = "is ignored: it is neither a file nor a directory"  # this machine's absent local indexes
    out = "\n".join(line for line in proc.stdout.splitlines() if noise not in line)
    if out.strip():
        print(out, file=sys.stderr)
    if proc.returncode != 0:
        raise SystemExit(f"stage: pip install failed ({proc.returncode})")
    stamp.write_text(digest + "\n")
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(ROOT / ".build" / "functions"), help="bundle directory")
    parser.add_argument("--link", action="store_true", help="symlink sources instead of copying (dev)")
    parser.add_argument("--venv", action="store_true", help="create/refresh the venv and link it as <out>/venv")
    parser.add_argument("--venv-dir", default=str(ROOT / ".build" / "venv"), help="where the shared venv lives")
    parser.add_argument("--python", default=sys.executable, help="interpreter for a new venv")
    args = parser.parse_args(argv)
    out = Path(args.out).resolve()
    stage(out, link=args.link)
    if args.venv:
        venv_dir = Path(args.venv_dir).resolve()
        venv_dir.parent.mkdir(parents=True, exist_ok=True)
        with open(venv_dir.parent / ".venv.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            ensure_venv(venv_dir, out / "requirements.txt", python=args.python)
        link = out / "venv"
        if link.is_symlink() or link.is_file():
            link.unlink()
        elif link.is_dir():
            shutil.rmtree(link)
        link.symlink_to(venv_dir)
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
