"""SAP's official JavaScript SDK (@sap-ai-sdk/ai-api) against the local AI Core, next to the
Python SDK (test_aicore_local_sdk.py): a second real client, with its own typed models, must get
through meta, scenarios, configurations, a deployment's whole life and an admin object unchanged.

The SDK is pinned by tests/js/package-lock.json and installed once into the cache
(tests/fixtures/js_sdk.py); tests/js/ai_api_lifecycle.mjs makes the calls and prints what it got.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.aicore import COMMAND_EXECUTABLE, FAKE_PREDICTOR, TEST_SCENARIO, LocalAICore
from tests.fixtures.js_sdk import JS_DIR

pytestmark = pytest.mark.integration

ERROR_KEYS = {"code", "message", "requestId", "target", "details"}


@pytest.fixture(scope="module")
def run(
    aicore: LocalAICore, js_sdk: Path, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Any]:
    env = {
        **os.environ,
        "AICORE_SERVICE_KEY": json.dumps(aicore.service_key),
        "SCENARIO": TEST_SCENARIO,
        "EXECUTABLE": COMMAND_EXECUTABLE,
        "SCRIPT": str(FAKE_PREDICTOR),
    }
    # NB: ES modules resolve packages next to the script (NODE_PATH does not apply to them).
    work = tmp_path_factory.mktemp("js-sdk")
    (work / "node_modules").symlink_to(js_sdk)
    script = work / "ai_api_lifecycle.mjs"
    script.write_text((JS_DIR / "ai_api_lifecycle.mjs").read_text())
    done = subprocess.run(
        ["node", str(script)], env=env, capture_output=True, text=True, timeout=180
    )
    assert done.returncode == 0, done.stderr[-4000:]
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def test_meta_scenarios_and_executables(run):
    assert run["meta"]["runtimeIdentifier"] == "aicore"
    assert TEST_SCENARIO in run["scenarioIds"]
    assert COMMAND_EXECUTABLE in run["executableIds"]


def test_a_deployment_lives_and_dies_through_the_sdk(run):
    assert run["created"]["status"] == "UNKNOWN" and run["created"]["deploymentUrl"] == ""
    assert run["running"]["status"] == "RUNNING"
    assert run["running"]["deploymentUrl"].endswith(
        f"/v2/inference/deployments/{run['created']['id']}"
    )
    assert run["created"]["id"] in run["listedIds"]
    assert run["stopRequest"]["id"] == run["created"]["id"]
    assert run["stopped"]["status"] == "STOPPED"
    assert run["deleted"]["id"] == run["created"]["id"]


def test_deployment_times_appear_only_once_they_have_a_value(run):
    """AI Core leaves the keys out; the SDK's types have no null for them."""
    fresh = run["justCreated"]
    for key in ("startTime", "completionTime", "latestRunningConfigurationId"):
        assert key not in fresh, fresh
    assert "startTime" in run["running"] and "completionTime" not in run["running"]
    assert "completionTime" in run["stopped"]


def test_errors_reach_the_sdk_in_ai_cores_shape(run):
    assert run["notFound"]["status"] == 404
    assert set(run["notFound"]["body"]["error"]) == ERROR_KEYS


def test_resource_groups_and_their_label_limits(run):
    assert run["rgCreated"]["resourceGroupId"] == "rg-js-sdk"
    assert run["rg"]["labels"] == [{"key": "ext.ai.sap.com/team", "value": "search"}]
    assert run["longLabel"]["status"] == 400
    assert "5000" in run["longLabel"]["body"]["error"]["message"]
    assert run["rgDeleted"]["id"] == "rg-js-sdk"
