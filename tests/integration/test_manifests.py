"""The install manifests (manifests/install/) against the real API server.

Both overlays render with `kubectl kustomize`; every object passes a server-side dry run; the pod
template passes the `restricted` Pod Security admission for real; the RBAC has no wildcard, no
pods/exec, Secrets `get` only, and `kubectl auth can-i --as=<the operator's ServiceAccount>` proves
it can do exactly what the operator does (docs/install.md) and not what it must not.
"""

from __future__ import annotations

import copy
import json
import os
from typing import Any

import pytest
import yaml

from tests.fixtures.cluster import REPO_ROOT, Kubectl
from tests.fixtures.manifests import (
    EMB,
    INSTALL,
    ISVC,
    OVERLAYS,
    by_kind,
    delete_cluster_scoped,
    kustomize,
    one,
    render,
    short_prefix,
)

pytestmark = pytest.mark.integration

CRD_FILE = REPO_ROOT / "crds" / "embeddings.ai_embeddingmodels.yaml"
SA = "embedding-operator"
RELEASED_IMAGE = "ghcr.io/embedding-operator/embedding-operator:0.1.0"


# -- rendering -------------------------------------------------------------------------------


def rules_of(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for d in docs if d["kind"] in ("Role", "ClusterRole") for r in d.get("rules", [])]


def normalized(rules: list[dict[str, Any]]) -> set[tuple[str, str, str]]:
    return {
        (group, resource, verb)
        for r in rules
        for group in r.get("apiGroups", [])
        for resource in r.get("resources", [])
        for verb in r.get("verbs", [])
    }


@pytest.fixture(scope="module")
def rendered() -> dict[str, list[dict[str, Any]]]:
    return {overlay: kustomize(INSTALL / "overlays" / overlay) for overlay in OVERLAYS}


# -- what the overlays contain -----------------------------------------------------------------


def test_overlays_render_the_expected_objects(rendered):
    kinds = {
        o: sorted((d["kind"], d["metadata"]["name"]) for d in docs) for o, docs in rendered.items()
    }
    assert kinds["cluster-wide"] == sorted(
        [
            ("ClusterRole", "embedding-operator"),
            ("ClusterRole", "embedding-operator-secret-reader"),
            ("ClusterRoleBinding", "embedding-operator"),
            ("ClusterRoleBinding", "embedding-operator-secret-reader"),
            ("CustomResourceDefinition", "embeddingmodels.embeddings.ai"),
            ("Deployment", "embedding-operator"),
            ("Namespace", "embedding-operator"),
            ("Role", "embedding-operator-leader-election"),
            ("RoleBinding", "embedding-operator-leader-election"),
            ("ServiceAccount", "embedding-operator"),
        ]
    )
    assert kinds["namespaced"] == sorted(
        [
            ("CustomResourceDefinition", "embeddingmodels.embeddings.ai"),
            ("Deployment", "embedding-operator"),
            ("Role", "embedding-operator"),
            ("Role", "embedding-operator-leader-election"),
            ("RoleBinding", "embedding-operator"),
            ("RoleBinding", "embedding-operator-leader-election"),
            ("ServiceAccount", "embedding-operator"),
        ]
    )
    for overlay, docs in rendered.items():
        namespaced = [d for d in docs if d["kind"] in ("ServiceAccount", "Deployment", "Role")]
        want = "embedding-operator" if overlay == "cluster-wide" else "ml-serving"
        assert {d["metadata"].get("namespace") for d in namespaced} == {want}, overlay


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_crd_is_the_generated_file_itself(rendered, overlay):
    # crds/ is a kustomize base: the install carries the generated CRD, never a stale copy.
    crd = one(rendered[overlay], "CustomResourceDefinition")
    generated = yaml.safe_load(CRD_FILE.read_text())
    labels = crd["metadata"].pop("labels", {})
    generated["metadata"].pop("labels", None)
    assert crd == generated
    assert labels.get("app.kubernetes.io/part-of") == "embedding-operator"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_rbac_has_no_wildcard_no_exec_pods_list_only_and_secrets_get_and_patch_only(
    rendered, overlay
):
    rules = rules_of(rendered[overlay])
    assert rules, "no RBAC rules rendered"
    for rule in rules:
        for field in ("apiGroups", "resources", "verbs", "resourceNames", "nonResourceURLs"):
            assert not any("*" in value for value in rule.get(field, [])), rule
        assert "nonResourceURLs" not in rule, rule
    triples = normalized(rules)
    # Pods: `list` only (the KServe predictor's status); no exec, logs, attach or writes.
    assert [(r, v) for _, r, v in triples if r.startswith("pods")] == [("pods", "list")], triples
    # get by name, patch for the in-use finalizer; never list/watch (enumerating Secrets).
    assert sorted(v for g, r, v in triples if (g, r) == ("", "secrets")) == ["get", "patch"]
    for verb in ("delete", "deletecollection", "update", "escalate", "bind", "impersonate"):
        allowed = ("embeddingmodels/finalizers", "leases")
        assert not any(v == verb and r not in allowed for _, r, v in triples), (
            f"{verb} granted: {sorted(triples)}"
        )


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_lease_rights_are_a_role_for_the_one_lease_in_the_operators_namespace(rendered, overlay):
    docs = rendered[overlay]
    role = next(d for d in by_kind(docs, "Role") if d["metadata"]["name"].endswith("election"))
    deployment = one(docs, "Deployment")
    assert role["metadata"]["namespace"] == deployment["metadata"]["namespace"]
    assert normalized(role["rules"]) == {
        ("coordination.k8s.io", "leases", "create"),
        ("coordination.k8s.io", "leases", "get"),
        ("coordination.k8s.io", "leases", "update"),
    }
    for rule in role["rules"]:
        if rule["verbs"] != ["create"]:  # create cannot name an object that does not exist yet
            assert rule["resourceNames"] == ["embedding-operator"]
    # No ClusterRole mentions leases.
    cluster = normalized(rules_of(by_kind(docs, "ClusterRole")))
    assert not any(r == "leases" for _, r, _ in cluster)


