"""The `EmbeddingModel` spec: the one definition the CRD schema is generated from.

Field descriptions here become `kubectl explain` text, and the CEL rules attached with `cel()`
become `x-kubernetes-validations` in the CRD, so every rule the API server enforces is written next
to the field it guards. Messages name the field and the fix, because that is all a user sees at
`kubectl apply` time.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, JsonValue
from pydantic.alias_generators import to_camel

GROUP = "embeddings.ai"
VERSION = "v1alpha1"
KIND = "EmbeddingModel"
PLURAL = "embeddingmodels"
SINGULAR = "embeddingmodel"
SHORT_NAMES = ["emb"]
CATEGORIES = ["ai", "embeddings"]
# Blocks deletion until remote objects are cleaned up (kopf is configured with it).
FINALIZER = f"{GROUP}/finalizer"

# NB: object names become InferenceService and AI Core configuration names plus suffixes
# (KServe adds "-predictor-…"); 40 keeps every derived name within the 63-character DNS label.
MAX_NAME_LENGTH = 40

# Model URI schemes each backend can load from. AI Core only reads its own object store (ai://).
AICORE_URI_SCHEMES = ("ai://",)
KSERVE_URI_SCHEMES = ("hf://", "s3://", "gs://", "pvc://")


def cel(rule: str, message: str, **extra: str) -> dict[str, Any]:
    """One `x-kubernetes-validations` entry."""
    return {"rule": rule, "message": message, **extra}


def immutable(path: str, fix: str) -> dict[str, Any]:
    """`json_schema_extra` for a field the API server keeps unchanged after creation."""
    return {"x-kubernetes-validations": [cel("self == oldSelf", f"{path} is immutable: {fix}")]}


def object_default(model: type[BaseModel]) -> dict[str, Any]:
    """The CRD default of an optional section: its field defaults, without empty collections.

    NB: the API server checks a section's default against its CEL rules before it applies the
    nested field defaults, so `default: {}` would fail `self.min <= self.max`.
    """
    dumped = model().model_dump(by_alias=True, exclude_none=True, mode="json")
    return {k: v for k, v in dumped.items() if v not in ([], {})}


class _Model(BaseModel):
    """camelCase on the wire, snake_case in Python, unknown fields rejected."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        use_enum_values=True,
    )


class Backend(StrEnum):
    AICORE = "aicore"
    KSERVE = "kserve"


class Pooling(StrEnum):
    AUTO = "auto"
    MEAN = "mean"
    CLS = "cls"


class Engine(StrEnum):
    TORCH = "torch"
    OPTIMUM = "optimum"
    CTRANSLATE2 = "ctranslate2"


class DType(StrEnum):
    AUTO = "auto"
    FLOAT32 = "float32"
    FLOAT16 = "float16"
    BFLOAT16 = "bfloat16"
    INT8 = "int8"
    FP8 = "fp8"


class DeletionPolicy(StrEnum):
    DELETE = "Delete"
    ORPHAN = "Orphan"


class DeploymentMode(StrEnum):
    STANDARD = "Standard"
    KNATIVE = "Knative"


class ModelSource(_Model):
    """Which model to serve and under what name."""

    name: str = Field(
        min_length=1,
        max_length=128,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._/:-]*$",
        description=(
            "Served model name: the `model` field clients send to /v1/embeddings, and the AI Core "
            "`modelName` binding SAP's gen_ai_hub resolves deployments by. "
            "Example: nomic-embed-text-v1.5."
        ),
    )
    uri: str = Field(
        min_length=6,
        max_length=1024,  # AI Core's artifact url limit
        pattern=r"^(ai|hf|s3|gs|pvc)://[^\s]+[^/\s]$",
        description=(
            "Where the weights come from. aicore: ai://<objectStoreSecret>/<path> (an AI Core "
            "artifact URL). kserve: hf://<org>/<model>, s3://<bucket>/<path>, "
            "gs://<bucket>/<path> or pvc://<claim>/<path>. No trailing slash, no '.' or '..' "
            "segment, no segment over 255 characters."
        ),
        json_schema_extra={
            "x-kubernetes-validations": [
                # NB: `..` would resolve outside the object store secret's root (or the bucket
                # prefix a reader is limited to); storage initializers refuse or misread it.
                cel(
                    "!self.matches('(://|/)[.][.]?(/|$)')",
                    "spec.model.uri must not contain a '.' or '..' path segment: name the "
                    "model's directory itself",
                ),
                # NB: a longer segment is not a file name on any file system (ENAMETOOLONG).
                cel(
                    "!self.matches('[^/]{256}')",
                    "spec.model.uri has a path segment over 255 characters: shorten it",
                ),
            ]
        },
    )
    revision: str | None = Field(
        default=None,
        max_length=128,
        pattern=r"^[A-Za-z0-9._/-]+$",
        description="Model revision (branch, tag or commit) to pin, for hub sources.",
    )
    trust_remote_code: bool = Field(
        default=False,
        description="Allow the model repository to run its own Python code. Off unless trusted.",
    )
    pooling: Pooling = Field(
        default=Pooling.AUTO,
        description="Pooling method: auto (from the model's config), mean or cls.",
    )
    dimensions: int | None = Field(
        default=None,
        ge=1,
        le=65536,
        description=(
            "Expected embedding size. When set, the operator's serving check fails the object "
            "(Stalled, reason DimensionMismatch) if the served vectors have another size."
        ),
    )


