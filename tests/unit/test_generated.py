"""Checked-in generated files match their Python source of truth, and the template renders fully."""

from __future__ import annotations

import re

import pytest
import yaml

from embedding_operator.api.spec import parse_spec
from embedding_operator.cli import REPO_ROOT, generated_files
from embedding_operator.serving import (
    MODEL_ARTIFACT,
    PARAMETERS,
    container_env,
    parameter_bindings,
    serving_template,
)

PLACEHOLDER = re.compile(r"\{\{\s*inputs\.(parameters|artifacts)\.([A-Za-z0-9_]+)\s*\}\}")


@pytest.mark.parametrize("path", sorted(generated_files()), ids=str)
def test_checked_in_file_matches_generator(path):
    checked_in = (REPO_ROOT / path).read_text()
    assert checked_in == generated_files()[path], (
        f"{path} is stale: run `make generate` and commit the result"
    )


def _spec(**overrides):
    raw = {
        "backend": "aicore",
        "model": {"name": "all-minilm-l6-v2", "uri": "ai://default/models/all-minilm-l6-v2"},
        "aicore": {"secretRef": {"name": "aicore"}},
        "serving": {"batchSize": 64, "args": ["--no-model-warmup"]},
        "replicas": {"min": 0, "max": 3},
    }
    raw.update(overrides)
    return parse_spec(raw)


def render(template_text: str, parameters: dict[str, str], artifacts: dict[str, str]) -> str:
    """What AI Core does: raw text substitution, failing on an unknown placeholder."""

    def substitute(match: re.Match[str]) -> str:
        kind, name = match.groups()
        source = parameters if kind == "parameters" else artifacts
        if name not in source:
            raise KeyError(f"'dict object' has no attribute '{name}'")
        return source[name]

    return PLACEHOLDER.sub(substitute, template_text)


def test_template_renders_with_operator_bindings_and_leaves_no_placeholder():
    template = serving_template()
    spec = _spec()
    bindings = {b["key"]: b["value"] for b in parameter_bindings(spec)}
    artifacts = {MODEL_ARTIFACT: "s3://bucket/models/all-minilm-l6-v2"}
    inner = template["spec"]["template"]
    rendered = {
        part: render(inner["metadata"][part], bindings, artifacts)
        for part in ("annotations", "labels")
    }
    spec_text = render(inner["spec"], bindings, artifacts)
    assert not PLACEHOLDER.search(spec_text)
    predictor = yaml.safe_load(spec_text)["predictor"]
    assert predictor["minReplicas"] == 0 and predictor["maxReplicas"] == 3
    (container,) = predictor["containers"]
    assert container["name"] == "kserve-container"
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env["STORAGE_URI"] == "s3://bucket/models/all-minilm-l6-v2"
    assert env["MODEL_SERVE_NAME"] == "all-minilm-l6-v2"
    assert env["BATCH_SIZE"] == "64"
    assert env["ARG"] == "--no-model-warmup"
    assert yaml.safe_load(rendered["labels"]) == {"ai.sap.com/resourcePlan": "starter"}


def test_every_template_parameter_is_bound_and_declared_once():
    declared = [p["name"] for p in serving_template()["spec"]["inputs"]["parameters"]]
    assert len(declared) == len(set(declared))
    bound = [b["key"] for b in parameter_bindings(_spec())]
    assert bound == declared
    for name in declared:  # AI Core's renderer rejects hyphens; camelCase only
        assert re.fullmatch(r"[a-z][A-Za-z0-9]*", name), name


def test_template_follows_ai_core_rules():
    template = serving_template()
    labels = template["metadata"]["labels"]
    assert labels["scenarios.ai.sap.com/id"] and labels["ai.sap.com/version"]
    assert template["spec"]["inputs"]["parameters"], "AI Core hides templates without parameters"
    spec_text = template["spec"]["template"]["spec"]
    predictor = yaml.safe_load(
        PLACEHOLDER.sub(lambda m: "1" if "Replicas" in m.group(2) else "x", spec_text)
    )["predictor"]
    (container,) = predictor["containers"]
    security = container["securityContext"]
    assert security["runAsUser"] == 65534 and security["runAsNonRoot"] is True
    assert {"name": "shm", "emptyDir": {"medium": "Memory"}} in predictor["volumes"]


def test_kserve_env_uses_the_same_variables_as_the_template():
    spec = parse_spec(
        {
            "backend": "kserve",
            "model": {"name": "minilm", "uri": "hf://sentence-transformers/all-MiniLM-L6-v2"},
            "serving": {"env": [{"name": "HF_TOKEN_PATH", "value": "/var/run/hf"}]},
        }
    )
    names = [e["name"] for e in container_env(spec)]
    template_vars = {p.env for p in PARAMETERS if p.env} | {"STORAGE_URI", "PORT"}
    assert template_vars <= set(names)
    assert names[-1] == "HF_TOKEN_PATH"
    assert {"name": "STORAGE_URI", "value": spec.model.uri} in container_env(spec)
