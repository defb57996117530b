"""The interface every predictor runtime implements, plus helpers they share."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import signal
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import httpx

LogSink = Callable[[str, str], None]  # (line, stream) -> None


class PredictorFailed(Exception):
    """The predictor could not start or stopped answering; the message becomes statusMessage."""


@dataclass
class PredictorSpec:
    """What a runtime needs to start one predictor generation of a deployment."""

    deployment_id: str
    generation: int
    pod_name: str
    image: str
    command: list[str]
    args: list[str]
    env: dict[str, str]  # the rendered container env (MODEL_DIR/PORT are set by the runtime)
    model_dir: Path  # the deployment's own copy of the model: the /mnt/models stand-in
    work_dir: Path  # writable scratch space for this generation
    extra: dict[str, str] = field(default_factory=dict)
    manifest: dict[str, Any] | None = None  # the rendered InferenceService (kserve runtime)


class Predictor(Protocol):
    @property
    def base_url(self) -> str | None: ...

    async def wait_ready(self, within_s: float) -> None: ...

    async def wait_exit(self) -> int | None: ...

    async def stop(self) -> None: ...


class Runtime(Protocol):
    name: str
    copies_model: bool
    """Whether the lifecycle's storage initializer copies the model into each deployment's
    model_dir first (False: the runtime reads it otherwise, or not at all)."""

    async def start(self, spec: PredictorSpec, log: LogSink) -> Predictor: ...


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def die_with_parent() -> None:
    """preexec_fn: SIGTERM the child when the emulator dies, so no orphan predictors linger."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


class ProcessPredictor:
    """A predictor backed by a local OS process in its own process group."""

    def __init__(
        self,
        proc: asyncio.subprocess.Process,
        port: int,
        log: LogSink,
        pidfile: Path | None,
        on_stop: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self.proc = proc
        self.port = port
        self._log = log
        self._pidfile = pidfile
        self._on_stop = on_stop
        self._pumps = [
            asyncio.create_task(self._pump(proc.stdout, "stdout")),
            asyncio.create_task(self._pump(proc.stderr, "stderr")),
        ]
        self.last_lines: list[str] = []

    @property
    def base_url(self) -> str | None:
        return f"http://127.0.0.1:{self.port}"

    async def _pump(self, stream: asyncio.StreamReader | None, name: str) -> None:
        if stream is None:
            return
        while True:
            try:
                line = await stream.readline()
            except (ValueError, asyncio.LimitOverrunError):
                continue  # an over-long line: drop it rather than stop logging
            if not line:
                return
            text = line.decode(errors="replace").rstrip("\n")
            self.last_lines = [*self.last_lines[-4:], text]
            self._log(text, name)

    def exit_reason(self, rc: int | None) -> str:
        tail = next((t for t in reversed(self.last_lines) if t.strip()), "")
        reason = f"predictor exited with code {rc}"
        return f"{reason}: {tail.strip()}" if tail else reason

    async def wait_ready(self, within_s: float) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within_s
        async with httpx.AsyncClient(timeout=2.0) as client:
            while True:
                if self.proc.returncode is not None:
                    await asyncio.gather(*self._pumps, return_exceptions=True)
                    raise PredictorFailed(self.exit_reason(self.proc.returncode))
                try:
                    r = await client.get(f"{self.base_url}/health")
                    if r.status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
                if loop.time() > deadline:
                    raise PredictorFailed(f"predictor not healthy after {within_s:.0f}s")
                await asyncio.sleep(0.25)

    async def wait_exit(self) -> int | None:
        rc = await self.proc.wait()
        await asyncio.gather(*self._pumps, return_exceptions=True)
        return rc

    async def stop(self, grace: float = 10.0) -> None:
        if self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                await asyncio.wait_for(self.proc.wait(), grace)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                await self.proc.wait()
        # The group may hold children the leader did not take down with it.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        await asyncio.gather(*self._pumps, return_exceptions=True)
        if self._pidfile is not None:
            self._pidfile.unlink(missing_ok=True)
        if self._on_stop is not None:
            await self._on_stop()


async def spawn(
    argv: list[str],
    *,
    env: dict[str, str],
    cwd: Path,
    pid_dir: Path,
    name: str,
) -> tuple[asyncio.subprocess.Process, Path]:
    """Start argv in a new session; record its pid so `down` can reap it after a crash."""
    proc = await asyncio.create_subprocess_exec(
        *argv,
        env=env,
        cwd=str(cwd),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        start_new_session=True,
        preexec_fn=die_with_parent,
        limit=1 << 20,
    )
    pidfile = pid_dir / f"{name}.pid"
    _write_pidfile(pidfile, proc.pid)
    return proc, pidfile


def _write_pidfile(path: Path, pid: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(str(pid))