class EnvVar(_Model):
    """A plain environment variable for the serving container."""

    name: str = Field(
        min_length=1,
        max_length=256,
        pattern=r"^[A-Za-z_][A-Za-z0-9_]*$",
        description="Variable name (letters, digits, underscore; not starting with a digit).",
    )
    value: str | None = Field(default=None, max_length=5000, description="Variable value.")


class Serving(_Model):
    """How the infinity server runs."""

    image: str | None = Field(
        default=None,
        max_length=512,
        # NB: the characters of an OCI reference (registry[:port]/path[:tag][@digest]) only; the
        # value is substituted raw into a double-quoted template string (see serving.py).
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._/:@+-]*$",
        description=(
            "Serving image, e.g. registry.example/infinity:0.0.77 or …@sha256:<digest>; the "
            "operator's pinned infinity image when unset."
        ),
    )
    engine: Engine = Field(default=Engine.TORCH, description="infinity engine.")
    dtype: DType = Field(default=DType.AUTO, description="Weights dtype; auto picks per device.")
    batch_size: int = Field(
        default=32,
        ge=1,
        le=4096,
        description="Largest dynamic batch infinity runs in one forward pass (1..4096).",
    )
    url_prefix: str = Field(
        default="/v1",
        max_length=64,
        pattern=r"^(/[A-Za-z0-9._~-]+)+$",
        description=(
            "Path prefix of the OpenAI-style routes. Must start with '/' and not end with '/', "
            "no '.' or '..' segment; AI Core routes only paths under /v1 or /v2."
        ),
        json_schema_extra={
            "x-kubernetes-validations": [
                # NB: HTTP clients normalise dot segments away, so the probe would never reach it.
                cel(
                    "!self.matches('/[.][.]?(/|$)')",
                    "spec.serving.urlPrefix must not contain a '.' or '..' segment: use e.g. /v1",
                )
            ]
        },
    )
    args: list[Annotated[str, Field(max_length=1024, pattern=r"^[^\"'\\]*$")]] = Field(
        default_factory=list,
        max_length=64,
        description=(
            "Extra `infinity_emb v2` arguments, appended after the operator's own. No '\"', "
            "\"'\" or '\\' (AI Core substitutes values into its template as raw text, and shell "
            "quoting an apostrophe produces a '\"'); at most 4000 characters together (an AI "
            "Core parameter value holds 5000)."
        ),
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    "size(self.join(' ')) <= 4000",
                    "spec.serving.args is over 4000 characters in all (AI Core limits a "
                    "parameter value to 5000): pass fewer or shorter arguments",
                )
            ]
        },
    )
    env: list[EnvVar] = Field(
        default_factory=list,
        max_length=64,
        description=(
            "Extra environment variables for the serving container (kserve backend only: an AI "
            "Core ServingTemplate fixes its environment)."
        ),
    )


class Replicas(_Model):
    """Replica bounds passed to KServe or the AI Core template."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    "self.min <= self.max",
                    "spec.replicas.min must be <= spec.replicas.max: raise max or lower min",
                )
            ]
        }
    )

    min: int = Field(
        default=1, ge=0, le=1000, description="Minimum replicas (0 allows scale to zero)."
    )
    max: int = Field(default=1, ge=1, le=1000, description="Maximum replicas.")


#: A Secret's name (a DNS subdomain) and the rules for a key in it: one definition for every
#: Secret reference (the AI Core service key, the KServe API key).
SecretName = Annotated[
    str,
    Field(
        min_length=1,
        max_length=253,
        pattern=r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$",
        description="Secret name, in the EmbeddingModel's namespace.",
    ),
]
_SECRET_KEY: dict[str, Any] = {"min_length": 1, "max_length": 253, "pattern": r"^[-._a-zA-Z0-9]+$"}


class SecretKeyRef(_Model):
    """A key in a Secret in the object's namespace."""

    name: SecretName
    key: str = Field(
        default="serviceKey",
        **_SECRET_KEY,
        description="Key holding the AI Core service-key JSON.",
    )


