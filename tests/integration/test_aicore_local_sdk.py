"""SAP's official `sap-ai-sdk-core` client against the local AI Core: every call an AI Core user
makes for serving (meta, admin objects, scenarios, artifacts, configurations, deployments, logs)
must parse without errors, and state conflicts must raise the SDK's documented exceptions.

Deployments here use the fake predictor process (tests/data/aicore-fake/predictor.py) or the noop
runtime, so the lifecycle is exercised with real processes in seconds; the infinity-backed
checks live in test_aicore_local_inference.py.
"""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest
from ai_api_client_sdk.exception import (
    AIAPIInvalidRequestException,
    AIAPINotFoundException,
    AIAPIPreconditionFailedException,
)
from ai_api_client_sdk.models.artifact import Artifact
from ai_api_client_sdk.models.input_artifact_binding import InputArtifactBinding
from ai_api_client_sdk.models.label import Label
from ai_api_client_sdk.models.parameter_binding import ParameterBinding
from ai_api_client_sdk.models.status import Status
from ai_api_client_sdk.models.target_status import TargetStatus
from ai_core_sdk.ai_core_v2_client import AICoreV2Client

from tests.fixtures.aicore import (
    COMMAND_EXECUTABLE,
    INFINITY_EXECUTABLE,
    SEED_ARTIFACT_URL,
    TEST_SCENARIO,
    AICoreAdmin,
    LocalAICore,
)
from tests.fixtures.aicore_sdk import command_config, sdk_client, wait_status
from tests.fixtures.cluster import wait_until

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def client(aicore: LocalAICore) -> AICoreV2Client:
    return sdk_client(aicore)


# -- meta, admin objects ----------------------------------------------------------------------
def test_meta(client: AICoreV2Client) -> None:
    meta = client.meta.get()
    assert meta.runtime_identifier == "aicore"
    assert meta.ai_api.version
    assert meta.ai_api.capabilities.logs.deployments is True


def test_resource_groups(client: AICoreV2Client) -> None:
    assert "default" in [rg.resource_group_id for rg in client.resource_groups.query().resources]
    created = client.resource_groups.create(
        "rg-sdk-test", labels=[Label("ext.ai.sap.com/team", "search")]
    )
    assert created.resource_group_id == "rg-sdk-test"
    rg = wait_until(
        lambda: (g := client.resource_groups.get("rg-sdk-test")).status == "PROVISIONED" and g,
        what="resource group PROVISIONED",
    )
    assert [(label.key, label.value) for label in rg.labels] == [("ext.ai.sap.com/team", "search")]
    client.resource_groups.modify("rg-sdk-test", labels=[Label("ext.ai.sap.com/team", "ml")])
    assert client.resource_groups.get("rg-sdk-test").labels[0].value == "ml"
    assert client.resource_groups.delete("rg-sdk-test").id == "rg-sdk-test"
    wait_until(
        lambda: (
            "rg-sdk-test"
            not in [g.resource_group_id for g in client.resource_groups.query().resources]
        ),
        what="resource group deletion",
    )
    with pytest.raises(AIAPINotFoundException):
        client.resource_groups.get("rg-sdk-test")


def test_object_store_and_docker_secrets(client: AICoreV2Client) -> None:
    client.object_store_secrets.create(
        name="sdk-store",
        type="S3",
        data={"AWS_ACCESS_KEY_ID": "a", "AWS_SECRET_ACCESS_KEY": "b"},
        bucket="bkt",
        path_prefix="team/models",
    )
    secret = client.object_store_secrets.get("sdk-store")
    assert secret.metadata["storage.ai.sap.com/pathPrefix"] == "team/models"
    assert "data" not in vars(secret) and "AWS_SECRET_ACCESS_KEY" not in str(secret.metadata)
    names = [s.name for s in client.object_store_secrets.query().resources]
    assert {"default", "sdk-store"} <= set(names)
    client.object_store_secrets.delete("sdk-store")
    with pytest.raises(AIAPINotFoundException):
        client.object_store_secrets.get("sdk-store")

    client.docker_registry_secrets.create("sdk-registry", {".dockerconfigjson": '{"auths": {}}'})
    assert client.docker_registry_secrets.get("sdk-registry").name == "sdk-registry"
    client.docker_registry_secrets.modify("sdk-registry", {".dockerconfigjson": "{}"})
    assert "sdk-registry" in [s.name for s in client.docker_registry_secrets.query().resources]
    client.docker_registry_secrets.delete("sdk-registry")
    with pytest.raises(AIAPIInvalidRequestException, match="dockerconfigjson"):
        client.docker_registry_secrets.create("bad", {"password": "x"})


