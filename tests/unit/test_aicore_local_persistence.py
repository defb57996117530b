"""The local AI Core's state file: what is saved comes back identical; reset and persist=False
start empty (the restart itself is tested in tests/integration/test_aicore_local_cli.py)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

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


# -- group commit: many writers, one save, nobody answered before their write is saved ---------


async def test_concurrent_writers_share_one_save_and_each_waits_for_a_save_after_its_write():
    log: list[str] = []
    commits = persistence.GroupCommit(lambda: log.append("save"))

    async def writer(i: int) -> None:
        log.append(f"write {i}")
        await commits.commit()
        log.append(f"answer {i}")

    await asyncio.gather(*(writer(i) for i in range(50)))
    assert commits.saves == 1
    assert log.index("save") > max(log.index(f"write {i}") for i in range(50))
    assert log.index("save") < min(log.index(f"answer {i}") for i in range(50))


async def test_a_write_after_a_save_waits_for_the_next_save():
    state = {"n": 0}
    saved: list[int] = []
    late: list[asyncio.Task[None]] = []

    async def late_writer() -> None:
        state["n"] = 1
        await commits.commit()

    def save() -> None:
        saved.append(state["n"])
        if len(saved) == 1:  # a write landing right after this save must not ride on it
            late.append(asyncio.get_running_loop().create_task(late_writer()))

    commits = persistence.GroupCommit(save)
    await commits.commit()
    await late[0]
    assert saved == [0, 1]


async def test_a_failed_save_fails_every_writer_of_its_round_and_the_next_round_saves():
    calls = {"n": 0}

    def save() -> None:
        calls["n"] += 1
        if calls["n"] == 1:
            raise OSError("No space left on device")

    commits = persistence.GroupCommit(save)
    results = await asyncio.gather(*(commits.commit() for _ in range(3)), return_exceptions=True)
    assert [type(r) for r in results] == [OSError] * 3
    await commits.commit()
    assert commits.saves == 1


async def test_a_cancelled_writer_does_not_cancel_the_round():
    saves: list[int] = []
    commits = persistence.GroupCommit(lambda: saves.append(1))
    gone = asyncio.ensure_future(commits.commit())
    stays = asyncio.ensure_future(commits.commit())
    await asyncio.sleep(0)
    gone.cancel()
    await stays
    assert saves == [1]
    with pytest.raises(asyncio.CancelledError):
        await gone
