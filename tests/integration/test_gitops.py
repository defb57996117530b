"""GitOps for real: a real Argo CD syncs EmbeddingModels from a git repository into the cluster.

Every change under test is a git commit (tests/fixtures/argocd.py); the only other writes to the
Application are what a user's tools do: `kubectl apply` of the Application once, the refresh
annotation a webhook sets, and the compare-options annotation that turns on server-side diff.
The operator runs as a process against the same cluster; the local AI Core serves with real
infinity processes (`--no-model-warmup`), so Healthy means embeddings were really served.

What Argo CD reported in each state (sync status, health, the model's health message) is
asserted here and written down in docs/gitops.md.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from testcluster import Cluster, ClusterError
from tests.fixtures.aicore import LocalAICore
from tests.fixtures.argocd import (
    COMPARE_OPTIONS,
    REFRESH,
    ArgoCD,
    GitRepo,
    resource,
    secret_manifest,
)
from tests.fixtures.cluster import Kubectl, wait_until
from tests.fixtures.operator import CRD_PATH, OperatorProcess

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SECRET = "aicore-service-key"
MODEL = "minilm"
KIND = "EmbeddingModel"
SYNC_WAVE = "argocd.argoproj.io/sync-wave"


def model_manifest(secret: str = SECRET, **extra: Any) -> dict[str, Any]:
    """The EmbeddingModel as a user commits it: minimal, CRD defaults fill in the rest."""
    spec: dict[str, Any] = {
        "backend": "aicore",
        "model": {
            "name": "all-minilm-l6-v2",
            "uri": "ai://default/models/all-minilm-l6-v2",
            "dimensions": 384,
        },
        # NB: warm-up only delays start-up by seconds of CPU per deployment on a 2-core machine.
        "serving": {"args": ["--no-model-warmup"]},
        "aicore": {"secretRef": {"name": secret}},
    }
    for key, value in extra.items():
        if isinstance(value, dict):
            spec.setdefault(key, {}).update(value)
        else:
            spec[key] = value
    return {
        "apiVersion": "embeddings.ai/v1alpha1",
        "kind": KIND,
        "metadata": {"name": MODEL, "labels": {"app.kubernetes.io/part-of": "search"}},
        "spec": spec,
    }


def view(app: dict[str, Any]) -> tuple[str, str, str | None, str | None, str]:
    """(sync status, app health, model health, model health message, synced revision)."""
    status = app.get("status", {})
    res = resource(app, KIND, MODEL) or {}
    health = res.get("health") or {}
    return (
        status.get("sync", {}).get("status", ""),
        status.get("health", {}).get("status", ""),
        health.get("status"),
        health.get("message"),
        status.get("sync", {}).get("revision", ""),
    )


class Observer:
    """Polls one Application and keeps every distinct state Argo CD reported, in order."""

    def __init__(self, argocd: ArgoCD, name: str, log: Path) -> None:
        self.argocd, self.name, self.log = argocd, name, log
        self.seen: list[tuple[str, str, str | None, str | None, str]] = []

    def until(self, predicate: Any, *, what: str, timeout: float = 180) -> dict[str, Any]:
        def check(app: dict[str, Any]) -> bool:
            state = view(app)
            if not self.seen or self.seen[-1] != state:
                self.seen.append(state)
                with self.log.open("a") as f:
                    f.write(f"{self.name} [{what}] {state}\n")
            return bool(predicate(app))

        return self.argocd.wait(self.name, check, what=what, timeout=timeout)

    def states_since(self, mark: int) -> list[tuple[str, str, str | None, str | None, str]]:
        return self.seen[mark:]


def at(rev: str, sync: str, model_health: str | None) -> Any:
    """Predicate: synced to `rev`, with that sync status and model health."""

    def check(app: dict[str, Any]) -> bool:
        s, _, h, _, r = view(app)
        return r == rev and s == sync and h == model_health

    return check


def emb(kubectl: Kubectl, namespace: str) -> dict[str, Any]:
    obj: dict[str, Any] = kubectl.json("get", "emb", MODEL, "-n", namespace)
    return obj


def commit(argocd: ArgoCD, repo: GitRepo, app: str, message: str) -> str:
    rev = repo.commit(message)
    argocd.refresh(app)
    return rev


def refreshed_after(argocd: ArgoCD, name: str, since: str, *, hard: bool = False) -> dict[str, Any]:
    """Ask for a refresh and wait for a comparison that started after `since` (RFC 3339)."""
    argocd.refresh(name, "hard" if hard else "normal")
    return argocd.wait(
        name,
        lambda a: (
            a.get("status", {}).get("reconciledAt", "") >= since
            and REFRESH not in a["metadata"].get("annotations", {})
        ),
        what="a fresh comparison",
        timeout=60,
    )


def now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def assert_all_synced(app: dict[str, Any]) -> None:
    assert app["status"]["sync"]["status"] == "Synced", app["status"]["sync"]
    out = [r for r in app["status"]["resources"] if r.get("status") != "Synced"]
    assert not out, f"resources not Synced: {out}"


def test_lifecycle_from_git(
    argocd: ArgoCD,
    argocd_apps: list[str],
    gitops_repo: GitRepo,
    namespace: str,
    kubectl: Kubectl,
    aicore: LocalAICore,
    start_operator: Any,
) -> None:
    """Scenarios 1-6 on one Application: first sync, no drift, rollout, mistake and fix,
    suspend, prune."""
    name = "lifecycle"
    start_operator(namespace)
    watch = Observer(argocd, name, argocd.log_dir / "observed.log")
    gitops_repo.write("models/secret.yaml", secret_manifest(SECRET, aicore.service_key))
    gitops_repo.write("models/minilm.yaml", model_manifest())
    application = argocd.application(name, gitops_repo, "models", namespace)
    gitops_repo.write(f"apps/{name}.yaml", application)
    rev = gitops_repo.commit("Serve all-minilm-l6-v2 through AI Core")
    argocd.create(application)
    argocd_apps.append(name)

    # 1. First sync → Synced; Healthy once the operator reports Ready, with its message.
    app = watch.until(at(rev, "Synced", "Healthy"), what="first sync Healthy", timeout=300)
    obj = emb(kubectl, namespace)
    assert obj["status"]["phase"] == "Ready"
    assert view(app)[3] == obj["status"]["endpoint"]  # the operator's status.endpoint
    assert app["status"]["health"]["status"] == "Healthy"
    assert any(s[2] == "Progressing" for s in watch.seen), watch.seen  # not Healthy at once
    deployment_id = obj["status"]["aicore"]["deploymentId"]

    # 2. The operator wrote status, a finalizer and its annotations, and CRD defaults filled in
    #    spec: Argo CD's own diff still says Synced, client-side and server-side.
    assert obj["metadata"]["finalizers"] and obj["spec"]["serving"].get("engine")
    for compare in (None, "ServerSideDiff=true", "ServerSideDiff=false"):
        if compare is not None:
            argocd.annotate(name, COMPARE_OPTIONS, compare)
        app = refreshed_after(argocd, name, now(), hard=True)
        assert_all_synced(app)
        assert view(app)[2] == "Healthy"
    assert emb(kubectl, namespace)["metadata"]["generation"] == 1
    # ...and the diff can fail: a change behind git's back is OutOfSync, and self-heal undoes it.
    argocd.annotate(name, COMPARE_OPTIONS, "ServerSideDiff=true")
    kubectl(
        "label", "emb", MODEL, "-n", namespace, "app.kubernetes.io/part-of=edited", "--overwrite"
    )
    # NB: nothing but Argo CD writes this label (the operator never touches labels), so the edit
    # undone is Argo CD's diff and self-heal at work. Whether the heal also shows as an observed
    # OutOfSync state or a new history entry depends on timing (seen both ways, and neither).
    watch.until(
        lambda a: (
            emb(kubectl, namespace)["metadata"]["labels"]["app.kubernetes.io/part-of"] == "search"
            and view(a)[0] == "Synced"
        ),
        what="self-heal of a live edit",
        timeout=90,
    )

    # 3. A commit changing spec.serving.batchSize → Progressing on generation 2 → Healthy.
    gitops_repo.write("models/minilm.yaml", model_manifest(serving={"batchSize": 16}))
    mark = len(watch.seen)
    rev = commit(argocd, gitops_repo, name, "minilm: batchSize 16")
    watch.until(at(rev, "Synced", "Healthy"), what="rollout Healthy", timeout=300)
    rollout = [s for s in watch.states_since(mark) if s[4] == rev]
    assert any(s[2] == "Progressing" for s in rollout), rollout
    obj = emb(kubectl, namespace)
    assert obj["metadata"]["generation"] == obj["status"]["observedGeneration"] == 2
    assert obj["status"]["aicore"]["deploymentId"] == deployment_id  # same deployment, new config

    # 4. A mistake the API server accepts (a Secret name that does not exist) → Degraded with
    #    the operator's message; the fix → Healthy.
    gitops_repo.write(
        "models/minilm.yaml", model_manifest(secret="aicore-key", serving={"batchSize": 16})
    )
    mark = len(watch.seen)
    rev = commit(argocd, gitops_repo, name, "minilm: use the aicore-key Secret (typo)")
    app = watch.until(at(rev, "Synced", "Degraded"), what="Degraded", timeout=120)
    # Never Healthy on the broken revision: not even from a pass over the previous spec.
    broken = [s for s in watch.states_since(mark) if s[4] == rev and s[0] == "Synced"]
    assert all(s[2] != "Healthy" for s in broken), broken
    message = view(app)[3] or ""
    assert message.startswith(f"Secret {namespace}/aicore-key not found: create it"), message
    assert app["status"]["health"]["status"] == "Degraded"
    gitops_repo.write("models/minilm.yaml", model_manifest(serving={"batchSize": 16}))
    rev = commit(argocd, gitops_repo, name, "minilm: back to the aicore-service-key Secret")
    watch.until(at(rev, "Synced", "Healthy"), what="fixed Healthy", timeout=180)

    # 5. suspend: true → Suspended.
    gitops_repo.write("models/minilm.yaml", model_manifest(suspend=True, serving={"batchSize": 16}))
    rev = commit(argocd, gitops_repo, name, "minilm: suspend")
    # Suspended already while the operator stops the deployment (its phase is still
    # Progressing then), and still once the deployment is STOPPED.
    app = watch.until(at(rev, "Synced", "Suspended"), what="Suspended", timeout=180)
    assert app["status"]["health"]["status"] == "Suspended"
    wait_until(
        lambda: emb(kubectl, namespace)["status"].get("phase") == "Suspended",
        what="phase Suspended",
        timeout=120,
    )
    app = watch.until(
        lambda a: at(rev, "Synced", "Suspended")(a) and "STOPPED" in (view(a)[3] or ""),
        what="Suspended, deployment stopped",
        timeout=60,
    )

    # 6. Removing the model from git (prune on) → the finalizer deletes the AI Core deployment;
    #    the Application ends Synced with nothing left behind.
    gitops_repo.remove("models/minilm.yaml")
    rev = commit(argocd, gitops_repo, name, "Remove minilm")
    app = watch.until(
        lambda a: view(a)[4] == rev and view(a)[0] == "Synced" and resource(a, KIND, MODEL) is None,
        what="pruned and Synced",
        timeout=180,
    )
    assert not kubectl.exists("emb", MODEL, "-n", namespace)
    assert [r["kind"] for r in app["status"]["resources"]] == ["Secret"]
    assert app["status"]["health"]["status"] == "Healthy"
    gone = httpx.get(
        f"{aicore.url}/v2/lm/deployments/{deployment_id}", headers=aicore.headers(), timeout=10
    )
    assert gone.status_code == 404, gone.text


def test_fresh_cluster_converges_in_one_sync(
    argocd: ArgoCD,
    argocd_apps: list[str],
    gitops_repo: GitRepo,
    aicore: LocalAICore,
    tmp_path: Path,
) -> None:
    """Scenario 7: one Application with the CRD, the Secret and the model, on a cluster that
    has none of them yet (a second local control plane, registered with Argo CD)."""
    fresh = Cluster(tmp_path / "fresh", log_dir=tmp_path / "fresh-logs")
    try:
        fresh.start(detach=False)
    except ClusterError as exc:
        fresh.stop()
        pytest.fail(f"could not start a second control plane: {exc}", pytrace=False)
    operator: OperatorProcess | None = None
    try:
        fresh_kubectl = Kubectl(fresh.kubeconfig)
        server = argocd.add_cluster("fresh", fresh.kubeconfig)
        assert not fresh_kubectl.exists("crd", "embeddingmodels.embeddings.ai")

        crd = yaml.safe_load(CRD_PATH.read_text())
        crd["metadata"].setdefault("annotations", {})[SYNC_WAVE] = "-1"
        secret = secret_manifest(SECRET, aicore.service_key)
        secret["metadata"]["annotations"] = {SYNC_WAVE: "-1"}
        gitops_repo.write("platform/crd.yaml", crd)
        gitops_repo.write("platform/secret.yaml", secret)
        gitops_repo.write("platform/minilm.yaml", model_manifest())
        name, namespace = "fresh-cluster", "ml-serving"
        application = argocd.application(name, gitops_repo, "platform", namespace, server=server)
        gitops_repo.write(f"apps/{name}.yaml", application)
        rev = gitops_repo.commit("CRD, Secret and model for the fresh cluster")
        argocd.create(application)
        argocd_apps.append(name)

        # The operator's Deployment would crash-loop until its CRD exists; start it then.
        wait_until(
            lambda: (
                fresh_kubectl.exists("crd", "embeddingmodels.embeddings.ai")
                and fresh_kubectl.exists("namespace", namespace)
            ),
            what="wave -1 applied",
            timeout=120,
        )
        operator = OperatorProcess(
            str(fresh.kubeconfig), [namespace], tmp_path / "operator-fresh.log", {}
        ).start()

        watch = Observer(argocd, name, argocd.log_dir / "observed.log")
        app = watch.until(
            lambda a: (
                at(rev, "Synced", "Healthy")(a)
                and a["status"].get("operationState", {}).get("phase") == "Succeeded"
            ),
            what="fresh cluster Synced and Healthy",
            timeout=300,
        )
        op = app["status"]["operationState"]
        results = {(r["kind"], r["status"]) for r in op["syncResult"]["resources"]}
        # Argo CD may need a second attempt when its CRD health check reads the CRD before it is
        # Established (docs/gitops.md): a retry within the operation, or a new automated sync
        # after a failed one. Either way only the attempt that succeeded is in the history, the
        # model is in its result, and every resource (CRD, Secret, model) is Synced below.
        retries = op.get("retryCount", 0)
        assert retries < application["spec"]["syncPolicy"]["retry"]["limit"], op
        assert (KIND, "Synced") in results, op
        assert len(app["status"]["history"]) == 1, app["status"]["history"]
        with (argocd.log_dir / "observed.log").open("a") as f:
            f.write(f"{name} sync retries: {retries}; operation: {op.get('message')}\n")
        assert_all_synced(app)
        synced = {r["kind"] for r in app["status"]["resources"]}
        assert {"CustomResourceDefinition", "Secret", KIND} <= synced, app["status"]["resources"]
        obj = fresh_kubectl.json("get", "emb", MODEL, "-n", namespace)
        assert view(app)[3] == obj["status"]["endpoint"]
        # Don't let pruning or the resources finalizer delete the CRD later: drop the app first.
        argocd.delete(name)
    finally:
        if operator is not None:
            operator.kill()
        argocd.kubectl(
            "delete", "secret", "cluster-fresh", "-n", "argocd", "--ignore-not-found", check=False
        )
        fresh.stop()
