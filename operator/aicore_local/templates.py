"""ServingTemplates: read them from directories (the stand-in for the git repo AI Core syncs via
ArgoCD), turn them into scenarios and executables, and render them with configuration bindings.

Rendering follows AI Core's Jinja-like substitution of `{{inputs.parameters.x}}` and
`{{inputs.artifacts.x}}` in the multi-line strings `template.metadata.annotations`,
`template.metadata.labels` and `template.spec`: raw text substitution first, YAML parsing after,
and an unresolved placeholder fails with the message real AI Core gives (aicore-api.md §3.4, §5.2).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

PLACEHOLDER = re.compile(r"\{\{\s*inputs\.(parameters|artifacts)\.([A-Za-z0-9_\-]+)\s*\}\}")
ID_PATTERN = re.compile(r"^[\w.-]{4,64}$")


class TemplateError(Exception):
    """A template file that AI Core would refuse to sync."""


class UnresolvedPlaceholder(Exception):
    """A placeholder with neither a binding nor a default (AI Core rejects the deployment)."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name

    @property
    def api_message(self) -> str:
        # NB: the exact text AI Core returns (help: Miscellaneous), nested JSON included.
        return (
            "Runtime Adapter Exception; Failed to post deployments : "
            '{"code": "400", "message": "Missing input parameter or artifacts, one or more '
            "placeholder values are not resolved in the serving spec and error is "
            f"'dict object' has no attribute '{self.name}'.\"}}"
        )


@dataclass(frozen=True)
class Parameter:
    name: str
    default: str | None
    description: str | None


@dataclass(frozen=True)
class InputArtifact:
    name: str
    kind: str | None = None
    description: str | None = None
    labels: tuple[tuple[str, str], ...] = ()


@dataclass
class ServingTemplate:
    """One parsed ServingTemplate file = one executable in one scenario."""

    executable_id: str
    executable_name: str
    executable_description: str | None
    scenario_id: str
    scenario_name: str
    scenario_description: str | None
    version: str
    parameters: list[Parameter]
    artifacts: list[InputArtifact]
    template_annotations: str
    template_labels: str
    template_spec: str
    source: str
    raw_labels: dict[str, str] = field(default_factory=dict)


