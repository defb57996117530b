"""The emulator's state on disk: `<data>/state.json`, so a restart is an outage, not a reset.

AI Core keeps its objects across its own restarts; a client (the operator) that was told an
artifact, configuration or deployment exists must find it again afterwards, or it would create
duplicates or strand objects. What is kept: resource groups, object store and registry secrets,
repositories, applications, artifacts, configurations and deployments (without their logs).
What is not: tokens (clients fetch new ones, as after a token expiry), faults, inference calls,
and running predictors — a deployment that was running starts again (PENDING, then RUNNING on
the same URL), as pods do when a node comes back.

The file is written whole to a temporary name and renamed over the old one, so a crash leaves
either the old or the new state, never a torn file. An explicit reset (`serve --reset`) deletes it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from .model import (
    Application,
    Artifact,
    Configuration,
    Deployment,
    ObjectStoreSecret,
    Repository,
    ResourceGroup,
)


class Emulator(Protocol):
    """What is persisted of the emulator (state.py), declared here so that state.py imports this
    module without this module importing state.py back."""

    resource_groups: dict[str, ResourceGroup]
    object_store_secrets: dict[tuple[str, str], ObjectStoreSecret]
    docker_registry_secrets: dict[str, float]
    repositories: dict[str, Repository]
    applications: dict[str, Application]
    artifacts: dict[str, Artifact]
    configurations: dict[str, Configuration]
    deployments: dict[str, Deployment]


log = logging.getLogger("aicore_local")

STATE_FILE = "state.json"
FORMAT = 1


def state_path(data_dir: Path) -> Path:
    return data_dir / STATE_FILE


def _pairs(raw: list[list[str]]) -> list[tuple[str, str]]:
    return [(k, v) for k, v in raw]


def _plain(obj: Any, *, drop: tuple[str, ...] = ()) -> dict[str, Any]:
    return {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj) if f.name not in drop}


def dump(emu: Emulator) -> str:
    """The persisted part of `emu` as JSON text (sorted, so unchanged state is unchanged text)."""
    state = {
        "format": FORMAT,
        "resourceGroups": [_plain(rg) for rg in emu.resource_groups.values()],
        "objectStoreSecrets": [
            {"resourceGroup": rg, **_plain(s)} for (rg, _), s in emu.object_store_secrets.items()
        ],
        "dockerRegistrySecrets": emu.docker_registry_secrets,
        "repositories": [_plain(r) for r in emu.repositories.values()],
        "applications": [_plain(a) for a in emu.applications.values()],
        "artifacts": [_plain(a) for a in emu.artifacts.values()],
        "configurations": [_plain(c) for c in emu.configurations.values()],
        "deployments": [_plain(d, drop=("logs",)) for d in emu.deployments.values()],
    }
    return json.dumps(state, sort_keys=True)


def write(path: Path, text: str) -> None:
    # NB: no fsync: this guards against a killed process (the case tests and users meet), and
    # an fsync per write would cost more than the whole request under a burst of creates.
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


class GroupCommit:
    """Many writers, one save: `commit()` returns once a save that began after the call ended.

    NB: the whole state is one file, so a save costs O(objects); one save per write made a burst
    of N creates O(N²): with 500 models, 80 % of the local AI Core's time went to saves
    (bench/RESULTS.md). Writers that answer at the same time now share a save, and each still
    hears "created" only after its object is on disk (a SIGKILL loses nothing acknowledged).
    """

    def __init__(self, save: Callable[[], None], gather: Callable[[], float] = lambda: 0.0) -> None:
        self._save = save
        self._gather = gather  # seconds a round waits for more writers before it saves
        self._next: asyncio.Future[None] | None = None  # the round not yet begun
        self._running: asyncio.Task[None] | None = None  # kept: the loop holds tasks weakly
        self.saves = 0  # for tests

    async def commit(self) -> None:
        if self._next is None:
            self._next = asyncio.get_running_loop().create_future()
        round_ = self._next
        if self._running is None:
            self._running = asyncio.get_running_loop().create_task(self._run())
        await asyncio.shield(round_)  # NB: a writer that gives up does not cancel the others

    async def _run(self) -> None:
        try:
            while self._next is not None:
                await asyncio.sleep(self._gather())  # writers arriving meanwhile join it
                round_, self._next = self._next, None
                try:
                    self._save()  # synchronous: nobody joins a round while it saves
                    self.saves += 1
                except Exception as error:  # e.g. a full disk: every writer of the round hears it
                    round_.set_exception(error)
                else:
                    round_.set_result(None)
        finally:
            self._running = None


def load(emu: Emulator, text: str) -> None:
    """Fill `emu` from `dump` output. Predictors are not started here (see Emulator.start)."""

    state = json.loads(text)
    if state.get("format") != FORMAT:
        raise ValueError(f"unknown state format {state.get('format')!r}")
    for raw in state["resourceGroups"]:
        raw["labels"] = _pairs(raw["labels"])
        rg = ResourceGroup(**raw)
        if rg.status == "PROVISIONING":  # the provisioning step was interrupted; it is quick
            rg.status = "PROVISIONED"
        emu.resource_groups[rg.id] = rg
    for raw in state["objectStoreSecrets"]:
        rg_id = raw.pop("resourceGroup")
        secret = ObjectStoreSecret(**raw)
        emu.object_store_secrets[(rg_id, secret.name)] = secret
    emu.docker_registry_secrets.update(state["dockerRegistrySecrets"])
    repositories: dict[str, Repository] = {
        r["name"]: Repository(**r) for r in state["repositories"]
    }
    emu.repositories.update(repositories)
    applications: dict[str, Application] = {
        a["name"]: Application(**a) for a in state["applications"]
    }
    emu.applications.update(applications)
    for raw in state["artifacts"]:
        raw["labels"] = _pairs(raw["labels"])
        artifact = Artifact(**raw)
        emu.artifacts[artifact.id] = artifact
    for raw in state["configurations"]:
        raw["parameter_bindings"] = _pairs(raw["parameter_bindings"])
        raw["artifact_bindings"] = _pairs(raw["artifact_bindings"])
        configuration = Configuration(**raw)
        emu.configurations[configuration.id] = configuration
    for raw in state["deployments"]:
        deployment = Deployment(**raw)
        emu.deployments[deployment.id] = deployment


def read(path: Path) -> str | None:
    try:
        return path.read_text()
    except FileNotFoundError:
        return None


__all__ = ["dump", "load", "read", "state_path", "write"]
