"""Pure planning for the KServe backend: the InferenceService we want, and what the live one says.

One EmbeddingModel maps to one `serving.kserve.io/v1beta1` InferenceService of the same name, in
the same namespace, owned through a controller owner reference (so garbage collection deletes it
with us). It runs the serving image as KServe's `kserve-container` with the same environment the
AI Core ServingTemplate sets (`serving.container_env`), so both backends start infinity alike.

Three rules shape `render`:
- Our own labels only. The parent's labels are never copied: Argo CD tracks resources by label,
  and a child carrying the app's tracking label is pruned as an orphan on the next sync.
- `serving.kserve.io/deploymentMode` is written explicitly and never changed once the object
  exists: KServe's webhook refuses a change, and legacy names (RawDeployment, Serverless) on an
  existing object mean the same as Standard and Knative.
- Suspend is KServe's own `serving.kserve.io/stop` annotation, always written ("true"/"false") so
  server-side apply owns it and resuming is level-triggered.

`assess` reads the live object back into an `Outcome` (KServe's `Ready`, the predictor conditions,
`modelStatus`, the `Stopped` condition) together with the `Workload` KServe made for it: the
predictor pods (KServe v0.20.0 reports a crash-looping or unpullable predictor only as
`MinimumReplicasUnavailable`, so the pod's own failure is read from the pod) and, in Standard mode,
the predictor Deployment (KServe keeps `Ready=True` while the old pod still serves after a spec
change, so the rollout is read from the Deployment). When KServe says Ready and the rollout is
done, plan/serving_check.py turns one real embedding request into the final word. Nothing here
does I/O; backends/kserve.py does.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from embedding_operator.api.conditions import Outcome, Reason
from embedding_operator.api.objects import ObjectRef
from embedding_operator.api.spec import DeploymentMode, EmbeddingModelSpec
from embedding_operator.api.status import KServeStatus
from embedding_operator.serving import SERVING_PORT, container_env, image_of

ISVC_GROUP = "serving.kserve.io"
ISVC_VERSION = "v1beta1"
ISVC_KIND = "InferenceService"
ISVC_PLURAL = "inferenceservices"
ISVC_API_VERSION = f"{ISVC_GROUP}/{ISVC_VERSION}"

DEPLOYMENT_MODE_ANNOTATION = "serving.kserve.io/deploymentMode"
STOP_ANNOTATION = "serving.kserve.io/stop"
CONTAINER_NAME = "kserve-container"  # KServe's name for the predictor's main container
GPU_RESOURCE = "nvidia.com/gpu"
# NB: infinity serves /health at the root, ignoring --url-prefix; /v1/health is a 404.
HEALTH_PATH = "/health"
METRICS_PATH = "/metrics"

LABEL_MANAGED_BY = "app.kubernetes.io/managed-by"
LABEL_NAME = "app.kubernetes.io/name"
LABEL_MODEL = "embeddings.ai/model"
MANAGED_BY = "embedding-operator"

# KServe renamed its modes in Aug 2025 (kserve#4608) and still accepts the old names.
LEGACY_MODES = {"RawDeployment": DeploymentMode.STANDARD, "Serverless": DeploymentMode.KNATIVE}

# Condition types KServe sets on an InferenceService (pkg/apis/serving/v1beta1/
# inference_service_status.go); listed in the order a person reads them.
READY = "Ready"
STOPPED = "Stopped"
_SHOWN_CONDITIONS = (
    "PredictorReady",
    "IngressReady",
    "LatestDeploymentReady",
    "RoutesReady",
    "PredictorConfigurationReady",
    "PredictorRouteReady",
)
# Reasons with which KServe reports a predictor that will not come up by itself: the Deployment's
# ProgressDeadlineExceeded / ReplicaFailure (FailedCreate: quota, Pod Security admission) in
# Standard mode, and Knative's revision failures in Knative mode.
_FAILURE_REASONS = frozenset(
    {"ProgressDeadlineExceeded", "FailedCreate", "RevisionFailed", "ContainerMissing"}
)

# Startup: infinity binds its port only once the model is loaded and warmed up, which for a large
# model on a cold node takes minutes. 10 s x 180 = 30 minutes before the kubelet gives up.
STARTUP_PERIOD_SECONDS = 10
STARTUP_FAILURE_THRESHOLD = 180

# spec.kserve.auth: infinity reads its --api-key from this variable (infinity_emb/env.py), so the
# key is never on a command line, and the InferenceService holds only a secretKeyRef to it.
API_KEY_ENV = "INFINITY_API_KEY"
# The Secret's resourceVersion on the pods: env from a Secret is read once at container start,
# so a rotated key must roll the pods. The version says nothing about the key itself.
API_KEY_VERSION_ANNOTATION = "embeddings.ai/api-key-secret-version"

# KServe's labels on the predictor's pods, and the name of its Deployment in Standard mode.
POD_ISVC_LABEL = "serving.kserve.io/inferenceservice"
POD_COMPONENT_LABEL = "component"
PREDICTOR_SUFFIX = "-predictor"

EVENT_CREATED = "InferenceServiceCreated"
EVENT_UPDATED = "InferenceServiceUpdated"

_MAX_DETAIL = 1000  # per quoted KServe message, so a status or Event stays readable


# --- deployment mode ---------------------------------------------------------------------------


def normalize_mode(value: str) -> str:
    """KServe's current name for a deploymentMode value (legacy names mapped, others as is)."""
    return str(LEGACY_MODES.get(value, value))


