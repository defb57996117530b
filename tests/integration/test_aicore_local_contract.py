"""The local AI Core's wire contract where clients probe its edges (found by schemathesis against
AI Core's published OpenAPI spec): every JSON endpoint answers a body that is not UTF-8 with a 400
in AI Core's error shape, never a 500 with a text body.

The routes come from the emulator's own route table, so a new endpoint is checked without a test
naming it.
"""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest
from starlette.routing import Route

from aicore_local.server import build_app
from aicore_local.settings import Settings
from tests.fixtures.aicore import LocalAICore

pytestmark = pytest.mark.integration

ERROR_KEYS = {"code", "message", "requestId", "target", "details"}
NOT_UTF8 = b'{"name": "\xff\xfe"}'


def json_endpoints(tmp: Path) -> list[tuple[str, str]]:
    """(method, path) of every AI API and admin route that takes a body, path params filled."""
    app = build_app(Settings(data_dir=tmp, public_url="http://x", client_id="c", client_secret="s"))
    found = []
    for route in app.routes:
        if not isinstance(route, Route) or not route.path.startswith("/v2/"):
            continue
        for method in sorted((route.methods or set()) & {"POST", "PATCH", "PUT"}):
            found.append((method, re.sub(r"\{[^}]+\}", "x0000", route.path)))
    return found


ENDPOINTS = json_endpoints(Path("/nonexistent-aicore-local"))


def test_the_route_table_was_read():
    assert ("POST", "/v2/lm/deployments") in ENDPOINTS
    assert ("POST", "/v2/admin/resourceGroups") in ENDPOINTS


@pytest.mark.parametrize(("method", "path"), ENDPOINTS, ids=[f"{m} {p}" for m, p in ENDPOINTS])
def test_a_body_that_is_not_utf8_gets_ai_cores_error_shape(aicore: LocalAICore, method, path):
    response = httpx.request(
        method,
        aicore.url + path,
        content=NOT_UTF8,
        headers={**aicore.headers(), "Content-Type": "application/json"},
    )
    assert response.status_code < 500, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert set(response.json()["error"]) == ERROR_KEYS


def test_the_utf8_error_names_the_fix(aicore: LocalAICore):
    response = httpx.post(
        aicore.url + "/v2/lm/configurations", content=NOT_UTF8, headers=aicore.headers()
    )
    assert response.status_code == 400
    assert "UTF-8" in response.json()["error"]["message"]


@pytest.mark.parametrize(
    "label",
    [
        {"key": "ext.ai.sap.com/team", "value": "x" * 5001},
        {"key": "ext.ai.sap.com/team", "value": 7},
        {"key": "ext.ai.sap.com/team"},
    ],
    ids=["too-long", "not-a-string", "missing"],
)
def test_resource_group_label_values_are_checked(aicore: LocalAICore, label):
    response = httpx.post(
        aicore.url + "/v2/admin/resourceGroups",
        json={"resourceGroupId": "rg-label-check", "labels": [label]},
        headers={"Authorization": aicore.headers()["Authorization"]},
    )
    assert response.status_code == 400, response.text
    assert "ext.ai.sap.com/team" in response.json()["error"]["message"]
