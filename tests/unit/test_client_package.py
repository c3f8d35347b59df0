"""clients/python installs as a package (`pip install ./clients/python`), typed, importable."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_client_installs_with_pip_and_imports(tmp_path: Path):
    src = tmp_path / "src"
    shutil.copytree(ROOT / "clients" / "python", src, ignore=shutil.ignore_patterns("build", "*.egg-info"))
    venv = tmp_path / "venv"
    # this interpreter's packages seen (httpx): the package's own install, its build backend
    # (setuptools) from pip's cache as the deploy dry run's installs are
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)], check=True, timeout=120)
    py = venv / "bin" / "python"
    subprocess.run(
        [str(py), "-m", "pip", "install", "-q", str(src)],
        check=True,
        timeout=180,
        cwd=tmp_path,
    )
    code = (
        "import chat_memory_client as c, importlib.resources as r, pathlib; "
        "print(c.__version__, pathlib.Path(c.__file__).parent.name, r.files(c).joinpath('py.typed').is_file())"
    )
    out = subprocess.run([str(py), "-c", code], check=True, capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert out.stdout.split() == ["0.1.0", "chat_memory_client", "True"]
    shown = subprocess.run(
        [str(py), "-m", "pip", "show", "chat-memory-client"], check=True, capture_output=True, text=True, timeout=60
    )
    assert f"Location: {venv}" in shown.stdout  # installed into the fresh venv, not found elsewhere