def test_repository_application_refresh_syncs_new_templates(
    client: AICoreV2Client, tmp_path: Path
) -> None:
    """A file:// repository stands in for git: refresh makes its templates executables."""
    src = (Path(__file__).parents[1] / "data/aicore-templates/command-test.yaml").read_text()
    client.repositories.create(name="sdk-repo", url=tmp_path.as_uri(), username="u", password="p")
    assert client.repositories.get("sdk-repo").url == tmp_path.as_uri()
    client.applications.create(
        revision="HEAD", path="templates", repository_name="sdk-repo", application_name="sdk-app"
    )
    assert client.applications.get("sdk-app").path == "templates"
    (tmp_path / "templates").mkdir()
    (tmp_path / "templates" / "t.yaml").write_text(
        src.replace("aicore-local-command", "sdk-synced-exe").replace(
            "aicore-local-test", "sdk-synced-scenario"
        )
    )
    with pytest.raises(AIAPINotFoundException):
        client.executable.get("sdk-synced-scenario", "sdk-synced-exe")
    assert client.applications.refresh("sdk-app").id == "sdk-app"
    status = client.applications.get_status("sdk-app")
    assert (status.health_status, status.sync_status) == ("Healthy", "Synced")
    assert client.executable.get("sdk-synced-scenario", "sdk-synced-exe").deployable is True
    client.applications.delete("sdk-app")
    client.repositories.delete("sdk-repo")
    with pytest.raises(AIAPINotFoundException):
        client.scenario.get("sdk-synced-scenario")


# -- scenarios and executables ----------------------------------------------------------------
def test_scenarios_and_executables(client: AICoreV2Client) -> None:
    scenarios = {s.id: s for s in client.scenario.query().resources}
    assert scenarios[TEST_SCENARIO].name == "aicore-local test scenario"
    executables = {e.id: e for e in client.executable.query(TEST_SCENARIO).resources}
    assert set(executables) == {INFINITY_EXECUTABLE, COMMAND_EXECUTABLE}
    exe = client.executable.get(TEST_SCENARIO, INFINITY_EXECUTABLE)
    assert exe.version_id == "0.1.0" and exe.deployable
    params = {p.name: p.default for p in exe.parameters}
    assert params["resourcePlan"] == "starter" and params["modelName"] is None
    assert [(a.name, a.kind) for a in exe.input_artifacts] == [("modelArtifact", "model")]
    assert [v.id for v in client.scenario.query_versions(TEST_SCENARIO).resources] == ["0.1.0"]
    with pytest.raises(AIAPINotFoundException):
        client.executable.get(TEST_SCENARIO, "no-such-executable")


# -- artifacts and configurations -------------------------------------------------------------
def test_artifacts_create_get_query(client: AICoreV2Client) -> None:
    label = Label("ext.ai.sap.com/suite", "sdk-artifacts")
    ids = [
        client.artifact.create(
            name=f"art-{i}",
            kind=Artifact.Kind.MODEL,
            url=f"ai://default/models/m{i}",
            scenario_id=TEST_SCENARIO,
            description="test artifact",
            labels=[label],
        ).id
        for i in range(3)
    ]
    art = client.artifact.get(ids[0])
    assert (art.name, art.url, art.kind, art.scenario_id) == (
        "art-0",
        "ai://default/models/m0",
        Artifact.Kind.MODEL,
        TEST_SCENARIO,
    )
    selector = ["ext.ai.sap.com/suite=sdk-artifacts"]
    found = client.artifact.query(artifact_label_selector=selector)
    assert [a.id for a in found.resources] == ids and found.count == 3
    page = client.artifact.query(artifact_label_selector=selector, top=1, skip=1)
    assert [a.id for a in page.resources] == [ids[1]]
    assert client.artifact.count(artifact_label_selector=selector) == 3
    assert [a.id for a in client.artifact.query(name="art-2").resources] == [ids[2]]
    assert client.artifact.query(search="ART-1", search_case_insensitive=True).count >= 1
    expanded = client.artifact.get(ids[0], expand="scenario")
    assert expanded.scenario.id == TEST_SCENARIO
    with pytest.raises(AIAPINotFoundException):
        client.artifact.get("00000000-0000-4000-8000-000000000000")


def test_artifact_validation_names_the_field(aicore: LocalAICore) -> None:
    r = httpx.post(
        f"{aicore.url}/v2/lm/artifacts",
        headers=aicore.headers(),
        json={
            "name": "x",
            "kind": "model",
            "url": "ai://default/x",
            "scenarioId": TEST_SCENARIO,
            "labels": [{"key": "team", "value": "a"}],
        },
    )
    assert r.status_code == 400
    assert "label key 'team'" in r.json()["error"]["message"]


