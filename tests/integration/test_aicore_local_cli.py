"""`python -m aicore_local up|down`: background start with pidfile, log, seed and service key, and
a `down` that leaves no predictor process behind (also after the server itself was killed)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from aicore_local import launcher
from tests.fixtures.aicore import (
    COMMAND_EXECUTABLE,
    FAKE_PREDICTOR,
    TEST_SCENARIO,
    TEST_TEMPLATES,
    free_port,
)
from tests.fixtures.cli import run_module
from tests.fixtures.cluster import wait_until

pytestmark = pytest.mark.integration


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return run_module("aicore_local", *args)


def alive(pid: int) -> bool:
    if not Path(f"/proc/{pid}").exists():
        return False
    # A zombie (exited, not yet reaped by its parent) is not a running process.
    return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"


class Instance:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.port = free_port()
        self.data = root / "data"
        self.key = root / "key.json"
        self.pidfile = root / "aicore.pid"

    def up(self) -> subprocess.CompletedProcess[str]:
        return cli(
            "up",
            "--port",
            str(self.port),
            "--data",
            str(self.data),
            "--service-key",
            str(self.key),
            "--pidfile",
            str(self.pidfile),
            "--log",
            str(self.root / "aicore.log"),
            "--templates",
            str(TEST_TEMPLATES),
            "--extra=--unknown-seconds=0.1",
        )

    def down(self) -> subprocess.CompletedProcess[str]:
        return cli("down", "--data", str(self.data), "--pidfile", str(self.pidfile))

    def start_fake_deployment(self) -> int:
        """A RUNNING deployment of the fake predictor; returns the predictor's pid."""
        key = json.loads(self.key.read_text())
        headers = {"Authorization": f"Bearer {launcher.token(key)}", "AI-Resource-Group": "default"}
        api = f"{key['serviceurls']['AI_API_URL']}/v2/lm"
        config = httpx.post(
            f"{api}/configurations",
            headers=headers,
            json={
                "name": "cli",
                "scenarioId": TEST_SCENARIO,
                "executableId": COMMAND_EXECUTABLE,
                "parameterBindings": [{"key": "script", "value": str(FAKE_PREDICTOR)}],
            },
        ).json()
        dep = httpx.post(
            f"{api}/deployments", headers=headers, json={"configurationId": config["id"]}
        ).json()
        wait_until(
            lambda: (
                httpx.get(f"{api}/deployments/{dep['id']}", headers=headers).json()["status"]
                == "RUNNING"
            ),
            what="fake deployment RUNNING",
        )
        info = httpx.get(f"{key['url']}/_emulator/deployments/{dep['id']}/predictor").json()
        return int(info["pid"])


@pytest.fixture
def instance(tmp_path: Path) -> Iterator[Instance]:
    inst = Instance(tmp_path)
    yield inst
    inst.down()


def test_up_seeds_writes_the_key_and_down_stops_everything(instance: Instance) -> None:
    result = instance.up()
    assert result.returncode == 0, result.stderr
    key = json.loads(instance.key.read_text())
    assert oct(instance.key.stat().st_mode & 0o777) == "0o600"
    assert key["clientsecret"] not in result.stdout + result.stderr
    assert key["url"] == key["serviceurls"]["AI_API_URL"] == f"http://127.0.0.1:{instance.port}"
    seeded = instance.data / "objectstore" / "default" / "models" / "all-minilm-l6-v2"
    assert (seeded / "model.safetensors").is_file()
    headers = {"Authorization": f"Bearer {launcher.token(key)}", "AI-Resource-Group": "default"}
    secrets = httpx.get(f"{key['url']}/v2/admin/objectStoreSecrets", headers=headers).json()
    assert [s["name"] for s in secrets["resources"]] == ["default"]

    again = instance.up()  # idempotent: a second `up` finds the running one
    assert again.returncode == 0 and "already running" in again.stdout

    server_pid = int(instance.pidfile.read_text())
    predictor_pid = instance.start_fake_deployment()
    assert alive(predictor_pid)
    assert instance.down().returncode == 0
    assert not alive(server_pid) and not alive(predictor_pid)
    assert not instance.pidfile.exists()
    assert not list((instance.data / "pids").glob("*.pid"))


def test_predictors_do_not_outlive_a_killed_server(instance: Instance) -> None:
    assert instance.up().returncode == 0
    server_pid = int(instance.pidfile.read_text())
    predictor_pid = instance.start_fake_deployment()
    os.kill(server_pid, signal.SIGKILL)
    wait_until(
        lambda: not alive(predictor_pid), timeout=15, what="predictor to die with the server"
    )
    assert instance.down().returncode == 0
    assert not list((instance.data / "pids").glob("*.pid"))


def test_a_restart_keeps_the_state_and_reset_forgets_it(instance: Instance) -> None:
    """Issue 15: a restart of AI Core is an outage, not a reset (persistence.py)."""
    assert instance.up().returncode == 0
    first_pid = instance.start_fake_deployment()
    key = json.loads(instance.key.read_text())
    headers = {"Authorization": f"Bearer {launcher.token(key)}", "AI-Resource-Group": "default"}
    api = f"{key['serviceurls']['AI_API_URL']}/v2/lm"
    artifact = httpx.post(
        f"{api}/artifacts",
        headers=headers,
        json={
            "name": "kept",
            "kind": "model",
            "url": "ai://default/models/all-minilm-l6-v2",
            "scenarioId": TEST_SCENARIO,
            "labels": [{"key": "ext.ai.sap.com/test", "value": "persisted"}],
        },
    ).json()

    def listing(kind: str) -> list[dict]:
        return httpx.get(f"{api}/{kind}", headers=headers).json()["resources"]

    before = {kind: listing(kind) for kind in ("artifacts", "configurations", "deployments")}
    assert instance.down().returncode == 0
    assert not alive(first_pid)

    assert instance.up().returncode == 0  # NB: same data dir, a new process
    headers["Authorization"] = f"Bearer {launcher.token(key)}"
    after = {kind: listing(kind) for kind in ("artifacts", "configurations", "deployments")}
    for kind in ("artifacts", "configurations"):
        assert after[kind] == before[kind], kind
    assert [d["id"] for d in after["deployments"]] == [d["id"] for d in before["deployments"]]
    assert [a["labels"] for a in after["artifacts"] if a["id"] == artifact["id"]] == [
        [{"key": "ext.ai.sap.com/test", "value": "persisted"}]
    ]
    dep = before["deployments"][0]
    # The running deployment starts again on the same URL, with a new predictor process.
    wait_until(
        lambda: (
            httpx.get(f"{api}/deployments/{dep['id']}", headers=headers).json()["status"]
            == "RUNNING"
        ),
        what="the deployment RUNNING again after the restart",
    )
    again = httpx.get(f"{api}/deployments/{dep['id']}", headers=headers).json()
    assert again["deploymentUrl"] == dep["deploymentUrl"]
    info = httpx.get(f"{key['url']}/_emulator/deployments/{dep['id']}/predictor").json()
    assert int(info["pid"]) != first_pid and alive(int(info["pid"]))

    assert instance.down().returncode == 0
    proc = cli(
        "up", "--port", str(instance.port), "--data", str(instance.data),
        "--service-key", str(instance.key), "--pidfile", str(instance.pidfile),
        "--log", str(instance.root / "aicore.log"), "--templates", str(TEST_TEMPLATES),
        "--extra=--reset",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    headers["Authorization"] = f"Bearer {launcher.token(key)}"
    assert [listing(kind) for kind in ("artifacts", "configurations", "deployments")] == [
        [],
        [],
        [],
    ]