def test_namespaced_role_grants_exactly_the_cluster_wide_rules(rendered):
    # Two copies of one rule set (a Role cannot reference a ClusterRole's rules): keep them equal.
    cluster = normalized(rules_of(by_kind(rendered["cluster-wide"], "ClusterRole")))
    roles = [
        d
        for d in by_kind(rendered["namespaced"], "Role")
        if not d["metadata"]["name"].endswith("election")
    ]
    role = normalized(rules_of(roles))
    assert role == cluster
    assert cluster == {
        ("embeddings.ai", "embeddingmodels", "get"),
        ("embeddings.ai", "embeddingmodels", "list"),
        ("embeddings.ai", "embeddingmodels", "watch"),
        ("embeddings.ai", "embeddingmodels", "patch"),
        ("embeddings.ai", "embeddingmodels/status", "patch"),
        ("embeddings.ai", "embeddingmodels/finalizers", "update"),
        ("", "events", "create"),
        ("serving.kserve.io", "inferenceservices", "get"),
        ("serving.kserve.io", "inferenceservices", "create"),
        ("serving.kserve.io", "inferenceservices", "patch"),
        ("", "pods", "list"),
        ("apps", "deployments", "get"),
        ("", "secrets", "get"),
        ("", "secrets", "patch"),
    }


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_deployment_is_two_restricted_replicas_with_a_liveness_probe(rendered, overlay):
    docs = rendered[overlay]
    deployment = one(docs, "Deployment")
    spec = deployment["spec"]
    # Leader election makes two replicas safe; a rolling update never drops below two.
    assert spec["replicas"] == 2
    assert spec["strategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0},
    }
    pod = spec["template"]["spec"]
    assert pod["serviceAccountName"] == one(docs, "ServiceAccount")["metadata"]["name"]
    assert pod.get("hostNetwork") is not True and pod.get("hostPID") is not True
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    (container,) = pod["containers"]
    assert container["image"] == RELEASED_IMAGE
    sc = container["securityContext"]
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["runAsNonRoot"] is True
    assert sc["capabilities"] == {"drop": ["ALL"]}
    assert sc.get("privileged") is not True
    assert sc["seccompProfile"] == {"type": "RuntimeDefault"}
    resources = container["resources"]
    assert {"cpu", "memory"} <= resources["requests"].keys()
    assert {"cpu", "memory"} <= resources["limits"].keys()
    # The probe hits the endpoint the operator is told to serve kopf's liveness on.
    (liveness,) = [a.split("=", 1)[1] for a in container["args"] if a.startswith("--liveness=")]
    port = {p["name"]: p["containerPort"] for p in container["ports"]}
    probe = container["livenessProbe"]["httpGet"]
    assert liveness == f"http://0.0.0.0:{port[probe['port']]}{probe['path']}"
    assert container["startupProbe"]["httpGet"] == probe
    assert container["readinessProbe"]["httpGet"] == probe  # rollout status waits for it
    assert f"--metrics-port={port['metrics']}" in container["args"]
    namespaces = [a for a in container["args"] if a.startswith(("--namespace", "-n"))]
    env = {e["name"]: e.get("valueFrom") for e in container["env"]}
    assert env["POD_NAMESPACE"] == {"fieldRef": {"fieldPath": "metadata.namespace"}}
    assert env["POD_NAME"] == {"fieldRef": {"fieldPath": "metadata.name"}}  # Lease identity
    if overlay == "namespaced":
        assert namespaces == ["--namespace=$(POD_NAMESPACE)"]
    else:
        assert namespaces == []  # all namespaces
    assert container["args"][0] == "run"


