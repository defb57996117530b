"""The Argo CD health check (manifests/argocd/health.lua), run by a real Lua 5.1 interpreter.

Argo CD runs health checks in gopher-lua (Lua 5.1 semantics); we run the same file under `lua5.1`
through tests/data/argocd/run_health.lua, which sets the global `obj` as Argo CD does. Cases live in
Argo CD's own `health_test.yaml` layout so the check can be contributed upstream unchanged.
The same cases are also judged by Argo CD itself: `argocd admin settings resource-overrides
health` (the pinned release, built by `make argocd`) loads manifests/argocd/argocd-cm-patch.yaml
and runs gitops-engine's GetResourceHealth, the function the application controller calls.
Also checks that the argocd-cm snippet embeds health.lua verbatim and that the example
Application carries the sync options docs/gitops.md promises.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any, NoReturn

import pytest
import yaml

from testcluster import argocd

ROOT = Path(__file__).resolve().parents[2]
ARGOCD = ROOT / "manifests" / "argocd"
HEALTH_LUA = ARGOCD / "health.lua"
DATA = ROOT / "tests" / "data" / "argocd"
HARNESS = DATA / "run_health.lua"
DELETING = DATA / "deleting.yaml"
CM_KEY = "resource.customizations.health.embeddings.ai_EmbeddingModel"


class _KubeYAMLLoader(yaml.SafeLoader):
    """Keeps timestamps as strings, as Argo CD (Go YAML to unstructured) hands them to Lua."""


_KubeYAMLLoader.add_constructor("tag:yaml.org,2002:timestamp", yaml.SafeLoader.construct_yaml_str)


def _load(path: Path) -> Any:
    return yaml.load(path.read_text(encoding="utf-8"), Loader=_KubeYAMLLoader)


def _lua_string(text: str) -> str:
    # NB: byte-wise decimal escapes are valid Lua 5.1 and keep UTF-8 intact.
    out = []
    for byte in text.encode("utf-8"):
        char = chr(byte)
        out.append(char if 32 <= byte < 127 and char not in '"\\' else f"\\{byte}")
    return '"' + "".join(out) + '"'


def to_lua(value: Any) -> str:
    """A Lua table literal for a decoded YAML/JSON value (what Argo CD passes as `obj`)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return _lua_string(value)
    if isinstance(value, list):
        if any(item is None for item in value):
            raise ValueError("null inside a list has no Lua 5.1 equivalent (it ends the array)")
        return "{" + ", ".join(to_lua(item) for item in value) + "}"
    if isinstance(value, dict):
        # null fields are absent to Lua, exactly as Argo CD passes them.
        items = (
            f"[{_lua_string(str(k))}] = {to_lua(v)}" for k, v in value.items() if v is not None
        )
        return "{" + ", ".join(items) + "}"
    raise TypeError(f"cannot pass {type(value).__name__} to Lua: {value!r}")


def _missing(hint: str) -> NoReturn:
    if os.environ.get("CI", "").lower() not in ("", "0", "false"):
        pytest.fail(f"{hint} (CI is set, so this is an error, not a skip)")
    pytest.skip(hint)


@pytest.fixture(scope="module")
def lua() -> str:
    found = shutil.which("lua5.1")
    if found:
        return found
    _missing("lua5.1 is not installed: run scripts/ensure-lua.sh")


@pytest.fixture(scope="module")
def argocd_bin() -> Path:
    path = argocd.binary_path()
    if path.is_file() and os.access(path, os.X_OK):
        return path
    _missing(f"Argo CD is not built at {path}: run `make argocd`")


