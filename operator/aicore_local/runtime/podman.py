"""Podman runtime: run the rendered container image for real, as AI Core's KServe would.

Same interface as the process runtime. The container runs with host networking on a free port,
as non-root with a read-only root filesystem (AI Core's constraints), the model copy mounted
read-only at /mnt/models, and the flags that work on this kind of machine (containers.md).
"""

from __future__ import annotations

import asyncio
import contextlib
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

PODMAN_RUN_FLAGS = [
    "--runtime",
    "runc",
    "--cgroup-manager=cgroupfs",
    "--ulimit",
    "nofile=1024:1024",
    "--ulimit",
    "nproc=1024:1024",
    "--network=host",
    "--user",
    "65534:65534",
    "--read-only",
    "--tmpfs",
    "/tmp:rw,mode=1777",
]


def podman_available() -> bool:
    return shutil.which("podman") is not None


async def image_exists(image: str) -> bool:
    if not podman_available():
        return False
    proc = await asyncio.create_subprocess_exec(
        "podman",
        "image",
        "exists",
        image,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    return await proc.wait() == 0


@dataclass
class PodmanRuntime:
    state_dir: Path
    name: str = "podman"
    copies_model: bool = True

    async def start(self, spec: PredictorSpec, log: LogSink) -> Predictor:
        if not podman_available():
            raise PredictorFailed("podman is not installed (run `make podman`)")
        if not await image_exists(spec.image):
            raise PredictorFailed(f"image {spec.image} not found in local podman storage")
        port = free_port()
        container = f"aicore-{spec.deployment_id}-{spec.generation}"
        env = dict(spec.env)
        env["MODEL_DIR"] = "/mnt/models"
        env["PORT"] = str(port)
        argv = ["podman", "run", "--rm", "--name", container, *PODMAN_RUN_FLAGS]
        argv += ["-v", f"{spec.model_dir}:/mnt/models:ro"]
        for k, v in env.items():
            argv += ["-e", f"{k}={v}"]
        if spec.command:
            argv += ["--entrypoint", spec.command[0]]
        argv.append(spec.image)
        argv += [*spec.command[1:], *spec.args]
        log(f"starting predictor container {container} from {spec.image}", "stdout")
        proc, pidfile = await spawn(
            argv,
            env={"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(spec.work_dir)},
            cwd=spec.work_dir,
            pid_dir=self.state_dir / "pids",
            name=f"{spec.deployment_id}-{spec.generation}",
        )

        async def remove_container() -> None:
            # `podman run --rm` normally cleans up; force it when the run process was killed.
            with contextlib.suppress(OSError):
                rm = await asyncio.create_subprocess_exec(
                    *["podman", "rm", "-f", "-t", "5", container],
                    stdout=asyncio.subprocess.DEVNULL,
                    stderr=asyncio.subprocess.DEVNULL,
                )
                await rm.wait()

        return ProcessPredictor(proc, port, log, pidfile, on_stop=remove_container)