def test_pod_runs_as_the_images_user(rendered):
    # The image's USER is what runs where runAsUser is not set (e.g. an OpenShift SCC drops it);
    # keep both the same non-root identity.
    dockerfile = (REPO_ROOT / "Dockerfile.operator").read_text().splitlines()
    (user,) = [line.split()[1] for line in dockerfile if line.startswith("USER ")][-1:]
    for docs in rendered.values():
        context = one(docs, "Deployment")["spec"]["template"]["spec"]["securityContext"]
        assert user == f"{context['runAsUser']}:{context['runAsGroup']}"
        assert context["runAsUser"] != 0


def test_cluster_wide_namespace_enforces_restricted_pod_security(rendered):
    labels = one(rendered["cluster-wide"], "Namespace")["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_a_users_namespace_override_keeps_the_bindings_pointing_at_the_service_account(
    overlay, tmp_path
):
    docs = render(overlay, tmp_path, namespace="team-a", prefix="x-")
    sa = one(docs, "ServiceAccount")["metadata"]
    assert (sa["namespace"], sa["name"]) == ("team-a", "x-embedding-operator")
    bindings = by_kind(docs, "RoleBinding") + by_kind(docs, "ClusterRoleBinding")
    roles = {d["metadata"]["name"] for d in by_kind(docs, "Role") + by_kind(docs, "ClusterRole")}
    assert bindings
    for binding in bindings:
        assert binding["subjects"] == [
            {"kind": "ServiceAccount", "name": sa["name"], "namespace": "team-a"}
        ]
        assert binding["roleRef"]["name"] in roles
    pod = one(docs, "Deployment")["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == sa["name"]


# -- against the API server ---------------------------------------------------------------------


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_object_passes_a_server_side_dry_run(
    overlay, kubectl: Kubectl, crd, kserve_crds, namespace, tmp_path
):
    docs = render(overlay, tmp_path, namespace=namespace, prefix=short_prefix(namespace))
    proc = kubectl(
        "apply", "--server-side", "--dry-run=server", "--field-manager=test-manifests",
        "-f", "-", input=yaml.safe_dump_all(docs),
    )  # fmt: skip
    applied = [line for line in proc.stdout.splitlines() if "(server dry run)" in line]
    assert len(applied) == len(docs), proc.stdout
    assert "Warning" not in proc.stderr, proc.stderr


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_pod_template_is_admitted_by_restricted_pod_security(
    overlay, kubectl: Kubectl, namespace, rendered
):
    kubectl(
        "label", "namespace", namespace,
        "pod-security.kubernetes.io/enforce=restricted",
        "pod-security.kubernetes.io/warn=restricted",
    )  # fmt: skip
    template = one(rendered[overlay], "Deployment")["spec"]["template"]

    def pod(spec: dict[str, Any]) -> str:
        return json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": "operator", "namespace": namespace},
                "spec": spec,
            }
        )

    admitted = kubectl("create", "--dry-run=server", "-f", "-", input=pod(template["spec"]))
    assert "Warning" not in admitted.stderr, admitted.stderr

    # The check can fail: the same pod without its container securityContext is refused.
    weakened = copy.deepcopy(template["spec"])
    del weakened["containers"][0]["securityContext"]
    refused = kubectl("create", "--dry-run=server", "-f", "-", input=pod(weakened), check=False)
    assert refused.returncode != 0
    assert "violates PodSecurity" in refused.stderr and "restricted" in refused.stderr


