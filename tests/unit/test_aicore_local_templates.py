"""Pure parts of the local AI Core: ServingTemplate parsing/rendering and fault triggers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from aicore_local.faults import Faults, FaultSpecError, Trigger
from aicore_local.templates import (
    TemplateError,
    UnresolvedPlaceholder,
    load_templates,
    parse_template,
    render,
)

TEMPLATES = Path(__file__).parents[1] / "data" / "aicore-templates"


def infinity_template() -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load((TEMPLATES / "infinity-test.yaml").read_text())
    return doc


def test_template_maps_to_scenario_and_executable() -> None:
    t = parse_template(infinity_template(), "infinity-test.yaml")
    assert (t.scenario_id, t.executable_id, t.version) == (
        "aicore-local-test",
        "aicore-local-infinity",
        "0.1.0",
    )
    assert [p.name for p in t.parameters] == ["modelName", "resourcePlan", "batchSize", "image"]
    assert t.artifacts[0].name == "modelArtifact" and t.artifacts[0].kind == "model"


def test_render_uses_bindings_then_defaults() -> None:
    t = parse_template(infinity_template(), "x")
    r = render(t, {"modelName": "m", "batchSize": "8"}, {"modelArtifact": "file:///models/m"})
    assert r.env == {
        "MODEL_SERVE_NAME": "m",
        "STORAGE_URI": "file:///models/m",
        "BATCH_SIZE": "8",
        "URL_PRE_FIX": "/v1",
    }
    assert r.resource_plan == "starter"  # the template default
    assert r.container["image"] == "localhost/embedding-infinity:dev"


@pytest.mark.parametrize(
    ("params", "artifacts", "missing"),
    [
        ({}, {"modelArtifact": "file:///m"}, "modelName"),
        ({"modelName": "m"}, {}, "modelArtifact"),
    ],
)
def test_unresolved_placeholder_names_it(
    params: dict[str, str], artifacts: dict[str, str], missing: str
) -> None:
    t = parse_template(infinity_template(), "x")
    with pytest.raises(UnresolvedPlaceholder) as err:
        render(t, params, artifacts)
    assert f"'dict object' has no attribute '{missing}'." in err.value.api_message


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda d: d["metadata"].pop("name"), "metadata.name"),
        (
            lambda d: d["metadata"]["labels"].pop("scenarios.ai.sap.com/id"),
            "scenarios.ai.sap.com/id",
        ),
        (lambda d: d["metadata"]["labels"].pop("ai.sap.com/version"), "ai.sap.com/version"),
        (
            lambda d: d["metadata"]["annotations"].pop("executables.ai.sap.com/name"),
            "executables.ai.sap.com/name",
        ),
        (lambda d: d["spec"]["inputs"].pop("parameters"), "at least one input parameter"),
    ],
)
def test_invalid_templates_are_refused_with_the_field(edit: Any, message: str) -> None:
    doc = infinity_template()
    edit(doc)
    with pytest.raises(TemplateError, match=message):
        parse_template(doc, "x")


def test_duplicate_executables_are_reported(tmp_path: Path) -> None:
    text = (TEMPLATES / "infinity-test.yaml").read_text()
    (tmp_path / "a.yaml").write_text(text)
    (tmp_path / "b.yaml").write_text(text)
    found, errors = load_templates([tmp_path, tmp_path / "missing"])
    assert list(found) == ["aicore-local-infinity"]
    assert any("already defined" in e for e in errors)
    assert any("does not exist" in e for e in errors)


def test_triggers_fire_for_count_or_rate() -> None:
    count = Trigger(count=2)
    assert [count.fire() for _ in range(4)] == [True, True, False, False]
    rate = Trigger(rate=0.25)
    assert [rate.fire() for _ in range(8)].count(True) == 2


def test_fault_spec_errors_name_the_key() -> None:
    faults = Faults()
    with pytest.raises(FaultSpecError, match="server_error.status"):
        faults.configure({"server_error": {"status": 404}})
    with pytest.raises(FaultSpecError, match="either count or rate"):
        faults.configure({"rate_limit": {"count": 1, "rate": 0.5}})
    faults.configure({"rate_limit": {"count": 1}, "runtime": "noop"})
    assert faults.pick_http("/v2/lm/meta") is not None and faults.pick_http("/v2/lm/meta") is None
    faults.clear()
    assert faults.runtime == "process" and not faults.http
