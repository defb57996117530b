"""The kserve runtime's pure parts: a ServingTemplate rendered into an InferenceService as AI Core
renders it, the artifact URL as KServe loads it on the local node, and KServe's and the pods'
status read as an AI Core deployment status."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from aicore_local.inferenceservice import (
    GENERATION_LABEL,
    RenderError,
    assess,
    inference_service,
    kserve_storage_uri,
)
from aicore_local.templates import ServingTemplate, parse_template

REPO = Path(__file__).resolve().parents[2]
GENERATED = REPO / "manifests" / "aicore" / "serving-template.yaml"
NOMIC = REPO / "tests" / "data" / "aicore-kserve-templates" / "nomic-embed.yaml"
REAL = REPO / "tests" / "data" / "kserve" / "real"
ROOT = Path("/data/objectstore")
PVC = "aicore-objectstore-0123456789"
LABELS = {"aicore-local/deployment": "d0123456789abcde", GENERATION_LABEL: "1"}


def template(path: Path = GENERATED, **edit: Any) -> ServingTemplate:
    doc = yaml.safe_load(path.read_text())
    for key, value in edit.items():
        target = doc["spec"]["template"]
        (target if key == "spec" else target["metadata"])[key] = value
    return parse_template(doc, path.name)


def render(
    t: ServingTemplate,
    params: dict[str, str] | None = None,
    *,
    artifacts: dict[str, str] | None = None,
    docker_registry_secrets: set[str] | None = None,
) -> dict[str, Any]:
    return inference_service(
        t,
        params or {},
        artifacts or {"embeddingModel": f"pvc://{PVC}/default/models/m"},
        name="d0123456789abcde",
        namespace="aicore-local",
        labels=LABELS,
        docker_registry_secrets=docker_registry_secrets or set(),
    )


def env(isvc: dict[str, Any]) -> dict[str, str]:
    (container,) = isvc["spec"]["predictor"]["containers"]
    return {e["name"]: e["value"] for e in container["env"]}


def test_generated_template_renders_as_ai_core_renders_it() -> None:
    isvc = render(template(), {"modelName": "minilm", "batchSize": "16", "image": "img:1"})
    assert (isvc["apiVersion"], isvc["kind"]) == ("serving.kserve.io/v1beta1", "InferenceService")
    assert isvc["metadata"]["name"] == "d0123456789abcde"
    assert isvc["metadata"]["namespace"] == "aicore-local"
    # The string blocks, parsed after substitution; label and annotation values are strings.
    assert isvc["metadata"]["annotations"] == {
        "autoscaling.knative.dev/metric": "concurrency",
        "autoscaling.knative.dev/target": "8",
    }
    assert isvc["metadata"]["labels"] == {"ai.sap.com/resourcePlan": "starter", **LABELS}
    predictor = isvc["spec"]["predictor"]
    assert (predictor["minReplicas"], predictor["maxReplicas"]) == (1, 1)
    assert predictor["containers"][0]["image"] == "img:1"
    values = env(isvc)
    assert values["STORAGE_URI"] == f"pvc://{PVC}/default/models/m"
    assert (values["MODEL_SERVE_NAME"], values["BATCH_SIZE"], values["PORT"]) == (
        "minilm",
        "16",
        "8080",
    )
    assert values["REVISION"] == ""  # an empty default is a value, not a missing placeholder


def test_nomic_style_template_renders_with_its_own_conventions() -> None:
    t = template(NOMIC)
    isvc = render(
        t,
        {"image": "localhost/x:1"},
        artifacts={"nomicModel": f"pvc://{PVC}/default/nomic"},
        docker_registry_secrets={"team-registry"},
    )
    predictor = isvc["spec"]["predictor"]
    assert predictor["imagePullSecrets"] == [{"name": "team-registry"}]
    (container,) = predictor["containers"]
    assert container["command"] == ["infinity_emb"]
    assert "nomic-embed-text-v1.5" in container["args"]
    assert env(isvc)["STORAGE_URI"] == f"pvc://{PVC}/default/nomic"
    assert isvc["metadata"]["labels"]["ai.sap.com/resourcePlan"] == "infer.s"
    assert isvc["metadata"]["annotations"]["autoscaling.knative.dev/window"] == "300s"


def test_the_artifact_may_be_the_model_storage_uri() -> None:
    spec = (
        "predictor:\n  model:\n    modelFormat: {name: huggingface}\n"
        '    storageUri: "{{inputs.artifacts.embeddingModel}}"\n'
    )
    isvc = render(template(spec=spec))
    assert isvc["spec"]["predictor"]["model"]["storageUri"] == f"pvc://{PVC}/default/models/m"


@pytest.mark.parametrize(
    ("edit", "params", "secrets", "message"),
    [
        ({"spec": "transformer: {}\n"}, {}, set(), "has no predictor mapping"),
        ({"spec": "predictor:\n  minReplicas: 1\n"}, {}, set(), "neither containers nor model"),
        ({"spec": "- predictor\n"}, {}, set(), "template.spec is not a mapping"),
        ({"spec": "predictor: [\n"}, {}, set(), "template.spec is not valid YAML"),
        ({"labels": "team: a\n"}, {}, set(), "exactly one of ai.sap.com/resourcePlan"),
        (
            {"labels": "ai.sap.com/resourcePlan: a\nai.sap.com/instanceType: b\n"},
            {},
            set(),
            "exactly one of",
        ),
        ({"annotations": "a: {b: c}\n"}, {}, set(), "the value of 'a' must be a string"),
        (
            {"spec": "predictor:\n  containers: [{name: c, image: '{{inputs.parameters.no}}'}]\n"},
            {},
            set(),
            "'dict object' has no attribute 'no'",
        ),
        (
            {
                "spec": "predictor:\n  imagePullSecrets: [{name: private}]\n"
                "  containers: [{name: kserve-container, image: x}]\n"
            },
            {},
            {"other"},
            "imagePullSecrets ['private']: no docker registry secret",
        ),
        (
            {"spec": "predictor:\n  imagePullSecrets: private\n  containers: [{name: c}]\n"},
            {},
            set(),
            "must be a list of {name: …}",
        ),
    ],
)
def test_what_ai_core_would_refuse_is_a_render_error(
    edit: dict[str, str], params: dict[str, str], secrets: set[str], message: str
) -> None:
    with pytest.raises(RenderError) as caught:
        render(template(**edit), params, docker_registry_secrets=secrets)
    assert message in str(caught.value)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("file:///data/objectstore/default/models/m", f"pvc://{PVC}/default/models/m"),
        ("file:///data/objectstore/a%20b/m", f"pvc://{PVC}/a b/m"),
        ("pvc://models/all-minilm-l6-v2", "pvc://models/all-minilm-l6-v2"),
    ],
)
def test_artifact_urls_map_to_the_object_store_volume(url: str, expected: str) -> None:
    assert kserve_storage_uri(url, ROOT, PVC) == expected


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("file:///elsewhere/m", "outside the object store directory /data/objectstore"),
        ("file:///data/objectstore", "outside the object store directory"),
        ("file:///data/objectstore/../etc", "outside the object store directory"),
        ("ai://nosecret/models/m", "object store secret 'nosecret' does not exist"),
        ("s3://bucket/m", "scheme 's3' cannot be loaded offline"),
    ],
)
def test_artifact_urls_kserve_cannot_load_are_errors(url: str, message: str) -> None:
    with pytest.raises(RenderError) as caught:
        kserve_storage_uri(url, ROOT, PVC)
    assert message in str(caught.value)


# -- status ---------------------------------------------------------------------------------------
def real(name: str) -> dict[str, Any]:
    obj: dict[str, Any] = yaml.safe_load((REAL / f"{name}.yaml").read_text())
    obj["metadata"] = {"name": "d1", "generation": 1}
    return obj


def pod(
    generation: int = 1,
    *,
    ready: bool = True,
    ip: str = "10.88.0.7",
    waiting: str | None = None,
    init_waiting: str | None = None,
    terminated: dict[str, Any] | None = None,
    deleting: bool = False,
    unschedulable: bool = False,
) -> dict[str, Any]:
    def status(name: str, reason: str | None) -> dict[str, Any]:
        state = {"waiting": {"reason": reason}} if reason else {"running": {}}
        out: dict[str, Any] = {"name": name, "state": state, "restartCount": 2 if reason else 0}
        if terminated:
            out["lastState"] = {"terminated": terminated}
        return out

    conditions = [{"type": "Ready", "status": "True" if ready else "False"}]
    if unschedulable:
        conditions.append(
            {"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
             "message": "0/1 nodes are available: 1 Insufficient memory."}
        )  # fmt: skip
    meta: dict[str, Any] = {
        "name": f"d1-predictor-{generation}",
        "labels": {GENERATION_LABEL: str(generation)},
    }
    if deleting:
        meta["deletionTimestamp"] = "2026-12-01T00:00:00Z"
    return {
        "metadata": meta,
        "status": {
            "phase": "Running",
            "podIP": ip,
            "conditions": conditions,
            "containerStatuses": [status("kserve-container", waiting)],
            "initContainerStatuses": [status("storage-initializer", init_waiting)]
            if init_waiting
            else [],
        },
    }


def test_ready_isvc_and_a_ready_pod_of_the_generation_are_running() -> None:
    seen = assess(real("inferenceservice-ready"), [pod()], 1)
    assert (seen.status, seen.pod_ip) == ("RUNNING", "10.88.0.7")


@pytest.mark.parametrize(
    ("isvc", "pods", "generation", "message"),
    [
        (None, [], 1, "not there"),
        ("inferenceservice-crashloop", [pod(ready=False)], 1, "minimum availability"),
        # After an update, KServe is still Ready with the old pod: not yet the new generation.
        ("inferenceservice-ready", [pod(1)], 2, "not Ready yet"),
        ("inferenceservice-ready", [pod(2, deleting=True)], 2, "not Ready yet"),
        (
            "inferenceservice-crashloop",
            [pod(ready=False, unschedulable=True)],
            1,
            "Insufficient memory",
        ),
    ],
)
def test_not_yet_serving_is_pending(
    isvc: str | None, pods: list[dict[str, Any]], generation: int, message: str
) -> None:
    seen = assess(real(isvc) if isvc else None, pods, generation)
    assert seen.status == "PENDING"
    assert message in seen.message


NO_MODEL = "MODEL_DIR='/mnt/models' has no model files"
CRASHED = {"exitCode": 2, "message": NO_MODEL + "\n"}


@pytest.mark.parametrize(
    ("pods", "message"),
    [
        (
            [pod(ready=False, waiting="CrashLoopBackOff", terminated=CRASHED)],
            f"container kserve-container: CrashLoopBackOff: exited with code 2: {NO_MODEL}",
        ),
        (
            [pod(ready=False, waiting="ErrImageNeverPull")],
            "container kserve-container: ErrImageNeverPull",
        ),
        (
            [
                pod(
                    ready=False,
                    init_waiting="CrashLoopBackOff",
                    terminated={"exitCode": 1, "reason": "Error"},
                )
            ],
            "container storage-initializer: CrashLoopBackOff: exited with code 1 (Error)",
        ),
    ],
)
def test_a_container_that_cannot_start_is_dead_with_its_reason(
    pods: list[dict[str, Any]], message: str
) -> None:
    seen = assess(real("inferenceservice-crashloop"), pods, 1)
    assert (seen.status, seen.message) == ("DEAD", message)


def test_an_old_generations_crash_does_not_kill_the_new_one() -> None:
    old = pod(1, ready=False, waiting="CrashLoopBackOff")
    assert assess(real("inferenceservice-ready"), [old, pod(2)], 2).status == "RUNNING"


def test_kserves_failure_info_is_dead() -> None:
    isvc = copy.deepcopy(real("inferenceservice-crashloop"))
    isvc["status"]["modelStatus"]["lastFailureInfo"] = {
        "reason": "ModelLoadFailed",
        "message": "no model at /mnt/models",
    }
    seen = assess(isvc, [], 1)
    assert (seen.status, seen.message) == (
        "DEAD",
        "KServe: ModelLoadFailed: no model at /mnt/models",
    )
