"""The docs keep up with the code: every Stalled reason the operator can report has a row in
docs/troubleshooting.md, every docs page is linked from README.md, every relative link in docs/
resolves, and the API reference covers every spec and status field and every CEL rule.

Reasons are found by reading the source (ast), not by importing a list, so a new
`Outcome.stalled(Reason.X, ...)` or `Stall(Reason.X, ...)` anywhere in the operator fails this test
until the table explains it.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Any, get_args, get_origin

import pytest
from pydantic import BaseModel

from embedding_operator.api.conditions import Reason
from embedding_operator.api.reference import render_reference
from embedding_operator.api.spec import SPEC_RULES, EmbeddingModelSpec, Replicas
from embedding_operator.api.status import EmbeddingModelStatus

ROOT = Path(__file__).resolve().parents[2]
SOURCE = ROOT / "operator" / "embedding_operator"
DOCS = ROOT / "docs"
TROUBLESHOOTING = DOCS / "troubleshooting.md"
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")


def _reason_member(node: ast.expr) -> str | None:
    """`Reason.X` → "X"."""
    if (
        isinstance(node, ast.Attribute)
        and isinstance(node.value, ast.Name)
        and node.value.id == "Reason"
    ):
        return node.attr
    return None


def stalled_reasons_in_code() -> dict[str, set[str]]:
    """Reason member → the modules that report it as Stalled."""
    found: dict[str, set[str]] = {}
    for path in sorted(SOURCE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Call) or not node.args:
                continue
            func = node.func
            is_stalled = (
                isinstance(func, ast.Attribute)
                and func.attr == "stalled"
                and isinstance(func.value, ast.Name)
                and func.value.id == "Outcome"
            )
            is_stall = isinstance(func, ast.Name) and func.id in ("Stall", "SecretProblem")
            member = _reason_member(node.args[0])
            if (is_stalled or is_stall) and member is not None:
                found.setdefault(member, set()).add(str(path.relative_to(SOURCE)))
    return found


def stalled_section_of_the_enum() -> list[str]:
    """Members listed under the `# Stalled=True` comment of `class Reason` in conditions.py."""
    lines = (SOURCE / "api" / "conditions.py").read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("class Reason("))
    members, section = [], ""
    for line in lines[start + 1 :]:
        if line and not line.startswith(" "):
            break  # end of the class body
        text = line.strip()
        if text.startswith("#"):
            section = text
        elif section.startswith("# Stalled") and (m := re.match(r"([A-Z_]+)\s*=", text)):
            members.append(m.group(1))
    return members


def troubleshooting_rows(heading: str) -> dict[str, str]:
    """First-column reason → the whole row, for the table under `## heading`."""
    text = TROUBLESHOOTING.read_text()
    match = re.search(rf"^## {re.escape(heading)}\n(.*?)(?=^## |\Z)", text, re.M | re.S)
    assert match, f"docs/troubleshooting.md has no '## {heading}' section"
    rows = {}
    for line in match.group(1).splitlines():
        if cell := re.match(r"\|\s*`([A-Za-z]+)`", line):
            rows[cell.group(1)] = line
    return rows


def test_the_source_scan_finds_the_reasons_we_know_of():
    # Guards the scanner itself: if these stop being found, the parsing broke, not the docs.
    found = stalled_reasons_in_code()
    assert {"INVALID_SPEC", "SECRET_NOT_FOUND", "DEPLOYMENT_DEAD", "KSERVE_NOT_INSTALLED"} <= set(
        found
    ), found
    assert "SECRET_NOT_FOUND" in stalled_section_of_the_enum()
    assert "SUSPENDED" not in stalled_section_of_the_enum()


def test_every_stalled_reason_has_a_troubleshooting_row():
    rows = troubleshooting_rows("Stalled reasons")
    members = set(stalled_reasons_in_code()) | set(stalled_section_of_the_enum())
    missing = sorted(f"{Reason[m].value} (Reason.{m})" for m in members if Reason[m] not in rows)
    assert not missing, f"add a row to docs/troubleshooting.md '## Stalled reasons' for: {missing}"
    for member in members:
        row = rows[Reason[member].value]
        cells = [c.strip() for c in row.strip("|").split(" | ")]
        assert len(cells) == 4 and all(cells), f"incomplete row for {member}: {row}"


def test_reasons_reported_as_stalled_are_in_the_enums_stalled_section():
    # A reason used for Stalled but filed under another section would mislead both readers.
    misfiled = set(stalled_reasons_in_code()) - set(stalled_section_of_the_enum())
    assert not misfiled, f"move these to the '# Stalled=True' section of Reason: {misfiled}"


def test_every_other_reason_is_explained_too():
    stalled = {Reason[m] for m in stalled_section_of_the_enum()}
    text = "\n".join(troubleshooting_rows("Other reasons").values())
    missing = [r.value for r in Reason if r not in stalled and f"`{r.value}`" not in text]
    assert not missing, f"add to '## Other reasons' in docs/troubleshooting.md: {missing}"


def doc_pages() -> list[Path]:
    return sorted(DOCS.glob("*.md"))


def test_every_docs_page_is_linked_from_the_readme():
    readme = (ROOT / "README.md").read_text()
    targets = {t.split("#")[0].removeprefix("./") for t in LINK.findall(readme)}
    missing = [f"docs/{p.name}" for p in doc_pages() if f"docs/{p.name}" not in targets]
    assert not missing, f"README.md does not link these docs pages: {missing}"


@pytest.mark.parametrize("page", doc_pages(), ids=lambda p: p.name)
def test_relative_links_in_docs_resolve(page: Path):
    broken = []
    prose = re.sub(r"`[^`\n]*`", "", page.read_text())  # code spans hold regexes, not links
    for target in LINK.findall(prose):
        if re.match(r"[a-z][a-z0-9+.-]*:", target) or target.startswith("#"):
            continue  # a URL, or an anchor in the same page
        path = target.split("#")[0]
        if not (page.parent / path).exists():
            broken.append(target)
    assert not broken, f"{page.name} links to missing files: {broken}"


def _models_in(annotation: Any, in_list: bool = False) -> list[tuple[type[BaseModel], bool]]:
    """The pydantic models inside an annotation (`X | None`, `list[X]`), and whether in a list."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [(annotation, in_list)]
    inner_list = in_list or get_origin(annotation) is list
    return [m for arg in get_args(annotation) for m in _models_in(arg, inner_list)]


def _paths(model: type[BaseModel], prefix: str) -> list[str]:
    """Every field path of a pydantic model, camelCase, `[]` for list items."""
    out = []
    for name, info in model.model_fields.items():
        path = f"{prefix}.{info.alias or name}"
        out.append(path)
        for inner, in_list in _models_in(info.annotation):
            out += _paths(inner, path + ("[]" if in_list else ""))
    return out


def test_api_reference_has_a_row_for_every_field_and_every_cel_rule():
    text = render_reference()
    fields = _paths(EmbeddingModelSpec, "spec") + _paths(EmbeddingModelStatus, "status")
    assert "spec.serving.env[].name" in fields and "status.conditions[].reason" in fields
    missing = [f for f in fields if f"| `{f}` |" not in text]
    assert not missing, missing
    replicas_rules = Replicas.model_config["json_schema_extra"]["x-kubernetes-validations"]  # type: ignore[index]
    for rule in [*SPEC_RULES, *replicas_rules]:
        assert rule["message"] in text, rule  # type: ignore[index]
