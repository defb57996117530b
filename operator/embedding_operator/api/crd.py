"""Generate the EmbeddingModel CustomResourceDefinition from the pydantic models.

pydantic emits JSON Schema (with `$ref`, `anyOf: [T, null]` and titles); Kubernetes wants a
structural OpenAPI v3 schema (everything inlined, one type per node, no nulls). This module is the
translation, so the spec is written once and `crds/` is a generated, checked-in artifact (a test
fails on drift).
"""

from __future__ import annotations

from typing import Any

import yaml

from embedding_operator.api.spec import (
    CATEGORIES,
    GROUP,
    KIND,
    MAX_NAME_LENGTH,
    PLURAL,
    SHORT_NAMES,
    SINGULAR,
    VERSION,
    EmbeddingModelSpec,
    cel,
)
from embedding_operator.api.status import EmbeddingModelStatus

_DROP = {"title"}


def _structural(node: Any, defs: dict[str, Any]) -> Any:
    """Inline refs, collapse Optional, drop JSON-Schema-only keys."""
    if isinstance(node, list):
        return [_structural(n, defs) for n in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        target = defs[node["$ref"].rsplit("/", 1)[-1]]
        merged = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
        return _structural(merged, defs)
    if node.get("x-kubernetes-int-or-string"):
        return {k: v for k, v in node.items() if k not in _DROP and k != "anyOf"}
    if "anyOf" in node:
        variants = [v for v in node["anyOf"] if v.get("type") != "null"]
        if len(variants) == 1:
            rest = {k: v for k, v in node.items() if k != "anyOf"}
            if rest.get("default", "") is None:
                del rest["default"]
            return _structural({**variants[0], **rest}, defs)
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in _DROP or key == "$defs":
            continue
        if key == "properties":
            out[key] = {name: _structural(prop, defs) for name, prop in value.items()}
        else:
            out[key] = _structural(value, defs)
    if "enum" in out:
        out.setdefault("type", "string")
    if out.get("type") == "object" and "additionalProperties" in out:
        if out["additionalProperties"] is False:
            del out["additionalProperties"]
    return out


def schema_of(model: type[Any]) -> dict[str, Any]:
    raw = model.model_json_schema(by_alias=True, mode="validation")
    return _structural(raw, raw.get("$defs", {}))  # type: ignore[no-any-return]


def openapi_schema() -> dict[str, Any]:
    spec = schema_of(EmbeddingModelSpec)
    status = schema_of(EmbeddingModelStatus)
    status["description"] = "Observed state, written by the operator only."
    spec["description"] = EmbeddingModelSpec.__doc__
    return {
        "type": "object",
        "description": "An embedding model served by infinity on SAP AI Core or KServe.",
        "required": ["spec"],
        "properties": {
            "apiVersion": {"type": "string", "description": "embeddings.ai/v1alpha1"},
            "kind": {"type": "string", "description": "EmbeddingModel"},
            "metadata": {"type": "object"},
            "spec": spec,
            "status": status,
        },
        "x-kubernetes-validations": [
            cel(
                f"size(self.metadata.name) <= {MAX_NAME_LENGTH}",
                f"metadata.name must be at most {MAX_NAME_LENGTH} characters (derived KServe and "
                "AI Core names add suffixes): choose a shorter name",
            )
        ],
    }


PRINTER_COLUMNS: list[dict[str, Any]] = [
    {"name": "Backend", "type": "string", "jsonPath": ".spec.backend"},
    {"name": "Model", "type": "string", "jsonPath": ".spec.model.name"},
    {
        "name": "Ready",
        "type": "string",
        "jsonPath": '.status.conditions[?(@.type=="Ready")].status',
    },
    {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
    {"name": "Endpoint", "type": "string", "jsonPath": ".status.endpoint"},
    {"name": "Dims", "type": "integer", "jsonPath": ".status.serving.dimensions", "priority": 1},
    {
        "name": "Space",
        "type": "string",
        "jsonPath": ".status.embeddingSpace.fingerprint",
        "priority": 1,
    },
    {
        "name": "Reason",
        "type": "string",
        "jsonPath": '.status.conditions[?(@.type=="Ready")].reason',
        "priority": 1,
    },
    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
]


def crd() -> dict[str, Any]:
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": f"{PLURAL}.{GROUP}",
            "labels": {"app.kubernetes.io/part-of": "embedding-operator"},
        },
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": KIND,
                "listKind": f"{KIND}List",
                "plural": PLURAL,
                "singular": SINGULAR,
                "shortNames": SHORT_NAMES,
                "categories": CATEGORIES,
            },
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": PRINTER_COLUMNS,
                    "schema": {"openAPIV3Schema": openapi_schema()},
                }
            ],
        },
    }


def render_crd() -> str:
    header = "# Generated by `embedding-operator generate` from operator/embedding_operator/api.\n"
    header += (
        "# Do not edit: change the pydantic models and regenerate (a test checks for drift).\n"
    )
    return header + yaml.safe_dump(crd(), sort_keys=False, width=100)
