"""Generate docs/api-reference.md: every EmbeddingModel field, as the API server enforces it.

The source is the CRD's OpenAPI schema (`crd.openapi_schema`), itself generated from the pydantic
models, so the reference can never describe a field, default or limit the API server does not
apply. Each field gets a row (path, type, required, default, validation, description); every CEL
rule is listed with its message, as `kubectl apply` prints it. `embedding-operator generate`
writes the file and tests/unit/test_generated.py fails when it is stale.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from embedding_operator.api.crd import PRINTER_COLUMNS, openapi_schema
from embedding_operator.api.spec import GROUP, KIND, QUANTITY_PATTERN, SHORT_NAMES, VERSION


@dataclass(frozen=True)
class Field:
    path: str
    type: str
    required: bool
    default: str
    validation: str
    description: str


@dataclass(frozen=True)
class Rule:
    path: str
    rule: str
    message: str


def type_of(node: dict[str, Any]) -> str:
    """`string`, `integer`, `[]object`, `map[string]string`, `int-or-string`, ..."""
    if node.get("x-kubernetes-int-or-string"):
        return "int-or-string"
    kind = node.get("type", "object")
    if kind == "array":
        return "[]" + type_of(node.get("items", {}))
    if kind == "object" and isinstance(node.get("additionalProperties"), dict):
        return "map[string]" + type_of(node["additionalProperties"])
    return str(kind)


def _code(value: Any) -> str:
    text = value if isinstance(value, str) and value else json.dumps(value, separators=(", ", ": "))
    return f"`{text}`"


def validation_of(node: dict[str, Any]) -> str:
    """The schema's own limits on one node (CEL rules are listed separately)."""
    parts: list[str] = []
    if "enum" in node:
        parts.append("one of " + ", ".join(_code(v) for v in node["enum"]))
    for key, label in (
        ("minimum", "min"),
        ("maximum", "max"),
        ("minLength", "min length"),
        ("maxLength", "max length"),
        ("minItems", "min items"),
        ("maxItems", "max items"),
    ):
        if key in node:
            parts.append(f"{label} {node[key]}")
    if node.get("pattern") == QUANTITY_PATTERN:
        parts.append("a Kubernetes quantity (e.g. `500m`, `4Gi`, `2`)")
    elif "pattern" in node:
        parts.append(f"pattern {_code(node['pattern'])}")
    for inner, where in (("items", "each item"), ("additionalProperties", "each value")):
        child = node.get(inner)
        if isinstance(child, dict) and child.get("type") != "object":
            nested = validation_of(child)
            if nested:
                parts.append(f"{where}: {nested}")
    if node.get("x-kubernetes-list-type") == "map":
        keys = ", ".join(node.get("x-kubernetes-list-map-keys", []))
        parts.append(f"list map keyed by {keys}")
    return "; ".join(parts)


def walk(node: dict[str, Any], path: str, required: bool = False) -> Iterator[Field | Rule]:
    """Depth first, in declaration order: the node's own row, its rules, then its children."""
    yield Field(
        path=path,
        type=type_of(node),
        required=required,
        default=_code(node["default"]) if "default" in node else "",
        validation=validation_of(node),
        description=" ".join(str(node.get("description", "")).split()),
    )
    for rule in node.get("x-kubernetes-validations", []):
        yield Rule(path=path, rule=rule["rule"], message=rule["message"])
    items = node.get("items")
    if node.get("type") == "array" and isinstance(items, dict) and "properties" in items:
        node, path = items, f"{path}[]"
        for rule in node.get("x-kubernetes-validations", []):
            yield Rule(path=path, rule=rule["rule"], message=rule["message"])
    needed = set(node.get("required", []))
    for name, child in node.get("properties", {}).items():
        yield from walk(child, f"{path}.{name}", name in needed)


def _cell(text: str) -> str:
    # NB: GitHub tables split on every unescaped pipe, even inside a code span; and outside code
    # spans `<path>` would be read as an HTML tag and vanish.
    parts = text.split("`")
    parts[::2] = [re.sub(r"<(?=[A-Za-z/!?])", "&lt;", p) for p in parts[::2]]
    return "`".join(parts).replace("|", "\\|")


def _table(fields: list[Field]) -> list[str]:
    lines = [
        "| Field | Type | Required | Default | Validation | Description |",
        "|---|---|---|---|---|---|",
    ]
    for f in fields:
        cells = [
            f"`{f.path}`",
            f"`{f.type}`",
            "yes" if f.required else "",
            f.default,
            f.validation,
            f.description,
        ]
        lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    return lines


def render_reference() -> str:
    schema = openapi_schema()
    spec = list(walk(schema["properties"]["spec"], "spec", required=True))
    status = list(walk(schema["properties"]["status"], "status"))
    top_rules = [
        Rule("(object)", r["rule"], r["message"])
        for r in schema.get("x-kubernetes-validations", [])
    ]
    rules = [*top_rules, *(r for r in [*spec, *status] if isinstance(r, Rule))]
    out = [
        "<!-- Generated by `embedding-operator generate` from operator/embedding_operator/api. -->",
        "<!-- Do not edit: change the pydantic models, then regenerate (a test checks drift). -->",
        "",
        f"# {KIND} API reference (`{GROUP}/{VERSION}`)",
        "",
        f"Namespaced; short name `{', '.join(SHORT_NAMES)}`. Every field below is in the CRD "
        "schema the API server validates, so `kubectl apply` rejects a value outside these "
        "limits with the field's path. Fields are camelCase; `[]` marks the items of a list.",
        "See [troubleshooting.md](troubleshooting.md) for what each status condition reason means.",
        "",
        "## spec",
        "",
        *_table([f for f in spec if isinstance(f, Field)]),
        "",
        "## Validation rules (CEL)",
        "",
        "Checked by the API server on every create and update; the message is what "
        "`kubectl apply` prints.",
        "",
        "| Where | Rule | Message |",
        "|---|---|---|",
        *(
            "| " + " | ".join(_cell(c) for c in (f"`{r.path}`", f"`{r.rule}`", r.message)) + " |"
            for r in rules
        ),
        "",
        "## status",
        "",
        "Written by the operator only (the status subresource); never set it in manifests.",
        "",
        *_table([f for f in status if isinstance(f, Field)]),
        "",
        "## Printer columns",
        "",
        "`kubectl get emb` shows these; `-o wide` adds those with priority 1.",
        "",
        "| Column | Type | JSONPath | Priority |",
        "|---|---|---|---|",
        *(
            "| "
            + " | ".join(
                _cell(c)
                for c in (c["name"], c["type"], f"`{c['jsonPath']}`", str(c.get("priority", 0)))
            )
            + " |"
            for c in PRINTER_COLUMNS
        ),
        "",
    ]
    return "\n".join(out)