def live_mode(live: Mapping[str, Any] | None) -> str | None:
    """The mode the live object runs in, exactly as written (maybe a legacy name).

    The annotation when present; else the mode KServe resolved and recorded in
    `status.deploymentMode` (an object whose annotation someone removed still runs in it).
    """
    if not live:
        return None
    value = _annotations(live).get(DEPLOYMENT_MODE_ANNOTATION)
    if isinstance(value, str) and value:
        return value
    status = live.get("status")
    recorded = status.get("deploymentMode") if isinstance(status, Mapping) else None
    return recorded if isinstance(recorded, str) and recorded else None


def deployment_mode(spec: EmbeddingModelSpec, live: Mapping[str, Any] | None) -> str:
    """The annotation value to apply: the live one when present (even a legacy name), else ours.

    NB: re-applying the live value verbatim means server-side apply never changes the field, so
    KServe's webhook never sees a mode change, not even RawDeployment -> Standard.
    """
    return live_mode(live) or str(spec.kserve_or_default.deployment_mode)


def mode_change_refused(spec: EmbeddingModelSpec, live: Mapping[str, Any] | None) -> str | None:
    """A message when the spec asks for another mode than the live object runs in, else None."""
    current = live_mode(live)
    wanted = str(spec.kserve_or_default.deployment_mode)
    if current is None or normalize_mode(current) == wanted:
        return None
    name = _name(live)
    return (
        f"spec.kserve.deploymentMode is {wanted} but InferenceService {name} runs in "
        f"{normalize_mode(current)} mode, and KServe cannot change the mode of an existing "
        f"InferenceService: set spec.kserve.deploymentMode back to {normalize_mode(current)}, "
        "or delete and re-create the EmbeddingModel"
    )


# --- spec checks the CRD schema cannot express -------------------------------------------------