def test_configurations_create_get_query(client: AICoreV2Client) -> None:
    art = client.artifact.create(
        name="cfg-art", kind=Artifact.Kind.MODEL, url=SEED_ARTIFACT_URL, scenario_id=TEST_SCENARIO
    )
    created = client.configuration.create(
        name="cfg-query",
        scenario_id=TEST_SCENARIO,
        executable_id=INFINITY_EXECUTABLE,
        parameter_bindings=[ParameterBinding("modelName", "all-minilm-l6-v2")],
        input_artifact_bindings=[InputArtifactBinding("modelArtifact", art.id)],
    )
    config = client.configuration.get(created.id)
    assert config.executable_id == INFINITY_EXECUTABLE
    assert [(b.key, b.value) for b in config.parameter_bindings] == [
        ("modelName", "all-minilm-l6-v2")
    ]
    assert [(b.key, b.artifact_id) for b in config.input_artifact_bindings] == [
        ("modelArtifact", art.id)
    ]
    found = client.configuration.query(
        scenario_id=TEST_SCENARIO, executable_ids=[INFINITY_EXECUTABLE]
    )
    assert created.id in [c.id for c in found.resources]
    assert client.configuration.count(executable_ids=[INFINITY_EXECUTABLE]) == found.count
    assert client.configuration.query(executable_ids=["nope"]).count == 0


def test_configuration_needs_an_existing_executable(client: AICoreV2Client) -> None:
    with pytest.raises(AIAPIInvalidRequestException) as err:
        client.configuration.create(name="c", scenario_id=TEST_SCENARIO, executable_id="missing")
    assert "executable missing for scenario aicore-local-test is not found" in str(err.value)


def test_configurations_are_immutable(aicore: LocalAICore, client: AICoreV2Client) -> None:
    cid = command_config(client, "immutable")
    for method in ("PATCH", "DELETE"):
        r = httpx.request(
            method, f"{aicore.url}/v2/lm/configurations/{cid}", headers=aicore.headers()
        )
        assert r.status_code == 405, method
        assert "error" in r.json()


# -- deployments --------------------------------------------------------------------------------
def test_deployment_lifecycle_with_a_real_process(
    aicore: LocalAICore, client: AICoreV2Client
) -> None:
    cid = command_config(client, "lifecycle")
    created = client.deployment.create(cid)
    assert created.status == Status.UNKNOWN and created.deployment_url == ""
    assert len(created.id) == 16 and created.id.startswith("d")
    with pytest.raises(AIAPIPreconditionFailedException, match="Current status UNKNOWN"):
        client.deployment.modify(created.id, target_status=TargetStatus.STOPPED)

    dep = wait_status(client, created.id, Status.RUNNING, Status.DEAD)
    assert dep.status == Status.RUNNING, dep.status_message
    assert dep.deployment_url == f"{aicore.url}/v2/inference/deployments/{created.id}"
    assert (dep.target_status, dep.configuration_id, dep.configuration_name) == (
        TargetStatus.RUNNING,
        cid,
        "cfg-lifecycle",
    )
    assert dep.latest_running_configuration_id == cid and dep.start_time is not None
    status_only = client.deployment.get(created.id, select="status")
    assert (status_only.id, status_only.status) == (created.id, Status.RUNNING)

    served = httpx.post(f"{dep.deployment_url}/v1/embeddings", headers=aicore.headers(), json={})
    assert served.json() == {"served_by": "lifecycle", "path": "/v1/embeddings"}

    by = {
        "scenario": client.deployment.query(scenario_id=TEST_SCENARIO),
        "executable": client.deployment.query(executable_ids=[COMMAND_EXECUTABLE, "x"]),
        "configuration": client.deployment.query(configuration_id=cid),
        "status": client.deployment.query(status=Status.RUNNING),
    }
    for what, result in by.items():
        assert created.id in [d.id for d in result.resources], what
    assert client.deployment.query(configuration_id=cid).count == 1
    assert client.deployment.count(configuration_id=cid) == 1
    other_exe = client.deployment.query(executable_ids=[INFINITY_EXECUTABLE]).resources
    assert created.id not in [d.id for d in other_exe]

    with pytest.raises(AIAPIPreconditionFailedException, match="Current status RUNNING"):
        client.deployment.delete(created.id)
    logs = client.deployment.query_logs(created.id)
    messages = [entry.msg for entry in logs.data.result]
    assert any("fake-predictor: serving lifecycle" in m for m in messages), messages
    desc = client.deployment.query_logs(created.id, top=1, order=None)
    assert len(desc.data.result) == 1

    pid = aicore.admin.predictor(created.id)["pid"]
    assert client.deployment.modify(created.id, target_status=TargetStatus.STOPPED).id == created.id
    stopped = wait_status(client, created.id, Status.STOPPED)
    assert stopped.target_status == TargetStatus.STOPPED
    assert stopped.deployment_url == dep.deployment_url  # kept after STOPPED
    assert stopped.completion_time is not None
    assert not Path(f"/proc/{pid}").exists(), "the predictor process must be gone"
    gone = httpx.post(f"{dep.deployment_url}/v1/embeddings", headers=aicore.headers(), json={})
    assert gone.status_code == 503

    with pytest.raises(AIAPIPreconditionFailedException, match="Current status STOPPED"):
        client.deployment.modify(created.id, target_status=TargetStatus.STOPPED)
    with pytest.raises(AIAPIPreconditionFailedException):
        client.deployment.modify(created.id, configuration_id=cid)
    assert client.deployment.delete(created.id).id == created.id
    wait_until(
        lambda: created.id not in [d.id for d in client.deployment.query().resources],
        what="deletion",
    )
    with pytest.raises(AIAPINotFoundException):
        client.deployment.get(created.id)


