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
    env["CM_VENV"] = str(ROOT / ".venv")  # the checkout's dev venv, as `make setup` makes it
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
    _rewrites_to(repo, "europe-west1")  # Hosting's rewrites name the functions' region
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


def _rewrites_to(repo: Path, region: str) -> None:
    import json

    path = repo / "firebase.json"
    cfg = json.loads(path.read_text())
    for r in cfg["hosting"]["rewrites"]:
        if "function" in r:
            r["function"]["region"] = region
    path.write_text(json.dumps(cfg))


def test_the_check_catches_hosting_rewrites_pinned_to_another_region(repo: Path):
    """Issue 20: `--check --region europe-west1` said ok, while Hosting's /api rewrites
    still named us-central1 (the console would call functions that are not there)."""
    out = deploy_check(repo, "--region", "europe-west1", "--vpc-connector", "c")
    assert out.returncode != 0, out.stderr
    assert "us-central1" in out.stderr and "rewrites" in out.stderr and "europe-west1" in out.stderr
    _rewrites_to(repo, "europe-west1")
    assert deploy_check(repo, "--region", "europe-west1", "--vpc-connector", "c").returncode == 0


def test_the_check_warns_of_what_a_deploy_would_warn_of(repo: Path, tmp_path: Path):
    out = deploy_check(repo)
    assert out.returncode == 0 and "WARNING: no --vpc-connector" in out.stderr, out.stderr
    plain = tmp_path / "plain.txt"
    plain.write_text("redis://10.0.0.3:6379/0\n")
    out = deploy_check(repo, "--vpc-connector", "c", "--redis-url-file", str(plain))
    assert out.returncode == 0 and "not TLS" in out.stderr, out.stderr
    bad = tmp_path / "bad.txt"
    bad.write_text("redis://10.0.0.3:6379/0?ssl_cert_reqs=none\n")
    out = deploy_check(repo, "--vpc-connector", "c", "--redis-url-file", str(bad))
    assert out.returncode != 0 and "ssl_cert_reqs" in out.stderr and "10.0.0.3" not in out.stderr, out.stderr
    assert "noeviction" in deploy_check(repo).stderr


def test_help_is_the_usage_and_nothing_else(repo: Path):
    out = subprocess.run(["bash", str(repo / "deploy.sh"), "--help"], capture_output=True, text=True, check=False)
    assert out.returncode == 0 and out.stdout.startswith("Deploy chat-memory")
    assert "set -euo" not in out.stdout and out.stdout.rstrip().endswith("CM_DEPLOY_ONLY."), out.stdout[-200:]