def argocd_health(binary: Path, obj_path: Path, tmp_path: Path) -> tuple[str, str]:
    """Argo CD's verdict on one object, with the shipped argocd-cm patch."""
    proc = subprocess.run(
        [str(binary), "admin", "settings", "resource-overrides", "health", str(obj_path),
         "--argocd-cm-path", str(ARGOCD / "argocd-cm-patch.yaml")],
        env={**os.environ, "ARGOCD_BINARY_NAME": "argocd", "HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )  # fmt: skip
    assert proc.returncode == 0, f"argocd admin failed (rc={proc.returncode}): {proc.stderr}"
    status_line, _, rest = proc.stdout.partition("\n")
    assert status_line.startswith("STATUS: ") and rest.startswith("MESSAGE: "), proc.stdout
    return status_line.removeprefix("STATUS: "), rest.removeprefix("MESSAGE: ").rstrip("\n")


def run_health(lua: str, obj: Any, script: Path = HEALTH_LUA) -> tuple[str, str]:
    proc = subprocess.run(
        [lua, str(HARNESS), str(script)],
        input="return " + to_lua(obj),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert proc.returncode == 0, f"lua5.1 failed (rc={proc.returncode}): {proc.stderr}"
    status, _, message = proc.stdout.partition("\n")
    return status, message


CASES: list[dict[str, Any]] = _load(DATA / "health_test.yaml")["tests"]


@pytest.mark.parametrize("case", CASES, ids=[Path(c["inputPath"]).stem for c in CASES])
def test_health(lua: str, case: dict[str, Any]) -> None:
    obj = _load(DATA / case["inputPath"])
    assert (obj["apiVersion"], obj["kind"]) == ("embeddings.ai/v1alpha1", "EmbeddingModel")
    status, message = run_health(lua, obj)
    expected = case["healthStatus"]
    assert (status, message) == (expected["status"], expected["message"])


@pytest.mark.parametrize("case", CASES, ids=[Path(c["inputPath"]).stem for c in CASES])
def test_health_judged_by_argo_cd(argocd_bin: Path, case: dict[str, Any], tmp_path: Path) -> None:
    expected = case["healthStatus"]
    verdict = argocd_health(argocd_bin, DATA / case["inputPath"], tmp_path)
    assert verdict == (expected["status"], expected["message"])


def test_argo_cd_answers_for_a_deleted_object_before_the_script(
    argocd_bin: Path, lua: str, tmp_path: Path
) -> None:
    # Why health.lua has no deletion branch: Argo CD never runs it for such an object.
    assert argocd_health(argocd_bin, DELETING, tmp_path) == ("Progressing", "Pending deletion")
    # The script alone would say something else, so the answer above is Argo CD's, not ours.
    assert run_health(lua, _load(DELETING))[1] != "Pending deletion"


def test_every_fixture_has_a_case() -> None:
    listed = {DATA / c["inputPath"] for c in CASES}
    on_disk = set((DATA / "testdata").glob("*.yaml"))
    assert on_disk == listed, "each testdata/*.yaml needs exactly one entry in health_test.yaml"


def test_harness_rejects_an_invalid_status(lua: str, tmp_path: Path) -> None:
    # The harness must fail loudly, like Argo CD does, or a broken health.lua could pass.
    bogus = tmp_path / "bogus.lua"
    bogus.write_text('return { status = "Fine", message = "x" }\n', encoding="utf-8")
    with pytest.raises(AssertionError, match="no valid status"):
        run_health(lua, {"metadata": {}}, script=bogus)


def test_harness_hides_libraries_argo_cd_does_not_open(lua: str, tmp_path: Path) -> None:
    # Without useOpenLibs Argo CD gives a check no `string`/`math`; health.lua must not need them.
    uses_string = tmp_path / "uses_string.lua"
    uses_string.write_text('return { status = string.upper("healthy") }\n', encoding="utf-8")
    with pytest.raises(AssertionError, match="attempt to index global 'string'"):
        run_health(lua, {"metadata": {}}, script=uses_string)


def test_lua_literal_escapes_round_trip(lua: str) -> None:
    # Quotes, backslashes, newlines and non-ASCII reach Lua byte for byte.
    tricky = 'say "hi"\\ \n\t caf\u00e9 \u2192 ok'
    obj = {
        "metadata": {"generation": 1},
        "status": {
            "observedGeneration": 1,
            "conditions": [{"type": "Ready", "status": "Unknown", "message": tricky}],
        },
    }
    assert run_health(lua, obj) == ("Progressing", tricky)


def test_argocd_cm_patch_embeds_health_lua_verbatim() -> None:
    cm = _load(ARGOCD / "argocd-cm-patch.yaml")
    assert (cm["kind"], cm["metadata"]["name"]) == ("ConfigMap", "argocd-cm")
    assert cm["data"][CM_KEY] == HEALTH_LUA.read_text(encoding="utf-8"), (
        "argocd-cm-patch.yaml drifted from health.lua: regenerate it with the command in its header"
    )


def test_application_syncs_examples_with_skip_dry_run() -> None:
    app = _load(ARGOCD / "application.yaml")
    assert (app["apiVersion"], app["kind"]) == ("argoproj.io/v1alpha1", "Application")
    assert app["spec"]["source"]["path"] == "manifests/examples"
    assert "SkipDryRunOnMissingResource=true" in app["spec"]["syncPolicy"]["syncOptions"]
    # A first sync with the CRD may need a retry (docs/gitops.md): manual syncs get none without.
    assert app["spec"]["syncPolicy"]["retry"]["limit"] >= 2