class AICoreSpec(_Model):
    """Where and how to deploy on SAP AI Core."""

    secret_ref: SecretKeyRef = Field(
        description="Secret holding the AI Core service key (JSON from the BTP service instance).",
    )
    resource_group: str = Field(
        default="default",
        min_length=3,
        max_length=253,
        pattern=r"^[a-zA-Z0-9][a-zA-Z0-9.-]*[a-zA-Z0-9]$",
        description="AI Core resource group (the AI-Resource-Group header).",
        json_schema_extra=immutable(
            "spec.aicore.resourceGroup",
            "the deployment lives in the old group; delete and re-create the EmbeddingModel "
            "to move it",
        ),
    )
    scenario_id: str = Field(
        default="embedding-infinity",
        pattern=r"^[\w.-]{4,64}$",
        description="Scenario of the operator's ServingTemplate (synced by an AI Core app).",
        json_schema_extra=immutable(
            "spec.aicore.scenarioId", "delete and re-create the EmbeddingModel to change it"
        ),
    )
    executable_id: str = Field(
        default="embedding-infinity",
        pattern=r"^[\w.-]{4,64}$",
        description="Executable (ServingTemplate name) in that scenario.",
        json_schema_extra=immutable(
            "spec.aicore.executableId", "delete and re-create the EmbeddingModel to change it"
        ),
    )
    resource_plan: str = Field(
        default="starter",
        max_length=64,
        pattern=r"^[a-z0-9][a-z0-9.]*$",
        description="AI Core resource plan, e.g. starter, basic, infer.s (1x T4), infer.l.",
    )
    ttl: str | None = Field(
        default=None,
        max_length=5,
        pattern=r"^[1-9][0-9]{0,3}[mhdMHD]$",
        description=(
            "Deployment time to live, e.g. 90m, 8h, 7d (10m to 9999d); AI Core deletes it "
            "afterwards."
        ),
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    "!self.matches('^[1-9][mM]$')",
                    "spec.aicore.ttl must be at least 10m (AI Core's minimum): use e.g. 10m or 1h",
                )
            ]
        },
    )
    deletion_policy: DeletionPolicy = Field(
        default=DeletionPolicy.DELETE,
        description=(
            "Delete stops and deletes the AI Core deployment with the object; Orphan leaves it "
            "running."
        ),
    )


class Toleration(_Model):
    """A Kubernetes toleration."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                # NB: the API server rejects such a pod later, as a failed InferenceService.
                cel(
                    "!has(self.operator) || self.operator != 'Exists' || !has(self.value) "
                    "|| self.value == ''",
                    "a toleration with operator Exists matches any value: remove value, or use "
                    "operator Equal",
                ),
                cel(
                    "has(self.key) || !has(self.operator) || self.operator == 'Exists'",
                    "a toleration without key must use operator Exists (it matches every taint)",
                ),
            ]
        }
    )

    key: str | None = Field(default=None, max_length=316, description="Taint key.")
    operator: str | None = Field(
        default=None, pattern=r"^(Exists|Equal)$", description="Exists or Equal."
    )
    value: str | None = Field(default=None, max_length=63, description="Taint value.")
    effect: str | None = Field(
        default=None,
        pattern=r"^(NoSchedule|PreferNoSchedule|NoExecute)$",
        description="NoSchedule, PreferNoSchedule or NoExecute.",
    )
    toleration_seconds: int | None = Field(
        default=None, description="For NoExecute: how long the pod stays bound."
    )


# The API server's own pattern for resource.Quantity strings, so `cpu: lots` fails at apply time
# instead of as a rejected InferenceService later.
# NB: without the leading '-': a negative request or limit is refused by the API server only once
# the predictor pod is created.
QUANTITY_PATTERN = (
    r"^\+?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))"
    r"(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$"
)
Quantity = int | Annotated[str, Field(pattern=QUANTITY_PATTERN)]
_QUANTITY: dict[str, Any] = {
    "x-kubernetes-int-or-string": True,
    "anyOf": [{"type": "integer"}, {"type": "string"}],
    "pattern": QUANTITY_PATTERN,
}


GPU_RESOURCE = "nvidia.com/gpu"


class Resources(_Model):
    """Container resources (Kubernetes quantities)."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    f"!has(self.{kind}) || !('{GPU_RESOURCE}' in self.{kind})",
                    f"spec.kserve.resources.{kind} must not set {GPU_RESOURCE}: the operator "
                    "sets it from spec.kserve.gpus, so set that instead",
                )
                for kind in ("requests", "limits")
            ]
        }
    )

    requests: dict[str, Quantity] = Field(
        default_factory=dict,
        description="Resource requests, e.g. {cpu: '1', memory: 4Gi}.",
        json_schema_extra={"additionalProperties": _QUANTITY},
    )
    limits: dict[str, Quantity] = Field(
        default_factory=dict,
        description="Resource limits, e.g. {memory: 8Gi}. GPUs come from spec.kserve.gpus.",
        json_schema_extra={"additionalProperties": _QUANTITY},
    )


