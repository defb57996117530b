"""Process runtime: run the rendered container's entrypoint as a local process.

This stands in for the container image: the image's entrypoint is `image/run.sh` of the repo, run
with the infinity venv on PATH, the rendered env, `MODEL_DIR` = the deployment's model copy and
`PORT` = a free loopback port. If the repo has no run.sh yet, a minimal built-in mapping of the
same env contract to `infinity_emb v2` flags is used instead.
"""

from __future__ import annotations

import os
import shlex
import shutil
from dataclasses import dataclass
from pathlib import Path

from .base import (
    LogSink,
    Predictor,
    PredictorFailed,
    PredictorSpec,
    ProcessPredictor,
    free_port,
    spawn,
)

REPO_ROOT = Path(__file__).resolve().parents[3]


def default_infinity_venv() -> Path:
    if os.environ.get("INFINITY_VENV"):
        return Path(os.environ["INFINITY_VENV"])
    cache = os.environ.get(
        "EMBEDDING_OPERATOR_CACHE", str(Path.home() / ".cache/embedding-operator")
    )
    return Path(cache) / "infinity-venv"


def fallback_infinity_argv(env: dict[str, str]) -> list[str]:
    """The serving env contract as infinity flags (used only while image/run.sh is absent)."""
    argv = [
        "infinity_emb",
        "v2",
        "--model-id",
        env["MODEL_DIR"],
        "--host",
        "127.0.0.1",
        "--port",
        env["PORT"],
        "--url-prefix",
        env.get("URL_PRE_FIX", "/v1"),
    ]
    for var, flag in (
        ("MODEL_SERVE_NAME", "--served-model-name"),
        ("BATCH_SIZE", "--batch-size"),
        ("ENGINE", "--engine"),
        ("DTYPE", "--dtype"),
        ("POOLING", "--pooling-method"),
        ("REVISION", "--revision"),
    ):
        if env.get(var):
            argv += [flag, env[var]]
    trust = env.get("TRUST_REMOTE_CODE", "").lower()
    if trust in ("true", "1", "yes"):
        argv.append("--trust-remote-code")
    elif trust in ("false", "0", "no"):
        argv.append("--no-trust-remote-code")
    return argv + shlex.split(env.get("ARG", ""))


@dataclass
class ProcessRuntime:
    """Runs predictors as local processes (the default runtime)."""

    state_dir: Path
    infinity_venv: Path
    entrypoint: Path | None = None  # the image's entrypoint; default: <repo>/image/run.sh
    name: str = "process"
    copies_model: bool = True

    def _entrypoint(self) -> Path | None:
        candidate = self.entrypoint or REPO_ROOT / "image" / "run.sh"
        return candidate if candidate.is_file() else None

    def _argv(self, spec: PredictorSpec, env: dict[str, str]) -> list[str]:
        path = env["PATH"]
        if spec.command:
            exe = spec.command[0]
            if shutil.which(exe, path=path):
                return [exe, *spec.command[1:], *spec.args]
            # An in-image path such as /app/run.sh: use the repo's copy of that script.
            local = (self.entrypoint.parent if self.entrypoint else REPO_ROOT / "image") / Path(
                exe
            ).name
            if local.is_file():
                return ["bash", str(local), *spec.command[1:], *spec.args]
            raise PredictorFailed(f"container command {exe!r} not found locally")
        entry = self._entrypoint()
        if entry is not None:
            return ["bash", str(entry), *spec.args]
        return fallback_infinity_argv(env) + spec.args

    async def start(self, spec: PredictorSpec, log: LogSink) -> Predictor:
        port = free_port()
        home = spec.work_dir / "home"
        home.mkdir(parents=True, exist_ok=True)
        venv_bin = self.infinity_venv / "bin"
        if not venv_bin.is_dir():
            raise PredictorFailed(
                f"infinity venv not found at {self.infinity_venv}; run `make infinity-venv` "
                "or set INFINITY_VENV"
            )
        # A clean environment, like a container's: the emulator's own env (and secrets) stay out.
        env = {
            "PATH": f"{venv_bin}:/usr/local/bin:/usr/bin:/bin",
            "HOME": str(home),
            "LANG": "C.UTF-8",
            "TMPDIR": str(spec.work_dir),
            "HF_HOME": str(home / "hf"),
            "INFINITY_HOME": str(home),
            "DO_NOT_TRACK": "1",
            "PYTHONUNBUFFERED": "1",
            "VIRTUAL_ENV": str(self.infinity_venv),
        }
        env.update(spec.env)
        env["MODEL_DIR"] = str(spec.model_dir)
        env["PORT"] = str(port)
        env["HOST"] = "127.0.0.1"  # run.sh binds 0.0.0.0 by default; locally stay on loopback
        argv = self._argv(spec, env)
        # NB: only the program, never its arguments: ARG may carry an --api-key.
        log(f"starting predictor: {argv[0] if argv[0] != 'bash' else argv[1]}", "stdout")
        proc, pidfile = await spawn(
            argv,
            env=env,
            cwd=spec.work_dir,
            pid_dir=self.state_dir / "pids",
            name=f"{spec.deployment_id}-{spec.generation}",
        )
        return ProcessPredictor(proc, port, log, pidfile)
