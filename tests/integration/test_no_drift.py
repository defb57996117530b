"""GitOps contract: after the operator reconciled an object, the user's manifest still matches it.

Argo CD and Flux show an object as OutOfSync when `kubectl diff` would report a change, so an
operator that writes spec, defaults fields, or adds labels/annotations to the user's object makes
every GitOps diff dirty. For both backends this applies a manifest with `kubectl apply -f FILE`,
client-side (kubectl's default, Argo CD's default) and server-side (`--server-side`, Argo CD's
`ServerSideApply=true`), lets the operator reconcile it, and then checks:

- `kubectl diff -f FILE` and `kubectl diff --server-side -f FILE` exit 0 (no difference);
- `metadata.generation` is still 1 (nothing ever changed spec) and labels/annotations are the
  manifest's, plus kubectl's own and ours under `embeddings.ai/`;
- in `metadata.managedFields`, every field manager other than kubectl owns only `status` (on the
  status subresource), `metadata.finalizers` and `embeddings.ai/` annotations.

No real infinity: the AI Core object runs on the local AI Core's `noop` runtime (the deployment
reaches RUNNING without a process), and the KServe object only needs its InferenceService.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from embedding_operator.kube import FIELD_MANAGER
from tests.fixtures.aicore import AICoreAdmin, LocalAICore
from tests.fixtures.cluster import Kubectl, wait_until

pytestmark = pytest.mark.integration

SECRET = "aicore-service-key"
OUR_PREFIX = "embeddings.ai/"
KUBECTL_ANNOTATION = "kubectl.kubernetes.io/last-applied-configuration"
# Field managers of the user's own writes (client-side apply, server-side diff/apply, create).
USER_MANAGERS = {"kubectl-client-side-apply", "kubectl", "kubectl-create"}

USER_METADATA = {
    "labels": {"app.kubernetes.io/name": "search", "team": "platform"},
    "annotations": {"argocd.argoproj.io/sync-wave": "1", "owner": "platform@example.com"},
}

SPECS: dict[str, dict[str, Any]] = {
    "aicore": {
        "backend": "aicore",
        "model": {"name": "all-minilm-l6-v2", "uri": "ai://default/models/all-minilm-l6-v2"},
        "aicore": {"secretRef": {"name": SECRET}},
    },
    "kserve": {
        "backend": "kserve",
        "model": {"name": "all-minilm-l6-v2", "uri": "hf://sentence-transformers/all-MiniLM-L6-v2"},
        "replicas": {"min": 1, "max": 2},
    },
}


def write_manifest(path: Path, name: str, spec: dict[str, Any]) -> Path:
    # A minimal manifest, as users write it: CRD defaults fill the rest on the server.
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "embeddings.ai/v1alpha1",
                "kind": "EmbeddingModel",
                "metadata": {"name": name, **USER_METADATA},
                "spec": spec,
            }
        )
    )
    return path


APPLY_MODES = {"client-side": [], "server-side": ["--server-side"]}


def assert_no_diff(kubectl: Kubectl, namespace: str, manifest: Path) -> None:
    for extra in ([], ["--server-side"]):
        proc = kubectl("diff", "-n", namespace, "-f", str(manifest), *extra, check=False)
        assert proc.returncode == 0, (
            f"kubectl diff {' '.join(extra)} exit {proc.returncode}:\n{proc.stdout}{proc.stderr}"
        )
        assert proc.stdout == ""


def field_paths(fields: dict[str, Any], prefix: str = "") -> list[str]:
    """Leaf paths of a managedFields fieldsV1 tree, e.g. 'f:metadata/f:finalizers/v:"x"'."""
    paths: list[str] = []
    for key, value in fields.items():
        path = f"{prefix}/{key}" if prefix else key
        if isinstance(value, dict) and value and key != ".":
            paths.extend(field_paths(value, path))
        elif key != ".":
            paths.append(path)
    return paths


def assert_operator_touched_only_its_fields(obj: dict[str, Any]) -> list[str]:
    """Check every non-kubectl field manager's entries; return the managers found."""
    found: list[str] = []
    for entry in obj["metadata"]["managedFields"]:
        manager = entry["manager"]
        if manager in USER_MANAGERS:
            continue
        found.append(manager)
        paths = field_paths(entry.get("fieldsV1", {}))
        if entry.get("subresource") == "status":
            bad = [p for p in paths if not p.startswith("f:status")]
        else:
            bad = [
                p
                for p in paths
                if not p.startswith("f:metadata/f:finalizers")
                and not p.startswith(f"f:metadata/f:annotations/f:{OUR_PREFIX}")
            ]
        assert not bad, f"field manager {manager!r} owns fields outside its own: {bad}"
    return found


