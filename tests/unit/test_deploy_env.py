"""deploy.sh and the bundle's .env files, without a cloud: `deploy.sh --check` stages the bundle,
writes its .env.<project> and checks every .env* file, as a real deploy does before `firebase
deploy`. Run on a copy of the repository's deploy files, so the real functions/ is untouched."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
COPIED = [
    "deploy.sh",
    "scripts/lib.sh",
    "scripts/stage.py",
    "scripts/bundle_env.py",
    "functions/main.py",
    "requirements.txt",
    "firebase.json",
    "firestore.rules",
    "firestore.indexes.json",
]
# What deploy.sh reads from the environment: none of the caller's may leak into the test.
_DEPLOY_ENV = ("CM_DEPLOY_PROJECT", "GCLOUD_PROJECT", "FUNCTIONS_REGION", "VPC_CONNECTOR", "MIN_INSTANCES")


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    for rel in COPIED:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / rel, root / rel)
    shutil.copytree(ROOT / "shared", root / "shared", ignore=shutil.ignore_patterns("__pycache__"))
    return root


def deploy_check(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in _DEPLOY_ENV and not k.startswith("CM_")}
    env["CM_BUNDLE"] = str(repo / ".build" / "functions")
    return subprocess.run(
        ["bash", str(repo / "deploy.sh"), "--check", "--project", "p", *args],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize(
    ("name", "line", "key"),
    [
        (".env", "AUTH_DISABLED=true", "AUTH_DISABLED"),
        (".env", "AUTH_DISABLED=1", "AUTH_DISABLED"),
        (".env.p", "FIREBASE_AUTH_EMULATOR_HOST=127.0.0.1:9099", "FIREBASE_AUTH_EMULATOR_HOST"),
        (".env.local", 'export FIRESTORE_EMULATOR_HOST="localhost:8080"', "FIRESTORE_EMULATOR_HOST"),
        (".env.staging", "FUNCTIONS_EMULATOR=true", "FUNCTIONS_EMULATOR"),
        # The settings read names case-insensitively: so does the check (issue 24, item 13).
        (".env", "auth_disabled=true", "auth_disabled"),
        (".env", "Auth_Disabled=yes", "Auth_Disabled"),
        (".env.p", "firestore_emulator_host=localhost:8080", "firestore_emulator_host"),
        (".env.p", "firebase_auth_emulator_host=localhost:9099", "firebase_auth_emulator_host"),
    ],
)
def test_an_emulator_only_setting_in_any_env_file_stops_the_deploy(repo: Path, name: str, line: str, key: str):
    (repo / "functions" / name).write_text(f"# operator settings\nCORS_ORIGINS=https://chat.example.com\n{line}\n")
    out = deploy_check(repo)
    assert out.returncode != 0, out.stdout + out.stderr
    assert f"{name}: {key}" in out.stderr, out.stderr


def test_a_clean_bundle_passes_the_check(repo: Path):
    (repo / "functions" / ".env").write_text("AUTH_DISABLED=false\nCORS_ORIGINS=https://chat.example.com\n")
    out = deploy_check(repo)
    assert out.returncode == 0, out.stderr
    assert "check ok" in out.stderr


def test_the_operators_settings_survive_deploy(repo: Path):
    # The operator's file in functions/ (staged into the bundle as .env.p).
    (repo / "functions" / ".env.p").write_text(
        "# tuned for production\nCORS_ORIGINS=https://chat.example.com\nSUMMARIZER=gemini\nMIN_INSTANCES=2\n"
    )
    out = deploy_check(repo, "--region", "europe-west1", "--vpc-connector", "redis-conn")
    assert out.returncode == 0, out.stderr
    written = (repo / ".build" / "functions" / ".env.p").read_text().splitlines()
    assert "CORS_ORIGINS=https://chat.example.com" in written and "SUMMARIZER=gemini" in written
    assert "# tuned for production" in written
    assert "MIN_INSTANCES=2" in written  # not given on the command line: the operator's stays
    assert "FUNCTIONS_REGION=europe-west1" in written and "VPC_CONNECTOR=redis-conn" in written
    assert "kept the operator's CORS_ORIGINS, SUMMARIZER, MIN_INSTANCES" in out.stderr

    # The operator now keeps the file in the bundle only (staging never removes .env files):
    # a later deploy with other flags changes only the keys it is given.
    (repo / "functions" / ".env.p").unlink()
    out = deploy_check(repo, "--min-instances", "1")
    assert out.returncode == 0, out.stderr
    written = (repo / ".build" / "functions" / ".env.p").read_text().splitlines()
    assert "MIN_INSTANCES=1" in written and "MIN_INSTANCES=2" not in written
    assert "SUMMARIZER=gemini" in written and "FUNCTIONS_REGION=europe-west1" in written