def test_update_switches_without_failed_requests(
    aicore: LocalAICore, aicore_faults: AICoreAdmin, client: AICoreV2Client
) -> None:
    """PATCH configurationId: new process healthy first, proxy switched, old one stopped."""
    dep_id = client.deployment.create(command_config(client, "blue")).id
    dep = wait_status(client, dep_id, Status.RUNNING)
    old_pid = aicore.admin.predictor(dep_id)["pid"]
    green = command_config(client, "green")
    headers = aicore.headers()
    served: list[str] = []
    aicore_faults.set_faults(pending_seconds=1)  # a visible PENDING phase while blue serves
    with httpx.Client(headers=headers, timeout=10) as http:
        client.deployment.modify(dep_id, configuration_id=green)
        after = client.deployment.get(dep_id)
        assert after.status == Status.PENDING and after.configuration_id == green
        assert after.latest_running_configuration_id != green  # set only once RUNNING again
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            r = http.post(f"{dep.deployment_url}/v1/embeddings", json={})
            assert r.status_code == 200, r.text  # no failed request during the switch
            served.append(r.json()["served_by"])
            if served[-1] == "green" and client.deployment.get(dep_id).status == Status.RUNNING:
                break
    assert served[0] == "blue" and served[-1] == "green"
    final = client.deployment.get(dep_id)
    assert final.deployment_url == dep.deployment_url
    assert final.latest_running_configuration_id == green
    assert final.last_operation.value == "UPDATE"
    wait_until(lambda: not Path(f"/proc/{old_pid}").exists(), what="old predictor to stop")
    client.deployment.modify(dep_id, target_status=TargetStatus.STOPPED)
    wait_status(client, dep_id, Status.STOPPED)
    client.deployment.delete(dep_id)


def test_update_needs_same_scenario_and_executable(client: AICoreV2Client) -> None:
    dep_id = client.deployment.create(command_config(client, "same-exe")).id
    other = client.configuration.create(
        name="other-exe",
        scenario_id=TEST_SCENARIO,
        executable_id=INFINITY_EXECUTABLE,
        parameter_bindings=[ParameterBinding("modelName", "x")],
    ).id
    wait_status(client, dep_id, Status.RUNNING)
    with pytest.raises(AIAPIInvalidRequestException, match="same scenario"):
        client.deployment.modify(dep_id, configuration_id=other)
    client.deployment.modify(dep_id, target_status=TargetStatus.STOPPED)
    wait_status(client, dep_id, Status.STOPPED)
    client.deployment.delete(dep_id)


def test_predictor_exit_makes_the_deployment_dead(client: AICoreV2Client) -> None:
    dep_id = client.deployment.create(
        command_config(client, "crash", failWith="cannot load model weights")
    ).id
    dead = wait_status(client, dep_id, Status.DEAD)
    assert "exited with code 3" in dead.status_message
    assert "cannot load model weights" in dead.status_message
    assert dead.completion_time is not None
    client.deployment.delete(dep_id)  # DEAD deployments can be deleted directly


