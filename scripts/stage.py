#!/usr/bin/env python3
"""Build the functions bundle that Firebase uploads (and the emulator runs).

Firebase uploads only ``functions.source``, so the top-level ``shared/`` package must
be copied next to ``main.py``. One layout for the emulator, the tests and deploy:

    <out>/main.py            (and anything else in functions/, but venv/ and caches)
    <out>/shared/            (copy of the top-level package)
    <out>/requirements.txt   (copy of the top-level requirements.txt)
    <out>/venv -> <venv-dir>  (only with --venv; the Functions emulator activates it)

Files are synced in place; ``--watch`` keeps syncing (``make dev``: edits to functions/
and shared/ reach the emulator, which reloads). ``--venv`` creates/refreshes one shared
venv (default ``.build/venv``) and links it as ``<out>/venv``; pip runs only when requirements.txt or
the Python version changed (a stamp file inside the venv), under a lock, so several
bundles (dev, each test run) share one install. Firebase never uploads ``venv``.
``--ensure-venv DIR --requirements FILE`` applies the same rule to another venv
(scripts/setup.sh: the dev venv from requirements-dev.txt).
"""

from __future__ import annotations

import argparse
import fcntl
import hashlib
import shutil
import subprocess
import sys
import time
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
KEEP = {"venv"}  # survives re-staging
SKIP_DIRS = {"venv", "__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache"}
STAMP = ".cm-requirements.sha256"


def _sources() -> dict[str, Path]:
    """Bundle-relative path -> source file, for everything that goes into the bundle."""
    files: dict[str, Path] = {}

    def add_tree(src: Path, prefix: str) -> None:
        for path in sorted(src.rglob("*")):
            rel = path.relative_to(src)
            if any(part in SKIP_DIRS for part in rel.parts) or path.suffix == ".pyc" or not path.is_file():
                continue
            files[f"{prefix}{rel.as_posix()}"] = path

    functions = ROOT / "functions"
    if functions.is_dir():
        add_tree(functions, "")
    files.pop("requirements.txt", None)
    for name in [n for n in files if n.startswith("shared/")]:
        files.pop(name)  # a functions/shared would shadow the real package
    add_tree(ROOT / "shared", "shared/")
    # The bundle installs the top-level pinned requirements (one list for every layer).
    files["requirements.txt"] = ROOT / "requirements.txt"
    return files


def stage(out: Path) -> list[str]:
    """Make ``out`` hold exactly the bundle (venv/ aside); return the paths that changed.

    Files are synced in place (copied when size or mtime differ, extras removed), so a
    running emulator watching ``out`` sees only real changes. (No symlinks: Python
    resolves a symlinked main.py to functions/, where ``shared`` is not importable.)
    """
    out.mkdir(parents=True, exist_ok=True)
    files = _sources()
    changed = _copy_changed(files, out) + _remove_stale(files, out)
    if not (out / "main.py").exists():
        print(f"stage: note: functions/main.py does not exist yet; {out} has no entry module", file=sys.stderr)
    return changed


def _copy_changed(files: dict[str, Path], out: Path) -> list[str]:
    changed = []
    for rel, src in files.items():
        dst = out / rel
        if dst.is_symlink() or (dst.exists() and not dst.is_file()):
            _remove(dst)
        st = src.stat()
        if dst.exists():
            dt = dst.stat()
            if dt.st_size == st.st_size and int(dt.st_mtime) == int(st.st_mtime):
                continue
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, dst)
        changed.append(rel)
    return changed


def _remove_stale(files: dict[str, Path], out: Path) -> list[str]:
    """Remove what is no longer in the sources (but the venv and deploy's .env files)."""
    changed = []
    for path in sorted(out.rglob("*"), reverse=True):
        rel = path.relative_to(out)
        top = rel.parts[0]
        if top in KEEP or top.startswith(".env"):
            continue
        if path.is_dir() and not path.is_symlink():
            if any(part in SKIP_DIRS for part in rel.parts):
                shutil.rmtree(path, ignore_errors=True)
            elif not any(path.iterdir()):
                path.rmdir()
        elif rel.as_posix() not in files:
            path.unlink()
            changed.append(rel.as_posix())
    return changed


def _remove(path: Path) -> None:
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.is_dir():
        shutil.rmtree(path)


def watch(out: Path, interval: float = 1.0) -> None:
    """Re-sync the bundle whenever a source changes (make dev); the emulator reloads."""
    while True:
        time.sleep(interval)
        try:
            changed = stage(out)
        except OSError as exc:  # a file vanished mid-copy (an editor's save): next round
            print(f"stage: {exc}", file=sys.stderr)
            continue
        if changed:
            print(f"stage: synced {', '.join(changed)}", file=sys.stderr)


def _requirement_files(requirements: Path) -> list[Path]:
    """The file and, in order, those it includes with ``-r`` (a change to any one counts)."""
    files = [requirements]
    for line in requirements.read_text().splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0] in ("-r", "--requirement"):  # noqa: PLR2004 - option and path
            files += _requirement_files(requirements.parent / parts[1])
    return files


def _venv_version(venv_dir: Path) -> str:
    """The Python version a venv was made with (its pyvenv.cfg), or ''."""
    try:
        for line in (venv_dir / "pyvenv.cfg").read_text().splitlines():
            key, _, value = line.partition("=")
            if key.strip() == "version":
                return value.strip()
    except OSError:
        pass
    return ""


def ensure_venv(venv_dir: Path, requirements: Path, python: str = sys.executable, quiet: bool = True) -> bool:
    """Create venv_dir if missing; pip install requirements when they changed since the last
    install (the stamp inside the venv: the sha256 of the requirement files, as
    ``cat FILE INCLUDED... | sha256sum``) or the venv was made with another Python version
    than ``python``'s. True if pip ran."""
    version = subprocess.run(
        [python, "-c", "import platform; print(platform.python_version())"], check=True, capture_output=True, text=True
    ).stdout.strip()
    digest = hashlib.sha256(b"".join(f.read_bytes() for f in _requirement_files(requirements))).hexdigest()
    stamp = venv_dir / STAMP
    vpy = venv_dir / "bin" / "python"
    if vpy.exists() and _venv_version(venv_dir) == version and stamp.exists() and stamp.read_text().strip() == digest:
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
    parser.add_argument("--watch", action="store_true", help="after staging, keep the bundle in sync (dev)")
    parser.add_argument("--venv", action="store_true", help="create/refresh the venv and link it as <out>/venv")
    parser.add_argument("--venv-dir", default=str(ROOT / ".build" / "venv"), help="where the shared venv lives")
    parser.add_argument("--python", default=sys.executable, help="interpreter for a new venv")
    parser.add_argument(
        "--ensure-venv",
        metavar="DIR",
        help="only make DIR a venv with --requirements installed, as the bundle's (no staging)",
    )
    parser.add_argument("--requirements", default=str(ROOT / "requirements-dev.txt"), help="with --ensure-venv")
    args = parser.parse_args(argv)
    if args.ensure_venv:
        ensure_venv(Path(args.ensure_venv), Path(args.requirements), python=args.python)
        return 0
    out = Path(args.out).resolve()
    stage(out)
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
    print(out, flush=True)
    if args.watch:
        try:
            watch(out)
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
