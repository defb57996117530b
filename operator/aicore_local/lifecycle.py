"""Deployment lifecycle: UNKNOWN → PENDING → RUNNING, STOPPING → STOPPED, DEAD, deletion.

The API handlers call the synchronous entry points (`create`, `stop`, `update`, `delete`), which
validate against the state matrix of aicore-api.md §3.5, change the record and schedule the slow
part as one background task per deployment. A configuration PATCH starts the new predictor, waits
for its health check, switches the proxy to it and only then stops the old one, so requests keep
being served during the update.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import shutil
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any, Protocol

from .errors import STATE_CONFLICT_CODE, ApiError
from .faults import Faults
from .inferenceservice import RenderError
from .model import Artifact, Configuration, Deployment, ObjectStoreSecret, new_deployment_id, now
from .runtime.base import Predictor, PredictorFailed, PredictorSpec, Runtime
from .runtime.kserve import KServeRuntime
from .runtime.noop import NoopRuntime
from .runtime.podman import PodmanRuntime
from .runtime.process import ProcessRuntime, default_infinity_venv
from .runtime.shared import SharedProcessRuntime
from .settings import Settings
from .storage import StorageError, initialize, resolve_artifact_url
from .templates import (
    RenderedServing,
    ServingTemplate,
    TemplateError,
    UnresolvedPlaceholder,
    render,
)

log = logging.getLogger("aicore_local")

TTL_PATTERN = re.compile(r"^([0-9]+)([mMhHdD])$")
MIN_TTL_S = 600
MAX_TTL_DIGITS = 6


def parse_ttl(ttl: str) -> float:
    m = TTL_PATTERN.match(ttl)
    if not m:
        raise ApiError(
            400,
            f"Invalid ttl '{ttl}': use a natural number followed by m, h or d (e.g. 30m, 24h, 7d)",
        )
    if len(m.group(1)) > MAX_TTL_DIGITS:
        # NB: a bounded answer, not int()'s digit limit or a timer overflow (HTTP 500).
        raise ApiError(
            400, f"Invalid ttl '{ttl[:20]}…': the number has over {MAX_TTL_DIGITS} digits"
        )
    seconds = int(m.group(1)) * {"m": 60, "h": 3600, "d": 86400}[m.group(2).lower()]
    if seconds < MIN_TTL_S:
        raise ApiError(400, f"Invalid ttl '{ttl}': the minimum is 10m")
    return float(seconds)


class Emulator(Protocol):
    """What the lifecycle uses of the emulator (state.py), declared here so state.py can import
    this module without this module importing state.py back."""

    settings: Settings
    faults: Faults
    templates: dict[str, ServingTemplate]
    artifacts: dict[str, Artifact]
    configurations: dict[str, Configuration]
    deployments: dict[str, Deployment]
    docker_registry_secrets: dict[str, float]

    def background(self, coro: Coroutine[Any, Any, Any], name: str) -> asyncio.Task[Any]: ...

    def object_store_secret(self, rg: str, name: str) -> ObjectStoreSecret | None: ...


@dataclass
class Prepared:
    """A configuration checked and rendered for one deployment start."""

    configuration: Configuration
    rendered: RenderedServing
    template: ServingTemplate
    artifact_urls: dict[str, str]


class Lifecycle:
    def __init__(self, emu: Emulator) -> None:
        self.emu = emu
        self.tasks: dict[str, asyncio.Task[Any]] = {}  # the current lifecycle step per deployment
        self.serving: dict[str, Predictor] = {}  # the predictor the proxy forwards to
        self.starting: dict[str, Predictor] = {}  # a predictor not yet healthy
        self._runtimes: dict[str, Runtime] = {}
        self.cleanups: dict[str, set[asyncio.Task[Any]]] = {}  # stops of abandoned predictors
        self.inflight: dict[int, int] = {}  # id(predictor) -> requests the proxy is forwarding
        self.drained: dict[int, asyncio.Event] = {}  # set when a draining predictor is idle

    # -- helpers ------------------------------------------------------------------------------
    def runtime(self, name: str) -> Runtime:
        if name not in self._runtimes:
            s = self.emu.settings
            pid_root = s.data_dir
            if name in ("process", "shared"):
                process = ProcessRuntime(
                    pid_root, s.infinity_venv or default_infinity_venv(), s.entrypoint
                )
                self._runtimes[name] = (
                    SharedProcessRuntime(process, s.ready_timeout_s)
                    if name == "shared"
                    else process
                )
            elif name == "podman":
                self._runtimes[name] = PodmanRuntime(pid_root)
            elif name == "kserve":
                self._runtimes[name] = KServeRuntime(
                    s.data_dir / "objectstore", s.kubeconfig, s.kserve_namespace
                )
            else:
                self._runtimes[name] = NoopRuntime()
        return self._runtimes[name]

    def _conflict(self, dep: Deployment, operation: str) -> ApiError:
        return ApiError(
            self.emu.settings.state_conflict_status,
            f"Invalid Request, Current status {dep.status} cannot be changed..",
            code=STATE_CONFLICT_CODE,
            details={
                "operation": operation,
                "status": dep.status,
                "targetStatus": dep.target_status,
            },
        )

    def _schedule(self, dep: Deployment, coro: Coroutine[Any, Any, None], step: str) -> None:
        """Run `coro` as the deployment's lifecycle step, after cancelling the previous step."""
        previous = self.tasks.get(dep.id)

        async def run() -> None:
            if previous is not None and not previous.done():
                previous.cancel()
                await asyncio.gather(previous, return_exceptions=True)
            await coro

        self.tasks[dep.id] = self.emu.background(run(), f"{step}:{dep.id}")

    def _log(self, dep: Deployment, container: str = "kserve-container") -> Any:
        pod = f"{dep.id}-predictor-{dep.generation:05d}-deployment"

        def sink(line: str, stream: str = "stdout") -> None:
            dep.logs.add(line, container=container, stream=stream, pod=pod)

        return sink

    # -- validation and rendering -------------------------------------------------------------
    def prepare(self, rg: str, config: Configuration) -> Prepared:
        template = self.emu.templates.get(config.executable_id)
        if template is None or template.scenario_id != config.scenario_id:
            raise ApiError(
                400,
                f"Could not start deployment, because executable {config.executable_id} for "
                f"scenario {config.scenario_id} is not found",
            )
        urls: dict[str, str] = {}
        for key, artifact_id in config.artifact_bindings:
            artifact = self.emu.artifacts.get(artifact_id)
            if artifact is None or artifact.resource_group != rg:
                raise ApiError(
                    400, f"Input artifact binding '{key}': artifact {artifact_id} not found"
                )
            urls[key] = resolve_artifact_url(
                artifact.url,
                self.emu.settings.data_dir,
                lambda name: self.emu.object_store_secret(rg, name),
            )
        try:
            rendered = render(template, config.parameters(), urls)
        except UnresolvedPlaceholder as exc:
            raise ApiError(400, exc.api_message) from exc
        except TemplateError as exc:
            raise ApiError(400, f"Runtime Adapter Exception; invalid serving spec: {exc}") from exc
        return Prepared(config, rendered, template, urls)

    # -- entry points (synchronous: validate, mutate, schedule) ----------------------------------
    def create(self, rg: str, config: Configuration, ttl: str | None) -> Deployment:
        ttl_s = parse_ttl(ttl) if ttl else None
        prepared = self.prepare(rg, config)
        dep = Deployment(
            id=new_deployment_id(),
            resource_group=rg,
            configuration_id=config.id,
            configuration_name=config.name,
            scenario_id=config.scenario_id,
            executable_id=config.executable_id,
            created_at=now(),
            ttl=ttl,
        )
        dep.submission_time = dep.created_at
        dep.modified_at = dep.created_at
        self._apply_spec(dep, prepared.rendered)
        self.emu.deployments[dep.id] = dep
        self._schedule(dep, self._run_create(dep, prepared), "create")
        if ttl_s is not None:
            self.emu.background(self._expire(dep, ttl_s), f"ttl:{dep.id}")
        return dep

    def resume(self, dep: Deployment) -> None:
        """After an emulator restart (persistence.py): carry on from the recorded state."""
        if dep.target_status == "DELETED":
            self.emu.deployments.pop(dep.id, None)
            return
        if dep.status == "STOPPING":
            dep.running_replicas = 0
            dep.set_status("STOPPED")
        if dep.ttl:
            left = dep.created_at + parse_ttl(dep.ttl) - now()
            self.emu.background(self._expire(dep, max(left, 0.0)), f"ttl:{dep.id}")
        if dep.status not in ("UNKNOWN", "PENDING", "RUNNING"):
            return
        config = self.emu.configurations.get(dep.configuration_id)
        try:
            if config is None:
                raise ApiError(400, f"configuration {dep.configuration_id} no longer exists")
            prepared = self.prepare(dep.resource_group, config)
        except ApiError as exc:
            dep.set_status("DEAD", exc.message)
            return
        dep.running_replicas = 0
        dep.set_status("PENDING", "restarting after an AI Core outage")
        self._schedule(dep, self._run_create(dep, prepared), "create")

    def stop(self, dep: Deployment) -> None:
        if dep.status not in ("PENDING", "RUNNING") or dep.target_status == "DELETED":
            raise self._conflict(dep, "stop")
        dep.target_status = "STOPPED"
        dep.last_operation = "UPDATE"
        dep.set_status("STOPPING")
        self._schedule(dep, self._run_stop(dep), "stop")

    def update(self, rg: str, dep: Deployment, config: Configuration) -> None:
        if dep.status not in ("PENDING", "RUNNING", "DEAD") or dep.target_status != "RUNNING":
            raise self._conflict(dep, "update")
        if (config.scenario_id, config.executable_id) != (dep.scenario_id, dep.executable_id):
            raise ApiError(
                400,
                f"Configuration {config.id} has scenario {config.scenario_id} and executable "
                f"{config.executable_id}; a deployment can only switch to a configuration with "
                f"the same scenario ({dep.scenario_id}) and executable ({dep.executable_id})",
            )
        prepared = self.prepare(rg, config)
        dep.configuration_id = config.id
        dep.configuration_name = config.name
        dep.last_operation = "UPDATE"
        self._apply_spec(dep, prepared.rendered)
        dep.set_status("PENDING", "")
        self._schedule(dep, self._run_update(dep, prepared), "update")

    def delete(self, dep: Deployment) -> None:
        if dep.target_status == "DELETED":
            return
        if dep.status not in ("UNKNOWN", "STOPPED", "DEAD"):
            raise self._conflict(dep, "delete")
        dep.target_status = "DELETED"
        dep.last_operation = "DELETE"
        dep.touch()
        self._schedule(dep, self._run_delete(dep), "delete")

    # -- background steps ---------------------------------------------------------------------
    @staticmethod
    def _apply_spec(dep: Deployment, rendered: RenderedServing) -> None:
        dep.resource_plan = rendered.resource_plan
        predictor = rendered.predictor
        with contextlib.suppress(TypeError, ValueError):
            dep.min_replicas = int(predictor.get("minReplicas", 1))
        with contextlib.suppress(TypeError, ValueError):
            dep.max_replicas = int(predictor.get("maxReplicas", max(dep.min_replicas, 1)))

    async def _hold_pending(self, dep: Deployment) -> None:
        hold = self.emu.faults.pending_hold_s
        if hold > 0:
            self._log(dep, "emulator")(f"fault injection: holding PENDING for {hold:g}s")
            await asyncio.sleep(hold)

    async def _run_create(self, dep: Deployment, prepared: Prepared) -> None:
        await asyncio.sleep(max(self.emu.settings.unknown_s, self.emu.faults.unknown_hold_s))
        dep.set_status("PENDING")
        await self._hold_pending(dep)
        try:
            predictor = await self._start_predictor(dep, prepared)
        except PredictorFailed as exc:
            dep.set_status("DEAD", str(exc))
            return
        await self._serve(dep, predictor, prepared.configuration.id)

    async def _run_update(self, dep: Deployment, prepared: Prepared) -> None:
        await self._hold_pending(dep)
        try:
            predictor = await self._start_predictor(dep, prepared)
        except PredictorFailed as exc:
            old = self.serving.pop(dep.id, None)
            if old is not None:
                await old.stop()
            dep.running_replicas = 0
            dep.set_status("DEAD", str(exc))
            return
        await self._serve(dep, predictor, prepared.configuration.id)

    async def _start_predictor(self, dep: Deployment, prepared: Prepared) -> Predictor:
        dead = self.emu.faults.take_dead()
        if dead is not None:
            self._log(dep, "emulator")(f"fault injection: {dead}", "stderr")
            raise PredictorFailed(dead)
        dep.generation += 1
        work = self.emu.settings.data_dir / "deployments" / dep.id / str(dep.generation)
        if work.exists():
            await asyncio.to_thread(shutil.rmtree, work, True)
        work.mkdir(parents=True)
        model_dir = work / "mnt" / "models"
        rendered = prepared.rendered
        env = rendered.env
        init_log = self._log(dep, "storage-initializer")
        runtime = self.runtime(self.emu.faults.runtime)
        manifest = None
        try:
            if isinstance(runtime, KServeRuntime):
                # NB: KServe's own storage initializer mounts the model; nothing is copied here.
                manifest = runtime.render(
                    prepared.template,
                    prepared.configuration.parameters(),
                    prepared.artifact_urls,
                    deployment_id=dep.id,
                    resource_group=dep.resource_group,
                    generation=dep.generation,
                    docker_registry_secrets=set(self.emu.docker_registry_secrets),
                )
            elif not runtime.copies_model:
                model_dir.mkdir(parents=True)
            else:
                await initialize(env.get("STORAGE_URI"), model_dir, lambda m: init_log(m, "stderr"))
        except (StorageError, RenderError) as exc:
            init_log(str(exc), "stderr")
            raise PredictorFailed(str(exc)) from exc
        container = rendered.container
        spec = PredictorSpec(
            deployment_id=dep.id,
            generation=dep.generation,
            pod_name=f"{dep.id}-predictor-{dep.generation:05d}",
            image=str(container.get("image", "")),
            command=[str(c) for c in container.get("command") or []],
            args=[str(a) for a in container.get("args") or []],
            env=env,
            model_dir=model_dir,
            work_dir=work,
            manifest=manifest,
        )
        sink = self._log(dep)
        predictor = await runtime.start(spec, sink)
        self.starting[dep.id] = predictor
        try:
            await predictor.wait_ready(self.emu.settings.ready_timeout_s)
        except BaseException as exc:
            # Also on cancellation (stop/delete/update during PENDING): never leak a process.
            task = self.emu.background(predictor.stop(), f"cleanup:{dep.id}")
            pending = self.cleanups.setdefault(dep.id, set())
            pending.add(task)
            task.add_done_callback(pending.discard)
            if isinstance(exc, PredictorFailed):
                sink(f"predictor failed: {exc}", "stderr")
            raise
        finally:
            if self.starting.get(dep.id) is predictor:
                del self.starting[dep.id]
        return predictor

    async def _serve(self, dep: Deployment, predictor: Predictor, config_id: str) -> None:
        old = self.serving.get(dep.id)
        self.serving[dep.id] = predictor  # the proxy switches here, before the old one stops
        base = self.emu.settings.public_url.rstrip("/")
        dep.deployment_url = f"{base}/v2/inference/deployments/{dep.id}"
        dep.latest_running_configuration_id = config_id
        dep.running_replicas = 1
        dep.status_message = None
        dep.set_status("RUNNING")
        self.emu.background(self._watch(dep, predictor), f"watch:{dep.id}")
        if old is not None:
            await self._drain(old)
            await old.stop()

    # -- request accounting for the proxy (lets an update drain the old predictor) ------------
    def acquire(self, deployment_id: str) -> Predictor | None:
        predictor = self.serving.get(deployment_id)
        if predictor is not None:
            self.inflight[id(predictor)] = self.inflight.get(id(predictor), 0) + 1
        return predictor

    def release(self, predictor: Predictor) -> None:
        left = self.inflight.get(id(predictor), 1) - 1
        if left > 0:
            self.inflight[id(predictor)] = left
        else:
            self.inflight.pop(id(predictor), None)
            idle = self.drained.get(id(predictor))
            if idle is not None:
                idle.set()

    async def _drain(self, predictor: Predictor, within_s: float = 30.0) -> None:
        """Let requests already forwarded to `predictor` finish before it is stopped."""
        # NB: the proxy no longer hands out `predictor`, so its count only goes down.
        if not self.inflight.get(id(predictor)):
            return
        idle = self.drained.setdefault(id(predictor), asyncio.Event())
        try:
            await asyncio.wait_for(idle.wait(), within_s)
        except TimeoutError:
            log.warning("predictor still busy after %ss; stopping it anyway", within_s)
        finally:
            self.drained.pop(id(predictor), None)

    async def _watch(self, dep: Deployment, predictor: Predictor) -> None:
        rc = await predictor.wait_exit()
        if self.serving.get(dep.id) is predictor:
            # Not a stop we asked for: the predictor died under a RUNNING deployment.
            del self.serving[dep.id]
            dep.running_replicas = 0
            tail = getattr(predictor, "last_lines", [])
            reason = getattr(predictor, "failure", None) or f"predictor exited with code {rc}"
            if tail and not getattr(predictor, "failure", None):
                reason += f": {tail[-1].strip()}"
            dep.set_status("DEAD", reason)

    async def stop_predictors(self, dep: Deployment) -> None:
        predictors = [
            p for p in (self.serving.pop(dep.id, None), self.starting.pop(dep.id, None)) if p
        ]
        for p in predictors:
            await p.stop()
        await asyncio.gather(*self.cleanups.pop(dep.id, set()), return_exceptions=True)
        dep.running_replicas = 0

    async def _run_stop(self, dep: Deployment) -> None:
        await self.stop_predictors(dep)
        await asyncio.sleep(self.emu.settings.stopping_s)
        dep.set_status("STOPPED")

    async def _run_delete(self, dep: Deployment) -> None:
        await self.stop_predictors(dep)
        await asyncio.sleep(self.emu.settings.delete_s)
        self.emu.deployments.pop(dep.id, None)
        self.tasks.pop(dep.id, None)
        work = self.emu.settings.data_dir / "deployments" / dep.id
        await asyncio.to_thread(shutil.rmtree, work, True)

    async def _expire(self, dep: Deployment, seconds: float) -> None:
        """TTL: "the deployment is stopped and deleted" when it expires."""
        await asyncio.sleep(seconds)
        if self.emu.deployments.get(dep.id) is not dep or dep.target_status == "DELETED":
            return
        await self.stop_predictors(dep)
        if dep.status not in ("DEAD", "STOPPED"):
            dep.set_status("STOPPED", "TTL expired")
        dep.target_status = "DELETED"
        self._schedule(dep, self._run_delete(dep), "delete")

    async def stop_all(self) -> None:
        for task in list(self.tasks.values()):
            task.cancel()
        await asyncio.gather(*self.tasks.values(), return_exceptions=True)
        predictors = [*self.serving.values(), *self.starting.values()]
        self.serving.clear()
        self.starting.clear()
        await asyncio.gather(*(p.stop() for p in predictors), return_exceptions=True)
        cleanups = [t for tasks in self.cleanups.values() for t in tasks]
        await asyncio.gather(*cleanups, return_exceptions=True)
