"""Shared runtime: deployments that serve the same thing share one real predictor process.

For scale benches with serving checks that really answer: 500 deployments of all-MiniLM-L6-v2
would be 500 infinity processes of ~600 MB each under the `process` runtime. Here the deployments
are keyed by what they serve (`share_key`: image, command, args and env without the per-process
PORT/MODEL_DIR/HOST, plus the model's location and a fingerprint of its files). The first
deployment of a key copies the model once and starts one process exactly as the `process` runtime
does; later ones attach to it and the gateway forwards their requests to that process. The
process stops when its last deployment stops or is deleted (and at emulator shutdown, which stops
every deployment). A process that fails to start or exits fails every deployment attached to it
with its own message: nothing answers in its place.

Not for isolation tests: a deployment here never has a process of its own (docs/aicore-local.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import shutil
from dataclasses import dataclass, field, replace
from pathlib import Path
from urllib.parse import unquote, urlparse

from ..storage import StorageError, initialize
from .base import LogSink, PredictorFailed, PredictorSpec, ProcessPredictor
from .process import ProcessRuntime

#: Env the runtime sets per process (process.py): never part of what a deployment serves.
PER_PROCESS_ENV = frozenset({"PORT", "MODEL_DIR", "HOST"})


def share_key(spec: PredictorSpec, model_fingerprint: str) -> str:
    """What a predictor serves, as a short hash: equal keys may share one process (pure)."""
    payload = {
        "image": spec.image,
        "command": spec.command,
        "args": spec.args,
        "env": {k: v for k, v in sorted(spec.env.items()) if k not in PER_PROCESS_ENV},
        "model": model_fingerprint,
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


def model_fingerprint(storage_uri: str | None) -> str:
    """Name, size and mtime of every file of a local (file://) model; '' for anything else.

    NB: an unresolvable STORAGE_URI still gets a key (its own URI is in the env): the storage
    initializer of the process that key starts reports the error to its deployments.
    """
    if not storage_uri or urlparse(storage_uri).scheme != "file":
        return ""
    root = Path(unquote(urlparse(storage_uri).path))
    files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
    digest = hashlib.sha256()
    for path in files:
        with contextlib.suppress(OSError):
            stat = path.stat()
            digest.update(
                f"{path.relative_to(root.parent)}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode()
            )
    return digest.hexdigest()


@dataclass(eq=False)
class SharedProcess:
    """One predictor process and the deployments attached to it."""

    key: str
    launch: int  # tells this process from an earlier one of the same key (pidfile, directory)
    root: Path  # model copy and scratch space of this process
    users: list[SharedAttachment] = field(default_factory=list)
    process: ProcessPredictor | None = None
    spawned: asyncio.Task[ProcessPredictor] | None = None  # storage initializer + spawn
    ready: asyncio.Task[None] | None = None  # spawned, then healthy
    exited: asyncio.Event = field(default_factory=asyncio.Event)
    failure: str | None = None  # why the process died under its deployments
    healthy: bool = False
    closing: bool = False
    closed: asyncio.Task[None] | None = None

    def log(self, line: str, stream: str) -> None:
        """Start-up output goes to the logs of every deployment attached, later output (the
        access log) to the longest-attached one only, not N copies of every request's line."""
        for user in list(self.users if not self.healthy else self.users[:1]):
            user.log(line, stream)


class SharedAttachment:
    """A deployment's predictor: its view of the shared process (the `Predictor` protocol)."""

    def __init__(self, runtime: SharedProcessRuntime, shared: SharedProcess, log: LogSink) -> None:
        self.runtime = runtime
        self.shared = shared
        self.log = log
        self.failure: str | None = None
        self._ready = False
        self._stopped = asyncio.Event()

    @property
    def base_url(self) -> str | None:
        process = self.shared.process
        return process.base_url if self._ready and process is not None else None

    @property
    def proc(self) -> asyncio.subprocess.Process | None:
        """The shared OS process (the emulator's `/_emulator/deployments/{id}/predictor`)."""
        return self.shared.process.proc if self.shared.process is not None else None

    @property
    def last_lines(self) -> list[str]:
        return self.shared.process.last_lines if self.shared.process is not None else []

    async def wait_ready(self, within_s: float) -> None:
        assert self.shared.ready is not None
        try:
            await asyncio.wait_for(asyncio.shield(self.shared.ready), within_s)
        except TimeoutError:
            raise PredictorFailed(f"predictor not healthy after {within_s:.0f}s") from None
        self._ready = True

    async def wait_exit(self) -> int | None:
        """Returns when this deployment stops (0) or the shared process exits under it (1)."""
        stopped = asyncio.create_task(self._stopped.wait())
        exited = asyncio.create_task(self.shared.exited.wait())
        try:
            await asyncio.wait({stopped, exited}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopped.cancel()
            exited.cancel()
        if self._stopped.is_set():
            return 0
        self.failure = self.shared.failure
        return 1

    async def stop(self) -> None:
        if self._stopped.is_set():
            return
        self._stopped.set()
        await self.runtime.detach(self)


@dataclass
class SharedProcessRuntime:
    """Predictors keyed by `share_key`; one `ProcessRuntime` process per key."""

    process_runtime: ProcessRuntime
    ready_timeout_s: float = 600.0
    name: str = "shared"
    # NB: the runtime copies the model once per process, not once per deployment.
    copies_model: bool = False
    processes: dict[str, SharedProcess] = field(default_factory=dict)
    _launches: int = 0

    async def start(self, spec: PredictorSpec, log: LogSink) -> SharedAttachment:
        storage_uri = spec.env.get("STORAGE_URI")
        key = share_key(spec, await asyncio.to_thread(model_fingerprint, storage_uri))
        # NB: no await between this look-up and the insert, so concurrent starts of one key
        # attach to one process rather than each starting its own.
        shared = self.processes.get(key)
        if shared is None:
            self._launches += 1
            root = self.process_runtime.state_dir / "shared" / f"{key}-{self._launches}"
            shared = self.processes[key] = SharedProcess(key, self._launches, root)
            shared.spawned = asyncio.create_task(self._spawn(shared, spec))
            shared.ready = asyncio.create_task(self._serve(shared))
            shared.ready.add_done_callback(_retrieved)
            log(f"shared runtime: starting the predictor process of key {key}", "stdout")
        else:
            pid = shared.process.proc.pid if shared.process is not None else "starting"
            log(f"shared runtime: attached to the predictor process of key {key} ({pid})", "stdout")
        attachment = SharedAttachment(self, shared, log)
        shared.users.append(attachment)
        return attachment

    async def _spawn(self, shared: SharedProcess, spec: PredictorSpec) -> ProcessPredictor:
        model_dir = shared.root / "mnt" / "models"
        try:
            await initialize(
                spec.env.get("STORAGE_URI"), model_dir, lambda m: shared.log(m, "stderr")
            )
        except StorageError as exc:
            raise PredictorFailed(str(exc)) from exc
        own = replace(
            spec,
            deployment_id=f"shared-{shared.key}",
            generation=shared.launch,
            pod_name=f"shared-{shared.key}",
            model_dir=model_dir,
            work_dir=shared.root,
        )
        process = await self.process_runtime.start(own, shared.log)
        assert isinstance(process, ProcessPredictor)
        shared.process = process
        return process

    async def _serve(self, shared: SharedProcess) -> None:
        """Healthy, then watched: an exit no deployment asked for fails them all."""
        assert shared.spawned is not None
        try:
            process = await shared.spawned
            if shared.closing:
                raise PredictorFailed("every deployment stopped before the predictor started")
            await process.wait_ready(self.ready_timeout_s)
            shared.healthy = True
        except PredictorFailed:
            # NB: nothing may attach to it any more; the attachments waiting report the error.
            self._forget(shared)
            shared.closing = True
            asyncio.create_task(self._close(shared)).add_done_callback(_retrieved)
            raise
        self._watch(shared)

    def _watch(self, shared: SharedProcess) -> None:
        async def watch() -> None:
            process = shared.process
            assert process is not None
            rc = await process.wait_exit()
            if not shared.closing:
                shared.failure = process.exit_reason(rc)
                self._forget(shared)
            shared.exited.set()
            await self._close(shared)

        asyncio.create_task(watch()).add_done_callback(_retrieved)

    def _forget(self, shared: SharedProcess) -> None:
        if self.processes.get(shared.key) is shared:
            del self.processes[shared.key]

    async def detach(self, attachment: SharedAttachment) -> None:
        """A deployment stops: the last one of a process stops that process."""
        shared = attachment.shared
        if attachment in shared.users:
            shared.users.remove(attachment)
        if shared.users or shared.closing:
            return
        shared.closing = True
        self._forget(shared)
        await self._close(shared)

    async def _close(self, shared: SharedProcess) -> None:
        """Stop the process and remove its files, once, whoever asks first."""
        if shared.closed is None:
            shared.closed = asyncio.create_task(self._stop_process(shared))
        await asyncio.shield(shared.closed)

    @staticmethod
    async def _stop_process(shared: SharedProcess) -> None:
        if shared.spawned is not None:
            with contextlib.suppress(PredictorFailed, asyncio.CancelledError):
                await shared.spawned
        if shared.process is not None:
            await shared.process.stop()
        await asyncio.to_thread(shutil.rmtree, shared.root, True)


def _retrieved(task: asyncio.Task[None]) -> None:
    """Done callback: a failure the attachments already reported is not logged again."""
    if not task.cancelled():
        task.exception()