# -- what the ServiceAccount may do -------------------------------------------------------------


def can_i(kubectl: Kubectl, user: str, *args: str) -> bool:
    proc = kubectl("auth", "can-i", f"--as={user}", *args, check=False)
    answer = proc.stdout.strip()
    assert answer in ("yes", "no"), f"can-i {args}: {proc.stdout}{proc.stderr}"
    return answer == "yes"


def apply_rbac(kubectl: Kubectl, docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rbac = [
        d
        for d in docs
        if d["kind"]
        in ("ServiceAccount", "Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding")
    ]
    kubectl.apply(yaml.safe_dump_all(rbac))
    return rbac


#: (verb, resource, extra can-i args) the operator needs in the namespaces it serves.
NEEDED = [
    ("get", EMB, ()),
    ("list", EMB, ()),
    ("watch", EMB, ()),
    ("patch", EMB, ()),
    ("patch", EMB, ("--subresource=status",)),
    ("update", EMB, ("--subresource=finalizers",)),
    ("create", "events", ()),
    ("get", ISVC, ()),
    ("create", ISVC, ()),
    ("patch", ISVC, ()),
    ("list", "pods", ()),
    ("get", "deployments.apps", ()),
    ("get", "secrets", ()),
    ("patch", "secrets", ()),
]
#: What it must never do in the namespaces it serves.
FORBIDDEN_HERE = [
    ("list", "secrets", ()),
    ("watch", "secrets", ()),
    ("create", "secrets", ()),
    ("update", "secrets", ()),
    ("delete", "secrets", ()),
    ("create", "pods", ("--subresource=exec",)),
    ("get", "pods", ()),
    ("delete", "pods", ()),
    ("create", "pods", ()),
    ("patch", "deployments.apps", ()),
    ("list", "deployments.apps", ()),
    ("update", EMB, ()),
    ("delete", EMB, ()),
    ("delete", ISVC, ()),
    ("patch", "events", ()),
    ("create", "rolebindings.rbac.authorization.k8s.io", ()),
]
#: And never anywhere (cluster scope).
FORBIDDEN_CLUSTER = [
    ("delete", "namespaces", ()),
    ("list", "namespaces", ()),
    ("list", "secrets", ()),
    ("list", "customresourcedefinitions.apiextensions.k8s.io", ()),
    ("create", "clusterrolebindings.rbac.authorization.k8s.io", ()),
]


def test_namespaced_service_account_can_only_what_the_operator_does(
    kubectl: Kubectl, namespace, tmp_path
):
    docs = render("namespaced", tmp_path, namespace=namespace)
    apply_rbac(kubectl, docs)
    user = f"system:serviceaccount:{namespace}:{SA}"
    other = "default"
    for verb, resource, extra in NEEDED:
        assert can_i(kubectl, user, verb, resource, "-n", namespace, *extra), (
            verb,
            resource,
            extra,
        )
        # Nothing in any other namespace (its grants are a Role).
        assert not can_i(kubectl, user, verb, resource, "-n", other, *extra), (verb, resource)
    for verb, resource, extra in FORBIDDEN_HERE:
        assert not can_i(kubectl, user, verb, resource, "-n", namespace, *extra), (verb, resource)
    for verb, resource, extra in FORBIDDEN_CLUSTER:
        assert not can_i(kubectl, user, verb, resource, "--all-namespaces", *extra), verb
    assert not can_i(kubectl, user, "list", EMB, "--all-namespaces")
    assert_lease_rights(kubectl, user, namespace)


LEASE = "leases.coordination.k8s.io"


def assert_lease_rights(kubectl: Kubectl, user: str, home: str) -> None:
    """Exactly the one Lease of leader election, in the operator's own namespace."""
    assert can_i(kubectl, user, "create", LEASE, "-n", home)
    for verb in ("get", "update"):
        assert can_i(kubectl, user, verb, f"{LEASE}/embedding-operator", "-n", home), verb
        assert not can_i(kubectl, user, verb, f"{LEASE}/kube-scheduler", "-n", home), verb
        assert not can_i(kubectl, user, verb, f"{LEASE}/embedding-operator", "-n", "default")
    for verb in ("delete", "list", "watch", "patch"):
        assert not can_i(kubectl, user, verb, LEASE, "-n", home), verb
    assert not can_i(kubectl, user, "create", LEASE, "-n", "kube-system")


def test_cluster_wide_service_account_can_only_what_the_operator_does(
    kubectl: Kubectl, namespace, tmp_path
):
    # A name prefix keeps this test's ClusterRoles apart from a real install on the same cluster.
    docs = render("cluster-wide", tmp_path, namespace=namespace, prefix=short_prefix(namespace))
    try:
        apply_rbac(kubectl, docs)
        sa = one(docs, "ServiceAccount")["metadata"]["name"]
        user = f"system:serviceaccount:{namespace}:{sa}"
        for where in (namespace, "default", "kube-system"):
            for verb, resource, extra in NEEDED:
                assert can_i(kubectl, user, verb, resource, "-n", where, *extra), (verb, resource)
            for verb, resource, extra in FORBIDDEN_HERE:
                assert not can_i(kubectl, user, verb, resource, "-n", where, *extra), (
                    verb,
                    resource,
                )
        # Watching every namespace needs list/watch at cluster scope; Secrets stay get-by-name.
        assert can_i(kubectl, user, "list", EMB, "--all-namespaces")
        assert can_i(kubectl, user, "watch", EMB, "--all-namespaces")
        for verb, resource, extra in FORBIDDEN_CLUSTER:
            assert not can_i(kubectl, user, verb, resource, "--all-namespaces", *extra), verb
        assert_lease_rights(kubectl, user, namespace)
    finally:
        delete_cluster_scoped(kubectl, docs)


def test_secret_reader_can_be_bound_per_namespace_instead(kubectl: Kubectl, namespace, tmp_path):
    """docs/install.md, "Secrets in the cluster-wide install": drop the cluster-wide binding and
    bind the secret-reader ClusterRole in one namespace only."""
    user_dir = tmp_path / "tightened"
    user_dir.mkdir()
    (user_dir / "no-cluster-wide-secrets.yaml").write_text(
        "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\n"
        "metadata:\n  name: embedding-operator-secret-reader\n$patch: delete\n"
    )
    binding = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": {"name": "embedding-operator-secret-reader"},
        "roleRef": {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "ClusterRole",
            "name": "embedding-operator-secret-reader",
        },
        "subjects": [{"kind": "ServiceAccount", "name": SA}],
    }
    (user_dir / "secret-reader.yaml").write_text(yaml.safe_dump(binding))
    (user_dir / "kustomization.yaml").write_text(
        yaml.safe_dump(
            {
                "apiVersion": "kustomize.config.k8s.io/v1beta1",
                "kind": "Kustomization",
                "resources": [
                    os.path.relpath(INSTALL / "overlays" / "cluster-wide", user_dir),
                    "secret-reader.yaml",
                ],
                "patches": [{"path": "no-cluster-wide-secrets.yaml"}],
            }
        )
    )
    # The test's own namespace and name prefix on top, as in the other cluster-wide test.
    outer = tmp_path / "outer"
    outer.mkdir()
    (outer / "kustomization.yaml").write_text(
        yaml.safe_dump(
            {
                "apiVersion": "kustomize.config.k8s.io/v1beta1",
                "kind": "Kustomization",
                "namespace": namespace,
                "namePrefix": short_prefix(namespace),
                "resources": [os.path.relpath(user_dir, outer)],
            }
        )
    )
    docs = kustomize(outer)
    assert [d["metadata"]["name"] for d in by_kind(docs, "ClusterRoleBinding")] == [
        f"{short_prefix(namespace)}embedding-operator"
    ]
    try:
        apply_rbac(kubectl, docs)
        sa = one(docs, "ServiceAccount")["metadata"]["name"]
        user = f"system:serviceaccount:{namespace}:{sa}"
        assert can_i(kubectl, user, "get", "secrets", "-n", namespace)
        assert not can_i(kubectl, user, "get", "secrets", "-n", "default")
        assert can_i(kubectl, user, "patch", EMB, "-n", "default")  # the rest stays cluster-wide
    finally:
        delete_cluster_scoped(kubectl, docs)
