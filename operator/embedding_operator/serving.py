"""The one list of serving parameters, and everything generated from it.

AI Core and KServe must start infinity identically, so both are driven by the same environment
contract of `image/run.sh`. `PARAMETERS` names each setting once — its AI Core template parameter,
the container variable it becomes, its default and how it is read from the spec — and three views
are derived from it:

- `serving_template()`: the AI Core ServingTemplate (checked in under manifests/aicore/),
- `parameter_bindings(spec)`: the AI Core configuration's bindings for one EmbeddingModel,
- `container_env(spec)`: the KServe container's environment for one EmbeddingModel.

A test renders the template with the bindings and proves no placeholder is left unresolved.
"""

from __future__ import annotations

import hashlib
import json
import re
import shlex
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import yaml

from embedding_operator.api.spec import EmbeddingModelSpec

# NB: pinned by tag here and by digest at release time; override per object with spec.serving.image.
DEFAULT_IMAGE = "ghcr.io/embedding-operator/embedding-infinity:0.1.0"
SERVING_PORT = 8080
TEMPLATE_NAME = "embedding-infinity"  # executable id == ServingTemplate metadata.name
SCENARIO_ID = "embedding-infinity"
TEMPLATE_VERSION = "0.1.0"
MODEL_ARTIFACT = "embeddingModel"  # camelCase: AI Core's Jinja-like renderer rejects hyphens


@dataclass(frozen=True)
class ServingParameter:
    """One setting: AI Core parameter `name`, container variable `env`, spec accessor `value`."""

    name: str
    env: str | None
    default: str
    description: str
    value: Callable[[EmbeddingModelSpec], str]


def _bool(value: bool) -> str:
    return "true" if value else "false"


def image_of(spec: EmbeddingModelSpec) -> str:
    return spec.serving.image or DEFAULT_IMAGE


PARAMETERS: tuple[ServingParameter, ...] = (
    ServingParameter(
        "modelName",
        "MODEL_SERVE_NAME",
        "embedding-model",
        "Served model name (the OpenAI `model` field; gen_ai_hub resolves deployments by it).",
        lambda s: s.model.name,
    ),
    ServingParameter("image", None, DEFAULT_IMAGE, "Serving image (infinity).", image_of),
    ServingParameter(
        "batchSize",
        "BATCH_SIZE",
        "32",
        "Largest dynamic batch (1..4096).",
        lambda s: str(s.serving.batch_size),
    ),
    ServingParameter(
        "urlPrefix",
        "URL_PRE_FIX",
        "/v1",
        "Route prefix; AI Core routes /v1 paths.",
        lambda s: s.serving.url_prefix,
    ),
    ServingParameter(
        "trustRemoteCode",
        "TRUST_REMOTE_CODE",
        "false",
        "Allow model repository code.",
        lambda s: _bool(s.model.trust_remote_code),
    ),
    ServingParameter(
        "engine",
        "ENGINE",
        "torch",
        "infinity engine: torch, optimum or ctranslate2.",
        lambda s: str(s.serving.engine),
    ),
    ServingParameter("dtype", "DTYPE", "auto", "Weights dtype.", lambda s: str(s.serving.dtype)),
    ServingParameter(
        "pooling", "POOLING", "auto", "Pooling method.", lambda s: str(s.model.pooling)
    ),
    ServingParameter(
        "revision", "REVISION", "", "Model revision to pin.", lambda s: s.model.revision or ""
    ),
    ServingParameter(
        "args",
        "ARG",
        "",
        "Extra infinity arguments (shell-quoted).",
        lambda s: shlex.join(s.serving.args),
    ),
    ServingParameter(
        "resourcePlan",
        None,
        "starter",
        "AI Core resource plan.",
        lambda s: s.aicore.resource_plan if s.aicore else "starter",
    ),
    ServingParameter("minReplicas", None, "1", "Minimum replicas.", lambda s: str(s.replicas.min)),
    ServingParameter("maxReplicas", None, "1", "Maximum replicas.", lambda s: str(s.replicas.max)),
)


def parameter_bindings(spec: EmbeddingModelSpec) -> list[dict[str, str]]:
    """AI Core configuration parameterBindings: every parameter bound, so template defaults
    changing later never changes a running model silently."""
    return [{"key": p.name, "value": p.value(spec)} for p in PARAMETERS]


def container_env(spec: EmbeddingModelSpec) -> list[dict[str, str]]:
    """The KServe container environment: the same variables the ServingTemplate sets."""
    env = [{"name": "STORAGE_URI", "value": spec.model.uri}]
    env += [{"name": p.env, "value": p.value(spec)} for p in PARAMETERS if p.env]
    env.append({"name": "PORT", "value": str(SERVING_PORT)})
    env += [{"name": e.name, "value": e.value or ""} for e in spec.serving.env]
    return env