def assert_metadata_is_the_users(obj: dict[str, Any]) -> None:
    meta = obj["metadata"]
    assert meta["generation"] == 1, "spec changed after creation"
    assert meta.get("labels") == USER_METADATA["labels"]
    extra = {
        k
        for k in meta.get("annotations", {})
        if k not in USER_METADATA["annotations"]
        and k != KUBECTL_ANNOTATION
        and not k.startswith(OUR_PREFIX)
    }
    assert not extra, f"annotations the user did not write: {sorted(extra)}"
    for k, v in USER_METADATA["annotations"].items():
        assert meta["annotations"][k] == v


def get(kubectl: Kubectl, namespace: str, name: str) -> dict[str, Any]:
    result: dict[str, Any] = kubectl.json(
        "get", "emb", name, "-n", namespace, "--show-managed-fields"
    )
    return result


@pytest.mark.parametrize("apply_mode", list(APPLY_MODES))
def test_aicore_object_shows_no_drift(
    apply_mode: str,
    kubectl: Kubectl,
    namespace: str,
    aicore: LocalAICore,
    aicore_faults: AICoreAdmin,
    start_operator: Any,
    tmp_path: Path,
) -> None:
    aicore_faults.set_runtime("noop")
    kubectl(
        "create", "secret", "generic", SECRET, "-n", namespace,
        f"--from-file=serviceKey={aicore.service_key_path}",
    )  # fmt: skip
    start_operator(namespace)
    manifest = write_manifest(tmp_path / "emb.yaml", "drift", SPECS["aicore"])
    kubectl("apply", "-n", namespace, "-f", str(manifest), *APPLY_MODES[apply_mode])

    def running() -> dict[str, Any] | None:
        obj = get(kubectl, namespace, "drift")
        remote = obj.get("status", {}).get("aicore", {}).get("deploymentStatus")
        return obj if remote == "RUNNING" and obj["metadata"].get("finalizers") else None

    obj = wait_until(running, what="AI Core deployment RUNNING", timeout=120)
    assert_no_diff(kubectl, namespace, manifest)
    obj = get(kubectl, namespace, "drift")  # after the diffs, which must not have written
    assert_metadata_is_the_users(obj)
    assert FIELD_MANAGER in assert_operator_touched_only_its_fields(obj)  # the status writer
    # Deleted while the operator runs, so the AI Core deployment goes too.
    kubectl("delete", "emb", "drift", "-n", namespace, "--timeout=90s", timeout=100)


@pytest.mark.parametrize("apply_mode", list(APPLY_MODES))
def test_kserve_object_shows_no_drift(
    apply_mode: str,
    kubectl: Kubectl,
    namespace: str,
    kserve_crds: tuple[str, ...],
    start_operator: Any,
    tmp_path: Path,
) -> None:
    start_operator(namespace)
    manifest = write_manifest(tmp_path / "emb.yaml", "drift", SPECS["kserve"])
    kubectl("apply", "-n", namespace, "-f", str(manifest), *APPLY_MODES[apply_mode])

    def reconciled() -> dict[str, Any] | None:
        if not kubectl.exists("inferenceservices.serving.kserve.io", "drift", "-n", namespace):
            return None
        obj = get(kubectl, namespace, "drift")
        conditions = obj.get("status", {}).get("conditions", [])
        return obj if conditions and obj["metadata"].get("finalizers") else None

    wait_until(reconciled, what="InferenceService created and status written", timeout=60)
    assert_no_diff(kubectl, namespace, manifest)
    obj = get(kubectl, namespace, "drift")
    assert_metadata_is_the_users(obj)
    assert FIELD_MANAGER in assert_operator_touched_only_its_fields(obj)  # the status writer

    # The check can fail: a spec write behind the manifest's back (what the operator must never
    # do) is a diff for client-side kubectl, and a field-ownership conflict for server-side apply.
    kubectl("patch", "emb", "drift", "-n", namespace, "--type=merge",
            "-p", '{"spec": {"replicas": {"max": 3}}}')  # fmt: skip
    client_side = kubectl("diff", "-n", namespace, "-f", str(manifest), check=False)
    assert client_side.returncode == 1 and "max: 3" in client_side.stdout, client_side.stderr
    server_side = kubectl(
        "diff", "--server-side", "-n", namespace, "-f", str(manifest), check=False
    )
    assert server_side.returncode > 1, server_side.stdout
    assert (
        'conflict with "kubectl-patch"' in server_side.stderr
        and "replicas.max" in server_side.stderr
    )
    kubectl("delete", "emb", "drift", "-n", namespace, "--timeout=60s", timeout=70)
