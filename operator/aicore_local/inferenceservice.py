"""A ServingTemplate rendered into the InferenceService AI Core hands to KServe (pure, no I/O).

AI Core substitutes `{{inputs.parameters.x}}` / `{{inputs.artifacts.x}}` in the template's string
blocks (`metadata.annotations`, `metadata.labels`, `spec`), parses each as YAML and wraps the
result in an InferenceService named after the deployment. Labels and annotations are string maps
in Kubernetes, so their values are written as strings (`autoscaling.knative.dev/target: 8` is the
string "8"). The artifact URL is what `{{inputs.artifacts.x}}` becomes, wherever the template puts
it: `STORAGE_URI` of a custom container or `predictor.model.storageUri`.

Anything AI Core would refuse (a missing predictor, a block that is not a mapping, no resource
plan label, an image pull secret that is not a registered docker registry secret) raises
`RenderError`, whose message the emulator puts in the DEAD deployment's statusMessage.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import unquote, urlparse

from .templates import ServingTemplate, TemplateError, UnresolvedPlaceholder, render

API_VERSION = "serving.kserve.io/v1beta1"
KIND = "InferenceService"
RESOURCE_PLAN_LABEL = "ai.sap.com/resourcePlan"
INSTANCE_TYPE_LABEL = "ai.sap.com/instanceType"
# The emulator's own labels: which deployment, resource group and generation an object belongs to.
DEPLOYMENT_LABEL = "aicore-local/deployment"
RESOURCE_GROUP_LABEL = "aicore-local/resource-group"
GENERATION_LABEL = "aicore-local/generation"


class RenderError(Exception):
    """The template cannot become an InferenceService; the message names what is wrong."""


def kserve_storage_uri(url: str, objectstore_root: Path, pvc: str) -> str:
    """The artifact URL as KServe can load it offline: a `file://` URL below the emulator's object
    store directory becomes `pvc://<pvc>/<path below it>` (the PVC is that directory, mounted as a
    hostPath volume); `pvc://` URLs pass unchanged; anything else is a RenderError."""
    parsed = urlparse(url)
    if parsed.scheme == "pvc":
        return url
    if parsed.scheme == "file":
        path = PurePosixPath(unquote(parsed.path))
        root = PurePosixPath(str(objectstore_root))
        if ".." not in path.parts and path.is_relative_to(root) and path != root:
            return f"pvc://{pvc}/{path.relative_to(root)}"
        raise RenderError(
            f"artifact {url} is outside the object store directory {objectstore_root}, the only "
            "directory the kserve runtime mounts (object store secrets with a file:// endpoint "
            "elsewhere work with the process and podman runtimes only)"
        )
    if parsed.scheme == "ai":
        raise RenderError(
            f"artifact {url}: object store secret '{parsed.netloc}' does not exist in the "
            "deployment's resource group"
        )
    raise RenderError(
        f"artifact {url}: scheme '{parsed.scheme}' cannot be loaded offline by KServe on the "
        "local node (use an ai://<objectStoreSecret>/<path> or pvc:// artifact)"
    )


def _string_map(value: dict[str, Any], what: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for k, v in value.items():
        if isinstance(v, dict | list):
            raise RenderError(
                f"{what}: the value of {k!r} must be a string, not a {type(v).__name__}"
            )
        # NB: YAML's true/false would come back as Python's True/False; write them as YAML does.
        out[str(k)] = (
            ("true" if v else "false") if isinstance(v, bool) else "" if v is None else str(v)
        )
    return out


def inference_service(
    template: ServingTemplate,
    parameter_bindings: dict[str, str],
    artifact_urls: dict[str, str],
    *,
    name: str,
    namespace: str,
    labels: dict[str, str],
    docker_registry_secrets: set[str],
) -> dict[str, Any]:
    """The InferenceService for one deployment generation (raises RenderError)."""
    try:
        rendered = render(template, parameter_bindings, artifact_urls)
    except UnresolvedPlaceholder as exc:
        raise RenderError(exc.api_message) from exc
    except TemplateError as exc:
        raise RenderError(f"{template.source}: {exc}") from exc
    spec = rendered.spec
    predictor = spec.get("predictor")
    if not isinstance(predictor, dict):
        raise RenderError(
            f"{template.source}: template.spec has no predictor mapping; AI Core serves "
            "spec.predictor (containers or model)"
        )
    if not predictor.get("containers") and not predictor.get("model"):
        raise RenderError(
            f"{template.source}: template.spec.predictor has neither containers nor model"
        )
    isvc_labels = _string_map(rendered.labels, "template.metadata.labels")
    plans = [k for k in (RESOURCE_PLAN_LABEL, INSTANCE_TYPE_LABEL) if isvc_labels.get(k)]
    if len(plans) != 1:
        raise RenderError(
            f"{template.source}: template.metadata.labels must set exactly one of "
            f"{RESOURCE_PLAN_LABEL} and {INSTANCE_TYPE_LABEL}, found {plans or 'none'}"
        )
    pull = predictor.get("imagePullSecrets") or []
    if not isinstance(pull, list) or not all(isinstance(s, dict) and s.get("name") for s in pull):
        raise RenderError(
            f"{template.source}: spec.predictor.imagePullSecrets must be a list of {{name: …}}"
        )
    unknown = sorted({str(s["name"]) for s in pull} - docker_registry_secrets)
    if unknown:
        raise RenderError(
            f"imagePullSecrets {unknown}: no docker registry secret of that name is registered "
            "(POST /v2/admin/dockerRegistrySecrets)"
        )
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {**isvc_labels, **labels},
            "annotations": _string_map(rendered.annotations, "template.metadata.annotations"),
        },
        "spec": spec,
    }


# -- KServe status -> AI Core status ------------------------------------------------------------
# A container waiting for one of these reasons will not start by itself: the deployment is DEAD.
FATAL_WAITING = {
    "CrashLoopBackOff",
    "ErrImagePull",
    "ImagePullBackOff",
    "ErrImageNeverPull",
    "InvalidImageName",
    "CreateContainerConfigError",
    "CreateContainerError",
    "RunContainerError",
}


@dataclass(frozen=True)
class Observation:
    """What one look at the InferenceService and its pods says about a deployment generation."""

    status: str  # PENDING | RUNNING | DEAD
    message: str = ""
    pod_ip: str | None = None
    pod_name: str | None = None


def _condition(obj: dict[str, Any], type_: str) -> dict[str, Any]:
    for c in (obj.get("status") or {}).get("conditions") or []:
        if isinstance(c, dict) and c.get("type") == type_:
            return c
    return {}


def _ready(pod: dict[str, Any]) -> bool:
    return _condition(pod, "Ready").get("status") == "True"


def _container_failure(pod: dict[str, Any]) -> str | None:
    """`<container>: <reason>: <message>` of the first container that cannot start, else None."""
    status = pod.get("status") or {}
    if status.get("phase") == "Failed":
        why = status.get("message") or status.get("reason") or "no reason given"
        return f"pod {pod['metadata'].get('name')} failed: {why}"
    for cs in [
        *(status.get("initContainerStatuses") or []),
        *(status.get("containerStatuses") or []),
    ]:
        waiting = (cs.get("state") or {}).get("waiting") or {}
        if waiting.get("reason") not in FATAL_WAITING:
            continue
        last = (cs.get("lastState") or {}).get("terminated") or {}
        detail = waiting.get("message") or ""
        if last:
            detail = f"exited with code {last.get('exitCode')}" + (
                f": {last['message'].strip()}"
                if last.get("message")
                else f" ({last.get('reason')})"
            )
        return f"container {cs.get('name')}: {waiting['reason']}" + (
            f": {detail}" if detail else ""
        )
    return None


def assess(isvc: dict[str, Any] | None, pods: list[dict[str, Any]], generation: int) -> Observation:
    """The AI Core status of `generation` of a deployment, from what KServe and the kubelet report.

    RUNNING needs the InferenceService Ready and a ready predictor pod of this generation (its IP
    is what the gateway forwards to: there is no Service routing here).
    DEAD: a failed KServe model status, or a pod of this generation whose container cannot start
    (crash loop, image, config). KServe v0.20.0 does not report the crash loop itself
    (docs/kserve.md), so the pods are read.
    """
    if isvc is None:
        return Observation("PENDING", "the InferenceService is not there (yet)")
    mine = [
        p
        for p in pods
        if (p.get("metadata") or {}).get("labels", {}).get(GENERATION_LABEL) == str(generation)
        and not p["metadata"].get("deletionTimestamp")
    ]
    for pod in mine:
        failure = _container_failure(pod)
        if failure is not None:
            return Observation("DEAD", failure, pod_name=pod["metadata"].get("name"))
    failure_info = ((isvc.get("status") or {}).get("modelStatus") or {}).get("lastFailureInfo")
    if isinstance(failure_info, dict) and failure_info:
        reason = failure_info.get("reason", "ModelLoadFailed")
        return Observation(
            "DEAD", f"KServe: {reason}: {failure_info.get('message', '')}".rstrip(": ")
        )
    ready = _condition(isvc, "Ready")
    # NB: not status.observedGeneration: in Standard mode KServe copies the Deployment's there
    # (docs/kserve.md); a ready pod carrying this generation's label is the evidence.
    serving = [p for p in mine if _ready(p) and (p.get("status") or {}).get("podIP")]
    if ready.get("status") == "True" and serving:
        pod = serving[0]
        return Observation(
            "RUNNING", pod_ip=pod["status"]["podIP"], pod_name=pod["metadata"]["name"]
        )
    waiting_for = ready.get("message") or "the InferenceService is not Ready yet"
    unschedulable = next(
        (
            _condition(p, "PodScheduled").get("message")
            for p in mine
            if _condition(p, "PodScheduled").get("reason") == "Unschedulable"
        ),
        None,
    )
    return Observation("PENDING", unschedulable or waiting_for)