def configuration_hash(spec: EmbeddingModelSpec) -> str:
    """Short content hash of what a configuration pins: a new hash means a new configuration."""
    payload = {
        "bindings": parameter_bindings(spec),
        "artifact": spec.model.uri,
        "scenario": spec.aicore.scenario_id if spec.aicore else SCENARIO_ID,
        "executable": spec.aicore.executable_id if spec.aicore else TEMPLATE_NAME,
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:10]


def _placeholder(name: str) -> str:
    return "{{inputs.parameters." + name + "}}"


def _predictor_spec() -> str:
    env = [{"name": "STORAGE_URI", "value": "{{inputs.artifacts." + MODEL_ARTIFACT + "}}"}]
    env += [{"name": p.env, "value": _placeholder(p.name)} for p in PARAMETERS if p.env]
    env.append({"name": "PORT", "value": str(SERVING_PORT)})
    predictor = {
        "predictor": {
            "minReplicas": "MIN_REPLICAS",
            "maxReplicas": "MAX_REPLICAS",
            "containers": [
                {
                    "name": "kserve-container",
                    "image": _placeholder("image"),
                    "ports": [{"containerPort": SERVING_PORT, "protocol": "TCP"}],
                    "env": env,
                    "securityContext": {
                        "runAsUser": 65534,
                        "runAsGroup": 65534,
                        "runAsNonRoot": True,
                        "allowPrivilegeEscalation": False,
                        "capabilities": {"drop": ["ALL"]},
                    },
                    "volumeMounts": [{"name": "shm", "mountPath": "/dev/shm"}],
                }
            ],
            "volumes": [{"name": "shm", "emptyDir": {"medium": "Memory"}}],
        }
    }
    text = yaml.safe_dump(predictor, sort_keys=False, width=200)
    # NB: AI Core substitutes raw text. Replica counts must render as YAML integers, so their
    # placeholders stay unquoted; string placeholders are double-quoted, and the spec forbids
    # '"' and '\\' in every value that reaches them (see api/spec.py).
    text = text.replace("MIN_REPLICAS", _placeholder("minReplicas"))
    text = text.replace("MAX_REPLICAS", _placeholder("maxReplicas"))
    return re.sub(r"'(\{\{inputs\.[a-z]+\.[A-Za-z]+\}\})'", r'"\1"', text)


def serving_template() -> dict[str, Any]:
    """The AI Core ServingTemplate (ai.sap.com/v1alpha1) for infinity embeddings."""
    return {
        "apiVersion": "ai.sap.com/v1alpha1",
        "kind": "ServingTemplate",
        "metadata": {
            "name": TEMPLATE_NAME,
            "annotations": {
                "scenarios.ai.sap.com/name": "Embedding models (infinity)",
                "scenarios.ai.sap.com/description": "Text embedding models served by infinity",
                "executables.ai.sap.com/name": TEMPLATE_NAME,
                "executables.ai.sap.com/description": (
                    "infinity embedding server, managed by the EmbeddingModel operator"
                ),
                f"artifacts.ai.sap.com/{MODEL_ARTIFACT}.kind": "model",
                f"artifacts.ai.sap.com/{MODEL_ARTIFACT}.description": "Model weights directory",
            },
            "labels": {
                "scenarios.ai.sap.com/id": SCENARIO_ID,
                "ai.sap.com/version": TEMPLATE_VERSION,
            },
        },
        "spec": {
            "inputs": {
                "parameters": [
                    {
                        "name": p.name,
                        "type": "string",
                        "default": p.default,
                        "description": p.description,
                    }
                    for p in PARAMETERS
                ],
                "artifacts": [{"name": MODEL_ARTIFACT}],
            },
            "template": {
                "apiVersion": "serving.kserve.io/v1beta1",
                "metadata": {
                    "annotations": (
                        "autoscaling.knative.dev/metric: concurrency\n"
                        "autoscaling.knative.dev/target: 8\n"
                    ),
                    "labels": f'ai.sap.com/resourcePlan: "{_placeholder("resourcePlan")}"\n',
                },
                "spec": _predictor_spec(),
            },
        },
    }


class _LiteralDumper(yaml.SafeDumper):
    """Dump multi-line strings as `|` blocks, as AI Core's own template examples are written."""


def _str_representer(dumper: yaml.SafeDumper, data: str) -> yaml.Node:
    style = "|" if "\n" in data else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)


_LiteralDumper.add_representer(str, _str_representer)


def render_serving_template() -> str:
    header = "# Generated by `embedding-operator generate` from embedding_operator/serving.py.\n"
    header += "# Push this file to the git repository your AI Core application syncs.\n"
    return header + yaml.dump(serving_template(), Dumper=_LiteralDumper, sort_keys=False, width=200)
