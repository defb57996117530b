"""image/run.sh for real, as a process (the way the local AI Core's process runtime runs it):
the infinity venv on PATH, MODEL_DIR = the exported all-MiniLM-L6-v2, and the server must answer
/v1/models and /v1/embeddings with the served name and sentence-transformers' vectors."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import pytest

from tests.fixtures.images import SERVED_NAME, assert_serves_minilm, free_port, wait_healthy

pytestmark = [pytest.mark.slow, pytest.mark.integration]

RUN_SH = Path(__file__).resolve().parents[2] / "image" / "run.sh"


# ctranslate2 converts the model into HF_HOME at start-up: proves the [ct2] extra is in the lock
# and that run.sh's writable cache directories are used.
@pytest.mark.parametrize("engine", ["torch", "ctranslate2"])
def test_run_sh_serves_minilm_from_model_dir(
    engine: str,
    infinity_venv: Path,
    minilm_dir: Path,
    minilm_reference: list[list[float]],
    tmp_path: Path,
) -> None:
    port = free_port()
    # NB: a read-only working directory, as under readOnlyRootFilesystem: run.sh must send every
    # write to INFINITY_HOME/HF_HOME.
    cwd = tmp_path / "ro"
    cwd.mkdir()
    cwd.chmod(0o555)
    env = {
        "PATH": f"{infinity_venv / 'bin'}:{os.environ['PATH']}",
        "HOME": str(tmp_path),
        "MODEL_SERVE_NAME": SERVED_NAME,
        "MODEL_DIR": str(minilm_dir),
        "STORAGE_URI": "ai://default/models/all-minilm-l6-v2",
        "PORT": str(port),
        "HOST": "127.0.0.1",
        "BATCH_SIZE": "16",
        "ENGINE": engine,
        "INFINITY_HOME": str(tmp_path / "infinity-home"),
    }
    log = tmp_path / "server.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [str(RUN_SH)], env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT
        )
    try:
        took = wait_healthy(f"http://127.0.0.1:{port}", 180, alive=lambda: proc.poll() is None)
        print(f"run.sh ({engine}) healthy {took:.1f} s after start")
        assert_serves_minilm(f"http://127.0.0.1:{port}", SERVED_NAME, minilm_reference)
    except BaseException:
        print(log.read_text()[-6000:])
        raise
    finally:
        # exec'd: SIGTERM goes straight to infinity, which shuts down cleanly.
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    text = log.read_text()
    # NB: uvicorn shuts down gracefully, then re-raises SIGTERM, so the exit status is -15.
    assert proc.returncode in (0, -signal.SIGTERM), text[-4000:]
    assert "Application shutdown complete" in text
    assert "DO_NOT_TRACK=1 registered" in text  # telemetry off: no calls to an unreachable host
    assert "NameResolutionError" not in text