@dataclass
class RenderedServing:
    """A template rendered with one configuration's bindings."""

    annotations: dict[str, Any]
    labels: dict[str, Any]
    spec: dict[str, Any]

    @property
    def predictor(self) -> dict[str, Any]:
        predictor = self.spec.get("predictor")
        return predictor if isinstance(predictor, dict) else {}

    @property
    def container(self) -> dict[str, Any]:
        containers = self.predictor.get("containers") or []
        for c in containers:
            if isinstance(c, dict) and c.get("name") == "kserve-container":
                return c
        return containers[0] if containers and isinstance(containers[0], dict) else {}

    @property
    def env(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for item in self.container.get("env") or []:
            if isinstance(item, dict) and "name" in item and "value" in item:
                out[str(item["name"])] = "" if item["value"] is None else str(item["value"])
        return out

    @property
    def resource_plan(self) -> str | None:
        plan = self.labels.get("ai.sap.com/resourcePlan")
        return None if plan is None else str(plan)


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    # Tolerate a mapping where AI Core wants a multi-line string.
    return yaml.safe_dump(value, sort_keys=False)


def parse_template(doc: dict[str, Any], source: str) -> ServingTemplate:
    meta = doc.get("metadata") or {}
    labels = {str(k): str(v) for k, v in (meta.get("labels") or {}).items()}
    annotations = {str(k): str(v) for k, v in (meta.get("annotations") or {}).items()}
    name = meta.get("name")
    if not isinstance(name, str) or not ID_PATTERN.match(name):
        raise TemplateError(
            f"{source}: metadata.name must match {ID_PATTERN.pattern}, got {name!r}"
        )

    def pick(key: str) -> str | None:
        # NB: the docs put names in annotations; accept labels too, as some samples do.
        return annotations.get(key) or labels.get(key)

    scenario_id = labels.get("scenarios.ai.sap.com/id")
    if not scenario_id or not ID_PATTERN.match(scenario_id):
        raise TemplateError(f"{source}: label scenarios.ai.sap.com/id is missing or invalid")
    scenario_name = pick("scenarios.ai.sap.com/name")
    executable_name = pick("executables.ai.sap.com/name")
    if not scenario_name:
        raise TemplateError(f"{source}: annotation scenarios.ai.sap.com/name is missing")
    if not executable_name:
        raise TemplateError(f"{source}: annotation executables.ai.sap.com/name is missing")
    version = labels.get("ai.sap.com/version")
    if not version:
        raise TemplateError(f"{source}: label ai.sap.com/version is missing")
    spec = doc.get("spec") or {}
    inputs = spec.get("inputs") or {}
    params: list[Parameter] = []
    for p in inputs.get("parameters") or []:
        if not isinstance(p, dict) or not p.get("name"):
            raise TemplateError(f"{source}: spec.inputs.parameters entries need a name")
        if str(p.get("type", "string")) != "string":
            raise TemplateError(f"{source}: parameter {p['name']}: only type string exists")
        default = p.get("default")
        params.append(
            Parameter(
                name=str(p["name"]),
                default=None if default is None else str(default),
                description=p.get("description"),
            )
        )
    if not params:
        raise TemplateError(
            f"{source}: a serving template must declare at least one input parameter"
        )
    artifacts: list[InputArtifact] = []
    for a in inputs.get("artifacts") or []:
        if not isinstance(a, dict) or not a.get("name"):
            raise TemplateError(f"{source}: spec.inputs.artifacts entries need a name")
        aname = str(a["name"])
        prefix = f"artifacts.ai.sap.com/{aname}."
        art_labels: tuple[tuple[str, str], ...] = ()
        raw = annotations.get(prefix + "labels")
        if raw:
            loaded = yaml.safe_load(raw)
            if isinstance(loaded, dict):
                art_labels = tuple((str(k), str(v)) for k, v in loaded.items())
        artifacts.append(
            InputArtifact(
                name=aname,
                kind=annotations.get(prefix + "kind"),
                description=annotations.get(prefix + "description"),
                labels=art_labels,
            )
        )
    template = spec.get("template") or {}
    tmeta = template.get("metadata") or {}
    if not template.get("spec"):
        raise TemplateError(f"{source}: spec.template.spec is missing")
    return ServingTemplate(
        executable_id=name,
        executable_name=executable_name,
        executable_description=pick("executables.ai.sap.com/description"),
        scenario_id=scenario_id,
        scenario_name=scenario_name,
        scenario_description=pick("scenarios.ai.sap.com/description"),
        version=version,
        parameters=params,
        artifacts=artifacts,
        template_annotations=_text(tmeta.get("annotations")),
        template_labels=_text(tmeta.get("labels")),
        template_spec=_text(template.get("spec")),
        source=source,
        raw_labels=labels,
    )


def load_templates(dirs: list[Path]) -> tuple[dict[str, ServingTemplate], list[str]]:
    """Read every ServingTemplate under `dirs`; returns (by executable id, errors)."""
    found: dict[str, ServingTemplate] = {}
    errors: list[str] = []
    for d in dirs:
        if not d.is_dir():
            errors.append(f"{d}: templates directory does not exist")
            continue
        files = sorted([*d.rglob("*.yaml"), *d.rglob("*.yml")])
        for path in files:
            try:
                docs = list(yaml.safe_load_all(path.read_text()))
            except yaml.YAMLError as exc:
                errors.append(f"{path}: invalid YAML: {exc}")
                continue
            for doc in docs:
                if not isinstance(doc, dict) or doc.get("kind") != "ServingTemplate":
                    continue
                try:
                    t = parse_template(doc, str(path))
                except TemplateError as exc:
                    errors.append(str(exc))
                    continue
                if t.executable_id in found:
                    errors.append(
                        f"{path}: executable {t.executable_id} is already defined in "
                        f"{found[t.executable_id].source}"
                    )
                    continue
                found[t.executable_id] = t
    return found, errors


def substitute(text: str, parameters: dict[str, str], artifacts: dict[str, str]) -> str:
    def repl(m: re.Match[str]) -> str:
        table = parameters if m.group(1) == "parameters" else artifacts
        if m.group(2) not in table:
            raise UnresolvedPlaceholder(m.group(2))
        return table[m.group(2)]

    return PLACEHOLDER.sub(repl, text)


def render(
    template: ServingTemplate,
    parameter_bindings: dict[str, str],
    artifact_urls: dict[str, str],
) -> RenderedServing:
    """Render with bindings; unbound parameters fall back to template defaults.

    Raises UnresolvedPlaceholder, or TemplateError when the rendered text is not valid YAML.
    """
    params = {p.name: p.default for p in template.parameters if p.default is not None}
    params.update(parameter_bindings)

    def load(text: str, what: str) -> dict[str, Any]:
        rendered = substitute(text, params, artifact_urls)
        if not rendered.strip():
            return {}
        try:
            value = yaml.safe_load(rendered)
        except yaml.YAMLError as exc:
            raise TemplateError(f"rendered {what} is not valid YAML: {exc}") from exc
        if not isinstance(value, dict):
            raise TemplateError(f"rendered {what} is not a mapping")
        return value

    return RenderedServing(
        annotations=load(template.template_annotations, "template.metadata.annotations"),
        labels=load(template.template_labels, "template.metadata.labels"),
        spec=load(template.template_spec, "template.spec"),
    )