def test_unknown_deployment_can_be_deleted(
    aicore_faults: AICoreAdmin, client: AICoreV2Client
) -> None:
    aicore_faults.set_faults(unknown_seconds=30)
    dep_id = client.deployment.create(command_config(client, "early-delete")).id
    assert client.deployment.get(dep_id).status == Status.UNKNOWN
    client.deployment.delete(dep_id)
    assert client.deployment.get(dep_id).target_status == TargetStatus.DELETED
    wait_until(
        lambda: dep_id not in [d.id for d in client.deployment.query().resources],
        what="deletion",
    )


def test_unresolved_placeholder_is_rejected_at_deployment_creation(client: AICoreV2Client) -> None:
    config = client.configuration.create(
        name="no-model-name", scenario_id=TEST_SCENARIO, executable_id=INFINITY_EXECUTABLE
    )
    with pytest.raises(AIAPIInvalidRequestException) as err:
        client.deployment.create(config.id)
    assert (
        "Missing input parameter or artifacts, one or more placeholder values are not resolved "
        "in the serving spec and error is 'dict object' has no attribute 'modelName'."
    ) in str(err.value)


def test_missing_model_in_object_store_makes_the_deployment_dead(client: AICoreV2Client) -> None:
    art = client.artifact.create(
        name="missing",
        kind=Artifact.Kind.MODEL,
        url="ai://default/models/does-not-exist",
        scenario_id=TEST_SCENARIO,
    )
    config = client.configuration.create(
        name="missing-model",
        scenario_id=TEST_SCENARIO,
        executable_id=INFINITY_EXECUTABLE,
        parameter_bindings=[ParameterBinding("modelName", "x")],
        input_artifact_bindings=[InputArtifactBinding("modelArtifact", art.id)],
    )
    dep_id = client.deployment.create(config.id).id
    dead = wait_status(client, dep_id, Status.DEAD)
    assert "does not exist in the object store" in dead.status_message
    client.deployment.delete(dep_id)


def test_ttl_is_validated(client: AICoreV2Client) -> None:
    cid = command_config(client, "ttl")
    for bad in ("4.5h", "4h30m", "5m"):
        with pytest.raises(AIAPIInvalidRequestException, match="ttl"):
            client.deployment.create(cid, ttl=bad)


# -- auth and headers -----------------------------------------------------------------------
def test_token_endpoint_accepts_form_and_basic(aicore: LocalAICore) -> None:
    key = aicore.service_key
    form = httpx.post(
        f"{key['url']}/oauth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": key["clientid"],
            "client_secret": key["clientsecret"],
        },
    )
    basic = httpx.post(
        f"{key['url']}/oauth/token",
        data={"grant_type": "client_credentials"},
        auth=(key["clientid"], key["clientsecret"]),
    )
    for r in (form, basic):
        assert r.status_code == 200
        body = r.json()
        assert body["token_type"] == "bearer" and body["expires_in"] > 3600
        assert body["access_token"].startswith("ey")
    bad = httpx.post(
        f"{key['url']}/oauth/token",
        data={"grant_type": "client_credentials"},
        auth=(key["clientid"], "wrong"),
    )
    assert bad.status_code == 401


def test_requests_need_a_valid_token_and_resource_group(aicore: LocalAICore) -> None:
    url = f"{aicore.url}/v2/lm/deployments"
    assert httpx.get(url, headers={"AI-Resource-Group": "default"}).status_code == 401
    bogus = {"Authorization": "Bearer eyJnope", "AI-Resource-Group": "default"}
    assert httpx.get(url, headers=bogus).status_code == 401
    no_rg = httpx.get(url, headers={"Authorization": f"Bearer {aicore.token()}"})
    assert no_rg.status_code == 400
    assert "AI-Resource-Group" in no_rg.json()["error"]["message"]
    unknown_rg = httpx.get(url, headers=aicore.headers("no-such-group"))
    assert unknown_rg.status_code == 400
    meta = httpx.get(
        f"{aicore.url}/v2/lm/meta", headers={"Authorization": f"Bearer {aicore.token()}"}
    )
    assert meta.status_code == 200  # meta needs no resource group
    rgs = httpx.get(
        f"{aicore.url}/v2/admin/resourceGroups",
        headers={"Authorization": f"Bearer {aicore.token()}"},
    )
    assert rgs.status_code == 200


def test_error_body_shape(aicore: LocalAICore) -> None:
    r = httpx.get(f"{aicore.url}/v2/lm/deployments/d0000000000000000", headers=aicore.headers())
    assert r.status_code == 404
    error = r.json()["error"]
    assert set(error) == {"code", "message", "requestId", "target", "details"}
    assert error["target"] == "/v2/lm/deployments/d0000000000000000"