def spec_problem(spec: EmbeddingModelSpec) -> str | None:
    """Why this spec cannot be rendered for KServe, naming the field and the fix; else None."""
    without_extra = spec.serving.model_copy(update={"env": []})
    own = {e["name"] for e in container_env(spec.model_copy(update={"serving": without_extra}))}
    seen: set[str] = set()
    for i, arg in enumerate(spec.serving.args):
        if arg.partition("=")[0] == "--api-key":
            return (
                f"spec.serving.args[{i}] sets --api-key, which would put the key in plain text "
                "into the InferenceService: remove it and set spec.kserve.auth.apiKeySecretRef"
            )
    for i, var in enumerate(spec.serving.env):
        if var.name == API_KEY_ENV:
            return (
                f"spec.serving.env[{i}].name {API_KEY_ENV} would put the API key in plain text "
                "into the InferenceService: remove it and set spec.kserve.auth.apiKeySecretRef"
            )
        if var.name in own:
            return (
                f"spec.serving.env[{i}].name {var.name} is set by the operator from the spec: "
                "remove it and use the matching spec field (see docs/kserve.md)"
            )
        if var.name in seen:
            return f"spec.serving.env[{i}].name {var.name} appears twice: keep one entry"
        seen.add(var.name)
    return None


# --- render ------------------------------------------------------------------------------------


def labels_for(ref: ObjectRef) -> dict[str, str]:
    """Our labels on the child: never the parent's (Argo CD would prune the child)."""
    return {LABEL_MANAGED_BY: MANAGED_BY, LABEL_NAME: ref.name, LABEL_MODEL: ref.name}


def render(
    ref: ObjectRef,
    spec: EmbeddingModelSpec,
    live: Mapping[str, Any] | None = None,
    *,
    api_key_version: str | None = None,
) -> dict[str, Any]:
    """The InferenceService to server-side apply: only the fields this operator owns.

    `api_key_version` is the resourceVersion of the spec.kserve.auth Secret (when set)."""
    kserve = spec.kserve_or_default
    predictor: dict[str, Any] = {
        "minReplicas": spec.replicas.min,
        "maxReplicas": spec.replicas.max,
    }
    if kserve.service_account_name:
        predictor["serviceAccountName"] = kserve.service_account_name
    # infinity never calls the Kubernetes API; storage credentials reach KServe's initializer
    # through the ServiceAccount's Secrets, not through a mounted token.
    predictor["automountServiceAccountToken"] = False
    if kserve.node_selector:
        predictor["nodeSelector"] = dict(sorted(kserve.node_selector.items()))
    if kserve.tolerations:
        predictor["tolerations"] = [
            t.model_dump(by_alias=True, exclude_none=True) for t in kserve.tolerations
        ]
    predictor["annotations"] = {
        "prometheus.io/scrape": "true",
        "prometheus.io/port": str(SERVING_PORT),
        "prometheus.io/path": METRICS_PATH,
    }
    if kserve.auth is not None and api_key_version is not None:
        predictor["annotations"][API_KEY_VERSION_ANNOTATION] = api_key_version
    predictor["containers"] = [_container(spec)]
    predictor["volumes"] = [
        # NB: torch's DataLoader and tokenizers use shared memory; the container default of
        # 64 MiB is too small for batched inference.
        {"name": "dshm", "emptyDir": {"medium": "Memory"}},
        # Writable scratch for a read-only root filesystem: run.sh keeps INFINITY_HOME and
        # HF_HOME under /tmp by default.
        {"name": "tmp", "emptyDir": {}},
    ]
    return {
        "apiVersion": ISVC_API_VERSION,
        "kind": ISVC_KIND,
        "metadata": {
            "name": ref.name,
            "namespace": ref.namespace,
            "labels": labels_for(ref),
            "annotations": {
                DEPLOYMENT_MODE_ANNOTATION: deployment_mode(spec, live),
                STOP_ANNOTATION: "true" if spec.suspend else "false",
            },
            "ownerReferences": [ref.owner_reference()],
        },
        "spec": {"predictor": predictor},
    }


def _probe(period: int, timeout: int, failures: int) -> dict[str, Any]:
    return {
        "httpGet": {"path": HEALTH_PATH, "port": SERVING_PORT, "scheme": "HTTP"},
        "periodSeconds": period,
        "timeoutSeconds": timeout,
        "failureThreshold": failures,
    }