class ApiKeySecretRef(_Model):
    """A key in a Secret in the object's namespace that holds an API key."""

    name: SecretName
    key: str = Field(
        default="apiKey",
        **_SECRET_KEY,
        description="Key holding the API key (default apiKey).",
    )


class KServeAuth(_Model):
    """Bearer-token authentication on the served endpoint (docs/kserve.md#authentication)."""

    api_key_secret_ref: ApiKeySecretRef = Field(
        description=(
            "Secret key holding the API key clients must send as `Authorization: Bearer <key>`. "
            "It reaches the container only through valueFrom.secretKeyRef; a changed Secret "
            "rolls the predictor pods."
        ),
    )


class KServeSpec(_Model):
    """How to run on KServe."""

    deployment_mode: DeploymentMode = Field(
        default=DeploymentMode.STANDARD,
        description=(
            "KServe deployment mode, set once on the InferenceService (KServe refuses a change). "
            "Standard is a plain Deployment + Service; Knative adds scale to zero."
        ),
    )
    resources: Resources = Field(
        default_factory=Resources,
        description="Container requests and limits.",
        json_schema_extra={"default": object_default(Resources)},
    )
    gpus: int = Field(default=0, ge=0, le=16, description="nvidia.com/gpu count per replica.")
    node_selector: dict[str, str] = Field(
        default_factory=dict, description="Node labels the predictor pods must match."
    )
    tolerations: list[Toleration] = Field(
        default_factory=list, max_length=32, description="Tolerations for the predictor pods."
    )
    service_account_name: str | None = Field(
        default=None,
        max_length=253,
        pattern=r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$",
        description="ServiceAccount of the predictor pods (e.g. for s3:// credentials).",
    )
    auth: KServeAuth | None = Field(
        default=None,
        description=(
            "Require an API key on the endpoint. Off by default: without it, anyone who can "
            "reach the InferenceService in the cluster can call it."
        ),
    )


def _uri_rule(backend: str, schemes: tuple[str, ...]) -> dict[str, Any]:
    starts = " || ".join(f"self.model.uri.startsWith('{s}')" for s in schemes)
    return cel(
        f"self.backend != '{backend}' || {starts}",
        f"spec.model.uri must start with {' or '.join(schemes)} when spec.backend is {backend}",
    )


SPEC_RULES: list[JsonValue] = [
    cel(
        "self.backend != 'aicore' || has(self.aicore)",
        "spec.aicore is required when spec.backend is aicore: add spec.aicore.secretRef.name "
        "(the Secret holding the AI Core service key)",
    ),
    cel(
        "self.backend == 'aicore' || !has(self.aicore)",
        "spec.aicore is only valid with spec.backend aicore: remove it or change the backend",
    ),
    cel(
        "self.backend == 'kserve' || !has(self.kserve)",
        "spec.kserve is only valid with spec.backend kserve: remove it or change the backend",
    ),
    _uri_rule("aicore", AICORE_URI_SCHEMES),
    _uri_rule("kserve", KSERVE_URI_SCHEMES),
    cel(
        "self.backend != 'aicore' || !has(self.serving) || !has(self.serving.env) "
        "|| size(self.serving.env) == 0",
        "spec.serving.env is not supported with spec.backend aicore (the ServingTemplate fixes "
        "the environment): use spec.serving.args instead",
    ),
]


class EmbeddingModelSpec(_Model):
    """Desired state of an embedding model deployment."""

    model_config = ConfigDict(json_schema_extra={"x-kubernetes-validations": SPEC_RULES})

    backend: Backend = Field(
        description="Where the model runs: aicore (SAP AI Core) or kserve. Immutable.",
        json_schema_extra=immutable(
            "spec.backend", "create a new EmbeddingModel for the other backend"
        ),
    )
    model: ModelSource = Field(description="The model to serve.")
    serving: Serving = Field(
        default_factory=Serving,
        description="infinity server settings.",
        json_schema_extra={"default": object_default(Serving)},
    )
    replicas: Replicas = Field(
        default_factory=Replicas,
        description="Replica bounds.",
        json_schema_extra={"default": object_default(Replicas)},
    )
    suspend: bool = Field(
        default=False,
        description="Stop serving without deleting (AI Core: STOPPED; KServe: stop annotation).",
    )
    aicore: AICoreSpec | None = Field(
        default=None, description="SAP AI Core settings; required when backend is aicore."
    )
    kserve: KServeSpec | None = Field(
        default=None, description="KServe settings; defaults apply when omitted."
    )

    @property
    def kserve_or_default(self) -> KServeSpec:
        return self.kserve or KServeSpec()


def parse_spec(raw: dict[str, Any]) -> EmbeddingModelSpec:
    """Parse a spec as stored by the API server (camelCase)."""
    return EmbeddingModelSpec.model_validate(raw)
