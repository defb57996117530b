"""Fast checks of the cache logic in scripts/ensure-infinity-venv.sh: a venv whose stamp matches
the lock's sha256 is reused without any pip or Python-resolution step, INFINITY_VENV /
EMBEDDING_OPERATOR_CACHE / INFINITY_WHEELHOUSE are honoured, and --check never changes anything.
The slow paths (download, create, adopt) run for real in the image fixtures."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

REPO_ROOT = Path(__file__).resolve().parents[2]
SCRIPT = REPO_ROOT / "scripts" / "ensure-infinity-venv.sh"
LOCK_HASH = hashlib.sha256((REPO_ROOT / "image" / "requirements.txt").read_bytes()).hexdigest()
STAMP = ".embedding-operator-lock.sha256"


def fake_venv(path: Path, stamp: str) -> Path:
    (path / "bin").mkdir(parents=True)
    (path / "bin" / "python").symlink_to(sys.executable)
    (path / STAMP).write_text(stamp + "\n")
    return path


def ensure(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    # NB: PYTHON points nowhere: any step that needed a Python to resolve or pip would fail.
    full_env = {"PATH": os.environ["PATH"], "HOME": os.environ["HOME"], "PYTHON": "/nonexistent"}
    return subprocess.run(
        [str(SCRIPT), *args], env={**full_env, **env}, capture_output=True, text=True, timeout=60
    )


def test_matching_stamp_reuses_the_venv_without_pip(tmp_path: Path) -> None:
    venv = fake_venv(tmp_path / "venv", LOCK_HASH)
    proc = ensure(INFINITY_VENV=str(venv))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == str(venv)
    assert proc.stderr == ""


def test_cache_dir_is_the_default_parent(tmp_path: Path) -> None:
    venv = fake_venv(tmp_path / "infinity-venv", LOCK_HASH)
    proc = ensure(EMBEDDING_OPERATOR_CACHE=str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == str(venv)


def test_check_reports_a_stale_venv_and_changes_nothing(tmp_path: Path) -> None:
    venv = fake_venv(tmp_path / "venv", "0" * 64)
    before = sorted(p.name for p in venv.rglob("*"))
    assert ensure("--check", INFINITY_VENV=str(venv)).returncode == 1
    assert sorted(p.name for p in venv.rglob("*")) == before
    assert (venv / STAMP).read_text().strip() == "0" * 64
    (venv / STAMP).write_text(LOCK_HASH + "\n")
    assert ensure("--check", INFINITY_VENV=str(venv)).returncode == 0


def test_check_reports_a_missing_venv(tmp_path: Path) -> None:
    assert ensure("--check", INFINITY_VENV=str(tmp_path / "absent")).returncode == 1
    assert not (tmp_path / "absent").exists()


def test_stale_venv_needs_python_311_and_says_so(tmp_path: Path) -> None:
    venv = fake_venv(tmp_path / "venv", "0" * 64)
    (venv / "bin" / "python").unlink()  # not adoptable: rebuilding needs a Python 3.11
    proc = ensure(
        INFINITY_VENV=str(venv),
        INFINITY_WHEELHOUSE=str(tmp_path / "wheels"),
        EMBEDDING_OPERATOR_CACHE=str(tmp_path),
    )
    assert proc.returncode == 1
    assert "PYTHON=/path/to/python3.11" in proc.stderr


def test_wheelhouse_with_matching_stamp_is_reused(tmp_path: Path) -> None:
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    (wheels / STAMP).write_text(LOCK_HASH + "\n")
    proc = ensure("--wheelhouse", INFINITY_WHEELHOUSE=str(wheels))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == str(wheels)


def test_unknown_argument_is_rejected() -> None:
    proc = ensure("--bogus")
    assert proc.returncode == 1
    assert "unknown argument '--bogus'" in proc.stderr
    build = subprocess.run(
        [str(REPO_ROOT / "scripts" / "build-images.sh"), "--bogus"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert build.returncode == 1
    assert "unknown argument '--bogus'" in build.stderr