def _container(spec: EmbeddingModelSpec) -> dict[str, Any]:
    container: dict[str, Any] = {
        "name": CONTAINER_NAME,
        "image": image_of(spec),
        # "http1" is the port name Knative routes HTTP/1.1 traffic to; Standard mode ignores it.
        "ports": [{"name": "http1", "containerPort": SERVING_PORT, "protocol": "TCP"}],
        "env": container_env(spec) + _api_key_env(spec),
        # run.sh says why it cannot start on stderr: the kubelet keeps the log's tail as the
        # termination message, which assess() quotes in Stalled (no pods/log access needed).
        "terminationMessagePolicy": "FallbackToLogsOnError",
    }
    resources = _resources(spec)
    if resources:
        container["resources"] = resources
    container["securityContext"] = {
        "runAsNonRoot": True,
        # NB: a numeric uid lets the kubelet verify runAsNonRoot whatever USER the image names.
        "runAsUser": 65534,
        "runAsGroup": 65534,
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    container["startupProbe"] = _probe(STARTUP_PERIOD_SECONDS, 5, STARTUP_FAILURE_THRESHOLD)
    container["readinessProbe"] = _probe(10, 5, 3)
    container["livenessProbe"] = _probe(30, 10, 3)
    container["volumeMounts"] = [
        {"name": "dshm", "mountPath": "/dev/shm"},
        {"name": "tmp", "mountPath": "/tmp"},
    ]
    return container


def _api_key_env(spec: EmbeddingModelSpec) -> list[dict[str, Any]]:
    auth = spec.kserve_or_default.auth
    if auth is None:
        return []
    ref = auth.api_key_secret_ref
    return [
        {"name": API_KEY_ENV, "valueFrom": {"secretKeyRef": {"name": ref.name, "key": ref.key}}}
    ]


def _resources(spec: EmbeddingModelSpec) -> dict[str, Any]:
    kserve = spec.kserve_or_default
    requests = {k: str(v) for k, v in sorted(kserve.resources.requests.items())}
    limits = {k: str(v) for k, v in sorted(kserve.resources.limits.items())}
    if kserve.gpus:
        # Extended resources must be equal in requests and limits; spec.kserve.gpus decides both.
        requests[GPU_RESOURCE] = limits[GPU_RESOURCE] = str(kserve.gpus)
    result: dict[str, Any] = {}
    if requests:
        result["requests"] = requests
    if limits:
        result["limits"] = limits
    return result


# --- ownership ---------------------------------------------------------------------------------


def foreign_owner(ref: ObjectRef, live: Mapping[str, Any]) -> Outcome | None:
    """An outcome when an InferenceService of our name is controlled by something else.

    Applying over it would take it over (or fail on a second controller reference), so the
    operator stops and says who owns it. One left by a deleted EmbeddingModel of the same name
    is on its way out (garbage collection), so that case waits instead.
    """
    meta = live.get("metadata") or {}
    owners = [o for o in meta.get("ownerReferences") or [] if isinstance(o, Mapping)]
    controller = next((o for o in owners if o.get("controller")), None)
    if controller is not None and controller.get("uid") == ref.uid:
        return None
    name = _name(live)
    if controller is None:
        who = "was not created by this EmbeddingModel (it has no controller owner)"
    else:
        kind, owner, uid = (controller.get(k) for k in ("kind", "name", "uid"))
        who = f"is controlled by {kind} {owner} (uid {uid})"
    if meta.get("deletionTimestamp") or (
        controller is not None
        and controller.get("kind") == ref_kind(ref)
        and controller.get("name") == ref.name
    ):
        return Outcome.progressing(
            Reason.INFERENCE_SERVICE_NOT_READY,
            f"InferenceService {name} {who} and is being deleted: waiting for it to go",
        )
    return Outcome.stalled(
        Reason.INFERENCE_SERVICE_CONFLICT,
        f"InferenceService {name} already exists and {who}: delete it, or give the "
        "EmbeddingModel another name",
    )


def ref_kind(ref: ObjectRef) -> str:
    return str(ref.owner_reference()["kind"])


# --- assess ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Workload:
    """What KServe made for the InferenceService, as the backend read it (nothing when absent).

    `deployment` is `<name>-predictor` (Standard mode; None in Knative mode or before KServe made
    it); `pods` are the pods labelled `serving.kserve.io/inferenceservice=<name>, component=
    predictor`."""

    deployment: Mapping[str, Any] | None = None
    pods: Sequence[Mapping[str, Any]] = ()


def predictor_deployment_name(name: str) -> str:
    return name + PREDICTOR_SUFFIX


def predictor_pod_selector(name: str) -> dict[str, str]:
    return {POD_ISVC_LABEL: name, POD_COMPONENT_LABEL: "predictor"}


# The kubelet's waiting reasons for a container that will not start by itself, and the hint.
_POD_FAILURES: dict[str, tuple[Reason, str]] = {
    "CrashLoopBackOff": (
        Reason.CRASH_LOOP_BACK_OFF,
        "check spec.model.uri and spec.serving, and the pod's logs (kubectl logs --previous)",
    ),
    **{
        waiting: (
            Reason.IMAGE_PULL_BACK_OFF,
            "check spec.serving.image and that the node can pull it (imagePullSecrets)",
        )
        for waiting in ("ImagePullBackOff", "ErrImagePull", "ErrImageNeverPull", "InvalidImageName")
    },
    **{
        waiting: (
            Reason.CREATE_CONTAINER_ERROR,
            "check the Secrets and ConfigMaps the spec refers to (kubectl describe pod)",
        )
        for waiting in ("CreateContainerConfigError", "CreateContainerError", "RunContainerError")
    },
}


def pod_failure(name: str, pods: Sequence[Mapping[str, Any]]) -> Outcome | None:
    """Stalled with the kubelet's reason when a predictor pod's container cannot start, quoting
    its last termination (exit code and message: the log's tail, FallbackToLogsOnError)."""
    for pod in sorted(pods, key=_name):
        meta = _mapping(pod.get("metadata"))
        if meta.get("deletionTimestamp"):
            continue  # an old pod on its way out says nothing about the spec we applied
        status = _mapping(pod.get("status"))
        containers = [
            *_list(status.get("initContainerStatuses")),
            *_list(status.get("containerStatuses")),
        ]
        for container in containers:
            waiting = _mapping(_mapping(container.get("state")).get("waiting"))
            kind = _str(waiting.get("reason"))
            if kind is None or kind not in _POD_FAILURES:
                continue
            reason, hint = _POD_FAILURES[kind]
            text = (
                f"predictor pod {_name(pod)} of InferenceService {name}: container "
                f"{container.get('name', '?')} is in {kind}"
            )
            restarts = container.get("restartCount")
            if isinstance(restarts, int) and restarts:
                text += f" (restarted {restarts} times)"
            detail = _str(waiting.get("message"))
            if detail and kind != "CrashLoopBackOff":  # its message is only the back-off delay
                text += f": {_cut(detail)}"
            last = _mapping(_mapping(container.get("lastState")).get("terminated"))
            if last:
                text += f"; last exit code {last.get('exitCode', '?')}"
                if _str(last.get("reason")):
                    text += f" ({last['reason']})"
                message = _str(last.get("message"))
                if message and message.strip():
                    text += f": {_cut(message.strip())}"
            return Outcome.stalled(reason, f"{text}; {hint}")
    return None


def rollout_pending(deployment: Mapping[str, Any] | None) -> str | None:
    """What the predictor Deployment's rollout still waits for, as `kubectl rollout status`
    decides it (observedGeneration, updated, old and available replicas); None when done."""
    if not deployment:
        return None
    meta, status = _mapping(deployment.get("metadata")), _mapping(deployment.get("status"))
    name = meta.get("name", "?")
    generation, observed = meta.get("generation"), status.get("observedGeneration")
    if isinstance(generation, int) and (not isinstance(observed, int) or observed < generation):
        return f"Deployment {name} has not picked up generation {generation} yet"
    desired = _mapping(deployment.get("spec")).get("replicas", 1)
    desired = desired if isinstance(desired, int) else 1
    updated = _int(status.get("updatedReplicas"))
    total = _int(status.get("replicas"))
    available = _int(status.get("availableReplicas"))
    if updated < desired:
        return f"Deployment {name}: {updated} of {desired} new replicas updated"
    if total > updated:
        return f"Deployment {name}: {total - updated} old replicas pending termination"
    if available < updated:
        return f"Deployment {name}: {available} of {updated} updated replicas available"
    return None


@dataclass(frozen=True)
class Assessment:
    """What the live InferenceService means for us.

    `check_url` is the base URL (with the url prefix) the serving check posts to, set only when
    KServe reports Ready: the cluster-local `status.address.url` when KServe gives one (reachable
    from an in-cluster operator even when the public URL is not), else `status.url`.
    """

    outcome: Outcome
    kserve: KServeStatus
    endpoint: str | None
    check_url: str | None = None
    details: list[str] = field(default_factory=list)


def assess(
    spec: EmbeddingModelSpec, live: Mapping[str, Any], workload: Workload | None = None
) -> Assessment:
    """Read KServe's status of the live InferenceService (and what it made: `workload`) into an
    outcome, endpoint and status."""
    workload = workload or Workload()
    name = _name(live)
    status = _mapping(live.get("status"))
    conditions = _conditions(status)
    url = _str(status.get("url"))
    address_url = _str(_mapping(status.get("address")).get("url"))
    prefix = spec.serving.url_prefix
    endpoint = url.rstrip("/") + prefix if url else None
    kserve = KServeStatus(inference_service_name=name, url=url)
    stopped = _is_true(conditions.get(STOPPED))

    def result(outcome: Outcome, *, endpoint: str | None = endpoint) -> Assessment:
        return Assessment(outcome, kserve, endpoint, details=_summary(conditions))

    if spec.suspend:
        if stopped:
            return result(
                Outcome.suspended(
                    Reason.SUSPENDED,
                    f'InferenceService {name} is stopped ({STOP_ANNOTATION}: "true"); '
                    "set spec.suspend to false to serve again",
                ),
                endpoint=None,
            )
        return result(
            Outcome.progressing(
                Reason.SUSPENDING,
                f"waiting for KServe to stop InferenceService {name} (Stopped is not True yet)",
            ),
            endpoint=None,
        )
    if stopped:
        return result(
            Outcome.progressing(
                Reason.INFERENCE_SERVICE_NOT_READY,
                f"resuming: KServe still reports InferenceService {name} as Stopped",
            )
        )

    model = _mapping(status.get("modelStatus"))
    transition = model.get("transitionStatus")
    states = _mapping(model.get("states"))
    failure = _failure_text(model.get("lastFailureInfo"))
    if transition == "InvalidSpec":
        return result(
            Outcome.stalled(
                Reason.INFERENCE_SERVICE_REJECTED,
                f"KServe rejected the predictor of InferenceService {name}"
                + (f": {failure}" if failure else "")
                + "; fix spec.serving or spec.kserve",
            )
        )
    if transition == "BlockedByFailedLoad" or "FailedToLoad" in (
        states.get("activeModelState"),
        states.get("targetModelState"),
    ):
        return result(
            Outcome.stalled(
                Reason.INFERENCE_SERVICE_FAILED,
                f"the model of InferenceService {name} failed to load"
                + (f": {failure}" if failure else "")
                + "; check spec.model.uri and the predictor pod's logs",
            )
        )
    # The component conditions first: Ready only echoes the first failing one, often shortened.
    for type_ in (*_SHOWN_CONDITIONS, READY):
        cond = conditions.get(type_)
        if cond and cond.get("status") == "False" and cond.get("reason") in _FAILURE_REASONS:
            return result(
                Outcome.stalled(
                    Reason.INFERENCE_SERVICE_FAILED,
                    f"InferenceService {name} failed: {type_}={_condition_text(cond)}",
                )
            )
    # KServe says only MinimumReplicasUnavailable (or, mid-rollout, still Ready): the pod knows.
    failed_pod = pod_failure(name, workload.pods)
    if failed_pod is not None:
        return result(failed_pod)
    pending = rollout_pending(workload.deployment)
    if _is_true(conditions.get(READY)) and pending is not None:
        return result(
            Outcome.progressing(
                Reason.ROLLING_OUT,
                f"InferenceService {name} is Ready on its previous revision; rolling out the "
                f"new one: {pending}",
            )
        )
    if _is_true(conditions.get(READY)):
        check = (address_url or url or "").rstrip("/")
        return Assessment(
            Outcome.ready(Reason.SERVING_CHECK_SKIPPED, f"InferenceService {name} is Ready"),
            kserve,
            endpoint,
            check_url=check + prefix if check else None,
            details=_summary(conditions),
        )
    if not conditions:
        return result(
            Outcome.progressing(
                Reason.INFERENCE_SERVICE_NOT_READY,
                f"InferenceService {name} has no status yet: waiting for the KServe controller "
                "(if this lasts, check that KServe's controller is running)",
            )
        )
    waiting = "; ".join(_summary(conditions)) or f"Ready={_condition_text(conditions[READY])}"
    return result(
        Outcome.progressing(
            Reason.INFERENCE_SERVICE_NOT_READY,
            f"InferenceService {name} is not ready: {waiting}",
        )
    )


def _conditions(status: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    raw = status.get("conditions")
    if not isinstance(raw, Sequence):
        return {}
    return {c["type"]: c for c in raw if isinstance(c, Mapping) and isinstance(c.get("type"), str)}


def _is_true(cond: Mapping[str, Any] | None) -> bool:
    return bool(cond) and cond.get("status") == "True"  # type: ignore[union-attr]


def _condition_text(cond: Mapping[str, Any]) -> str:
    text = str(cond.get("status") or "Unknown")
    reason, message = _str(cond.get("reason")), _str(cond.get("message"))
    if reason and message:
        return f"{text} ({reason}: {_cut(message)})"
    if reason or message:
        return f"{text} ({reason or _cut(message or '')})"
    return text


def _summary(conditions: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """'PredictorReady=False (reason: message)' for each KServe condition that is not True."""
    return [
        f"{t}={_condition_text(conditions[t])}"
        for t in _SHOWN_CONDITIONS
        if t in conditions and conditions[t].get("status") != "True"
    ]


def _failure_text(info: Any) -> str:
    if not isinstance(info, Mapping):
        return ""
    parts = [p for p in (_str(info.get("reason")), _str(info.get("message"))) if p]
    text = ": ".join(parts)
    if info.get("exitCode"):
        text += f" (exit code {info['exitCode']})"
    if info.get("location"):
        text += f" in {info['location']}"
    return _cut(text)


# --- helpers -----------------------------------------------------------------------------------


def _annotations(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    meta = obj.get("metadata") or {}
    annotations = meta.get("annotations") if isinstance(meta, Mapping) else None
    return annotations if isinstance(annotations, Mapping) else {}


def _name(obj: Mapping[str, Any] | None) -> str:
    meta = (obj or {}).get("metadata") or {}
    return str(meta.get("name", "?")) if isinstance(meta, Mapping) else "?"


def _mapping(value: Any) -> Mapping[str, Any]:
    """`value` if it is an object, else empty: KServe's status may lack any part."""
    return value if isinstance(value, Mapping) else {}


def _list(value: Any) -> list[Mapping[str, Any]]:
    return [v for v in value if isinstance(v, Mapping)] if isinstance(value, Sequence) else []


def _int(value: Any) -> int:
    return value if isinstance(value, int) else 0


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _cut(text: str) -> str:
    return text if len(text) <= _MAX_DETAIL else text[: _MAX_DETAIL - 1] + "…"
