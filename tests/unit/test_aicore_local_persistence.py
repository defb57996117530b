"""The local AI Core's state file: what is saved comes back identical; reset and persist=False
start empty (the restart itself is tested in tests/integration/test_aicore_local_cli.py)."""

from __future__ import annotations

import json
from pathlib import Path

from aicore_local import persistence
from aicore_local.model import Artifact, Configuration, Deployment, ObjectStoreSecret
from aicore_local.settings import Settings
from aicore_local.state import Emulator


def settings(data: Path, **kw: object) -> Settings:
    return Settings(
        data_dir=data, public_url="http://127.0.0.1:1", client_id="c", client_secret="s", **kw
    )  # type: ignore[arg-type]


def populated(data: Path) -> Emulator:
    emu = Emulator(settings(data))
    emu.object_store_secrets[("default", "default")] = ObjectStoreSecret(
        "default", "S3", "b", None, "r", None, None, None, 1.0
    )
    emu.artifacts["a1"] = Artifact(
        "a1",
        "default",
        "n",
        "model",
        "ai://default/m",
        "sc",
        None,
        [("ext.ai.sap.com/k", "v")],
        2.0,
    )
    emu.configurations["c1"] = Configuration(
        "c1", "default", "cfg", "sc", "ex", [("modelName", "m")], [("embeddingModel", "a1")], 3.0
    )
    dep = Deployment("d1", "default", "c1", "cfg", "sc", "ex", 4.0, "1h", status="RUNNING")
    dep.logs.add("hello", container="c", stream="stdout", pod="p")
    emu.deployments["d1"] = dep
    return emu


def test_saved_state_loads_back_identical(tmp_path: Path):
    emu = populated(tmp_path)
    emu.save()
    again = Emulator(settings(tmp_path))
    assert persistence.dump(again) == persistence.dump(emu)
    assert again.artifacts["a1"].labels == [("ext.ai.sap.com/k", "v")]
    assert again.configurations["c1"].parameters() == {"modelName": "m"}
    assert not again.deployments["d1"].logs.entries  # logs are not kept


def test_save_writes_only_on_change(tmp_path: Path):
    emu = populated(tmp_path)
    emu.save()
    path = persistence.state_path(tmp_path)
    mtime = path.stat().st_mtime_ns
    emu.save()
    assert path.stat().st_mtime_ns == mtime
    emu.artifacts.pop("a1")
    emu.save()
    assert json.loads(path.read_text())["artifacts"] == []


def test_without_persistence_nothing_is_written_or_read(tmp_path: Path):
    populated(tmp_path).save()
    fresh = Emulator(settings(tmp_path, persist=False))
    assert not fresh.artifacts and not fresh.deployments
