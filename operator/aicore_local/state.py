"""The emulator's whole state: one object, in memory, owned by one asyncio loop.

Nothing is ever evicted: a deployment disappears only through DELETE (or its TTL). The objects
are also kept in the data dir (persistence.py): a restart loads them and starts the predictors
of running deployments again, as AI Core's own state survives an outage.
Background work (lifecycle steps, template sync, resource-group provisioning) runs as tasks that
this object keeps references to, so none is garbage-collected mid-flight.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import persistence
from .auth import TokenIssuer
from .faults import Faults
from .lifecycle import Lifecycle
from .model import (
    Application,
    Artifact,
    Configuration,
    Deployment,
    ObjectStoreSecret,
    Repository,
    ResourceGroup,
    now,
)
from .settings import Settings
from .templates import ServingTemplate, load_templates

log = logging.getLogger("aicore_local")


@dataclass
class InferenceCall:
    deployment_id: str
    method: str
    path: str
    status: int
    at: float

    def wire(self) -> dict[str, Any]:
        return {
            "deploymentId": self.deployment_id,
            "method": self.method,
            "path": self.path,
            "status": self.status,
            "at": self.at,
        }


class Emulator:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.tokens = TokenIssuer(
            settings.client_id, settings.client_secret, lifetime_s=settings.token_lifetime_s
        )
        self.faults = Faults(default_runtime=settings.runtime, runtime=settings.runtime)
        # NB: every tenant has a `default` resource group from onboarding.
        self.resource_groups: dict[str, ResourceGroup] = {
            "default": ResourceGroup("default", [], now())
        }
        self.object_store_secrets: dict[tuple[str, str], ObjectStoreSecret] = {}
        self.docker_registry_secrets: dict[str, float] = {}
        self.repositories: dict[str, Repository] = {}
        self.applications: dict[str, Application] = {}
        self.templates: dict[str, ServingTemplate] = {}
        self.template_errors: list[str] = []
        self.synced_at: float = 0.0
        self.artifacts: dict[str, Artifact] = {}
        self.configurations: dict[str, Configuration] = {}
        self.deployments: dict[str, Deployment] = {}
        self.inference_calls: deque[InferenceCall] = deque(maxlen=10000)
        self._tasks: set[asyncio.Task[Any]] = set()
        self.lifecycle = Lifecycle(self)
        self._saved: str | None = None
        self.save_seconds = 0.0  # how long the last save took
        # NB: writers gather for twice a save's time: saves take at most a third of the loop.
        self.commits = persistence.GroupCommit(self.save, gather=lambda: 2 * self.save_seconds)
        if settings.persist:
            text = persistence.read(self.state_path)
            if text is not None:
                persistence.load(self, text)
                self._saved = text
                log.info(
                    "loaded %d artifacts, %d configurations, %d deployments from %s",
                    len(self.artifacts),
                    len(self.configurations),
                    len(self.deployments),
                    self.state_path,
                )
        self.sync_templates()

    # -- background tasks ---------------------------------------------------------------------
    def background(self, coro: Coroutine[Any, Any, Any], name: str) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("background task %s failed", task.get_name(), exc_info=task.exception())

    async def start(self) -> None:
        if self.settings.sync_interval_s > 0:
            self.background(self._sync_loop(), "template-sync")
        if self.settings.persist:
            for dep in list(self.deployments.values()):
                self.lifecycle.resume(dep)
            self._saver = self.background(self._save_loop(), "state-save")

    async def shutdown(self) -> None:
        """Stop every predictor; called on server shutdown so no process outlives the emulator."""
        if self.settings.persist:
            # NB: saved before the predictors stop, so a restart resumes what was running.
            self._saver.cancel()
            self.save()
        await self.lifecycle.stop_all()
        for task in list(self._tasks):
            task.cancel()
        with contextlib.suppress(Exception):
            await asyncio.gather(*self._tasks, return_exceptions=True)

    # -- persistence ----------------------------------------------------------------------------
    @property
    def state_path(self) -> Path:
        return persistence.state_path(self.settings.data_dir)

    def save(self) -> None:
        """Write the state file if anything changed (cheap when nothing did)."""
        if not self.settings.persist:
            return
        started = time.monotonic()
        text = persistence.dump(self)
        if text != self._saved:
            persistence.write(self.state_path, text)
            self._saved = text
        self.save_seconds = time.monotonic() - started

    async def _save_loop(self) -> None:
        while True:
            # NB: a save costs O(objects): with thousands, one every 0.2 s would be most of the
            # CPU; at most a fifth of it goes to this loop.
            await asyncio.sleep(max(self.settings.save_interval_s, 4 * self.save_seconds))
            try:
                self.save()
            except OSError as error:  # e.g. a full disk: keep serving, say so
                log.error("cannot save state to %s: %s", self.state_path, error)

    async def _sync_loop(self) -> None:
        while True:
            await asyncio.sleep(self.settings.sync_interval_s)
            self.sync_templates()

    # -- templates ----------------------------------------------------------------------------
    def template_dirs(self) -> list[Path]:
        dirs = list(self.settings.template_dirs)
        for app in self.applications.values():
            d = app.template_dir()
            if d is not None and d not in dirs:
                dirs.append(d)
        return dirs

    def sync_templates(self) -> None:
        templates, errors = load_templates(self.template_dirs())
        if errors:
            for e in errors:
                log.warning("template sync: %s", e)
        self.templates, self.template_errors = templates, errors
        self.synced_at = now()

    def scenarios(self) -> dict[str, list[ServingTemplate]]:
        out: dict[str, list[ServingTemplate]] = {}
        for t in self.templates.values():
            out.setdefault(t.scenario_id, []).append(t)
        return out

    # -- lookups ------------------------------------------------------------------------------
    def object_store_secret(self, rg: str, name: str) -> ObjectStoreSecret | None:
        return self.object_store_secrets.get((rg, name))

    def data_dir(self) -> Path:
        return self.settings.data_dir
