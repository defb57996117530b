"""The AI API (`/v2/lm/*`): meta, scenarios, executables, artifacts, configurations, deployments
and deployment logs, with the request validation and response shapes of aicore-api.md §3."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .endpoint import (
    Ctx,
    csv_param,
    endpoint,
    int_param,
    json_body,
    label_selector,
    labels_match,
    page,
    param,
    search_match,
    text_count,
)
from .errors import ApiError, not_found
from .model import (
    DEPLOYMENT_STATUSES,
    Artifact,
    Configuration,
    Deployment,
    new_uuid,
    now,
    rfc3339,
)
from .state import Emulator
from .templates import ServingTemplate

NAME_PATTERN = re.compile(r"""^[\w\s.!?,;:\[\](){}<>"'=+*/\\^&%@~$#|-]*$""")
URL_PATTERN = re.compile(r"^([a-z0-9-]+)://.+")
ARTIFACT_LABEL_KEY = re.compile(r"^ext\.ai\.sap\.com/[\w.-]+$")
ARTIFACT_KINDS = ("model", "dataset", "resultset", "other")

META = {
    "runtimeIdentifier": "aicore",
    "runtimeApiVersion": "2.40.0",
    "description": "Local AI Core (emulator of the SAP AI Core REST API)",
    "aiApi": {
        "version": "2.31.0",
        "capabilities": {
            "multitenant": True,
            "shareable": True,
            "staticDeployments": True,
            "userDeployments": True,
            "userExecutions": False,
            "timeToLiveDeployments": True,
            "executionSchedules": False,
            "logs": {"executions": False, "deployments": True},
            "bulkUpdates": {"executions": False, "deployments": False},
        },
        "limits": {
            "executions": {"maxRunningCount": -1},
            "deployments": {"maxRunningCount": -1},
            "timeToLiveDeployments": {"minimum": "10m", "maximum": "-1"},
        },
    },
    "extensions": {"resourceGroups": {"version": "1.2.0"}},
}


# -- wire shapes derived from templates ------------------------------------------------------
def scenario_wire(
    emu: Emulator, scenario_id: str, templates: list[ServingTemplate]
) -> dict[str, Any]:
    first = templates[0]
    labels = [
        {"key": k, "value": v}
        for k, v in first.raw_labels.items()
        if re.match(r"^(scenarios|ext)\.ai\.sap\.com/[\w.-]+$", k)
        and k != "scenarios.ai.sap.com/id"
    ]
    out: dict[str, Any] = {
        "id": scenario_id,
        "name": first.scenario_name,
        "labels": labels,
        "createdAt": rfc3339(emu.synced_at),
        "modifiedAt": rfc3339(emu.synced_at),
    }
    if first.scenario_description:
        out["description"] = first.scenario_description
    return out


def executable_wire(emu: Emulator, t: ServingTemplate) -> dict[str, Any]:
    params = []
    for p in t.parameters:
        item: dict[str, Any] = {"name": p.name, "type": "string"}
        if p.default is not None:
            item["default"] = p.default
        if p.description:
            item["description"] = p.description
        params.append(item)
    artifacts = []
    for a in t.artifacts:
        art: dict[str, Any] = {"name": a.name}
        if a.kind:
            art["kind"] = a.kind
        if a.description:
            art["description"] = a.description
        if a.labels:
            art["labels"] = [{"key": k, "value": v} for k, v in a.labels]
        artifacts.append(art)
    out: dict[str, Any] = {
        "id": t.executable_id,
        "name": t.executable_name,
        "scenarioId": t.scenario_id,
        "versionId": t.version,
        "deployable": True,
        "parameters": params,
        "inputArtifacts": artifacts,
        "labels": [
            {"key": k, "value": v}
            for k, v in t.raw_labels.items()
            if re.match(r"^(executables|ext)\.ai\.sap\.com/[\w.-]+$", k)
        ],
        "createdAt": rfc3339(emu.synced_at),
        "modifiedAt": rfc3339(emu.synced_at),
    }
    if t.executable_description:
        out["description"] = t.executable_description
    return out


def _scenario_templates(ctx: Ctx, scenario_id: str) -> list[ServingTemplate]:
    templates = ctx.emu.scenarios().get(scenario_id)
    if not templates:
        raise not_found("Scenario", scenario_id)
    return templates


def _expand(ctx: Ctx, request: Request, item: dict[str, Any], scenario_id: str) -> dict[str, Any]:
    if param(request, "expand") == "scenario":
        templates = ctx.emu.scenarios().get(scenario_id)
        if templates:
            item["scenario"] = scenario_wire(ctx.emu, scenario_id, templates)
    return item


def listing(resources: list[dict[str, Any]], total: int) -> JSONResponse:
    # NB: `count` is the number of matches before paging (unconfirmed on real AI Core, §9.3).
    return JSONResponse({"count": total, "resources": resources})


# -- meta, scenarios, executables --------------------------------------------------------------
async def get_meta(request: Request, ctx: Ctx) -> Response:
    return JSONResponse(META)


async def list_scenarios(request: Request, ctx: Ctx) -> Response:
    items = [scenario_wire(ctx.emu, sid, ts) for sid, ts in sorted(ctx.emu.scenarios().items())]
    return listing(items, len(items))


async def get_scenario(request: Request, ctx: Ctx) -> Response:
    sid = request.path_params["scenario_id"]
    return JSONResponse(scenario_wire(ctx.emu, sid, _scenario_templates(ctx, sid)))


async def list_versions(request: Request, ctx: Ctx) -> Response:
    sid = request.path_params["scenario_id"]
    templates = _scenario_templates(ctx, sid)
    versions = sorted({t.version for t in templates})
    items = [
        {
            "id": v,
            "scenarioId": sid,
            "createdAt": rfc3339(ctx.emu.synced_at),
            "modifiedAt": rfc3339(ctx.emu.synced_at),
        }
        for v in versions
    ]
    return listing(items, len(items))


async def list_executables(request: Request, ctx: Ctx) -> Response:
    sid = request.path_params["scenario_id"]
    templates = _scenario_templates(ctx, sid)
    version = request.query_params.get("versionId")
    items = [
        executable_wire(ctx.emu, t)
        for t in sorted(templates, key=lambda t: t.executable_id)
        if version is None or t.version == version
    ]
    return listing(items, len(items))


async def get_executable(request: Request, ctx: Ctx) -> Response:
    sid = request.path_params["scenario_id"]
    eid = request.path_params["executable_id"]
    t = ctx.emu.templates.get(eid)
    if t is None or t.scenario_id != sid:
        raise not_found("Executable", eid)
    return JSONResponse(executable_wire(ctx.emu, t))


# -- artifacts ------------------------------------------------------------------------------
def _labels(body: dict[str, Any], key_pattern: re.Pattern[str]) -> list[tuple[str, str]]:
    raw = body.get("labels") or []
    if not isinstance(raw, list):
        raise ApiError(400, "labels must be a list of {key, value} objects")
    out = []
    for item in raw:
        if not isinstance(item, dict) or not isinstance(item.get("key"), str):
            raise ApiError(400, "labels must be a list of {key, value} objects")
        key, value = item["key"], str(item.get("value", ""))
        if not key_pattern.match(key) or len(key) > 256:
            raise ApiError(400, f"Invalid label key '{key}': it must match {key_pattern.pattern}")
        if len(value) > 5000:
            raise ApiError(400, f"Label '{key}': the value exceeds 5000 characters")
        out.append((key, value))
    return out


def _name(body: dict[str, Any], what: str) -> str:
    name = body.get("name")
    if not isinstance(name, str) or not name:
        raise ApiError(400, f"{what}: field 'name' is required")
    if len(name) > 256 or not NAME_PATTERN.match(name):
        raise ApiError(
            400, f"{what}: invalid name '{name}' (at most 256 characters of {NAME_PATTERN.pattern})"
        )
    return name


def _required_str(body: dict[str, Any], field: str, what: str) -> str:
    value = body.get(field)
    if not isinstance(value, str) or not value:
        raise ApiError(400, f"{what}: field '{field}' is required")
    return value


async def create_artifact(request: Request, ctx: Ctx) -> Response:
    body = await json_body(request)
    name = _name(body, "Artifact")
    kind = _required_str(body, "kind", "Artifact")
    if kind not in ARTIFACT_KINDS:
        raise ApiError(
            400, f"Artifact: kind must be one of {', '.join(ARTIFACT_KINDS)}, got '{kind}'"
        )
    url = _required_str(body, "url", "Artifact")
    if len(url) > 1024 or not URL_PATTERN.match(url):
        raise ApiError(400, f"Artifact: url '{url}' must look like ai://<objectStoreSecret>/<path>")
    scenario_id = _required_str(body, "scenarioId", "Artifact")
    description = body.get("description")
    if description is not None and (not isinstance(description, str) or len(description) > 5000):
        raise ApiError(400, "Artifact: description must be a string of at most 5000 characters")
    artifact = Artifact(
        id=new_uuid(),
        resource_group=ctx.rg,
        name=name,
        kind=kind,
        url=url,
        scenario_id=scenario_id,
        description=description,
        labels=_labels(body, ARTIFACT_LABEL_KEY),
        created_at=now(),
    )
    ctx.emu.artifacts[artifact.id] = artifact
    return JSONResponse(
        {"id": artifact.id, "message": "Artifact acknowledged", "url": artifact.url},
        status_code=201,
        headers=_location(request, f"/v2/lm/artifacts/{artifact.id}"),
    )


def _location(request: Request, path: str) -> dict[str, str]:
    base = str(request.base_url).rstrip("/")
    return {"Location": base + path, "Content-Location": base + path}


def _artifacts(request: Request, ctx: Ctx) -> list[Artifact]:
    q = request.query_params
    selector = label_selector(csv_param(request, "artifactLabelSelector"))
    items = []
    for a in ctx.emu.artifacts.values():
        if a.resource_group != ctx.rg:
            continue
        if q.get("scenarioId") and a.scenario_id != q["scenarioId"]:
            continue
        if q.get("executionId"):
            continue  # the emulator has no executions, so nothing was produced by one
        if q.get("name") and a.name != q["name"]:
            continue
        if q.get("kind") and a.kind != q["kind"]:
            continue
        if not labels_match(a.labels, selector):
            continue
        if not search_match(request, a.name, a.description, a.url):
            continue
        items.append(a)
    return sorted(items, key=lambda a: a.created_at)


async def list_artifacts(request: Request, ctx: Ctx) -> Response:
    items = _artifacts(request, ctx)
    return listing(
        [_expand(ctx, request, a.wire(), a.scenario_id) for a in page(request, items)], len(items)
    )


async def count_artifacts(request: Request, ctx: Ctx) -> Response:
    return text_count(len(_artifacts(request, ctx)))


async def get_artifact(request: Request, ctx: Ctx) -> Response:
    aid = request.path_params["artifact_id"]
    a = ctx.emu.artifacts.get(aid)
    if a is None or a.resource_group != ctx.rg:
        raise not_found("Artifact", aid)
    return JSONResponse(_expand(ctx, request, a.wire(), a.scenario_id))


# -- configurations -------------------------------------------------------------------------
def _bindings(body: dict[str, Any], field: str, value_key: str) -> list[tuple[str, str]]:
    raw = body.get(field) or []
    if not isinstance(raw, list):
        raise ApiError(400, f"Configuration: {field} must be a list")
    if len(raw) > 1000:
        raise ApiError(400, f"Configuration: {field} allows at most 1000 items")
    out = []
    for item in raw:
        if not isinstance(item, dict) or not isinstance(item.get("key"), str):
            raise ApiError(400, f"Configuration: every {field} item needs a string 'key'")
        key = item["key"]
        value = item.get(value_key)
        if not isinstance(value, str):
            raise ApiError(400, f"Configuration: {field} '{key}' needs a string '{value_key}'")
        if len(key) > 256:
            raise ApiError(400, f"Configuration: {field} key '{key[:40]}…' exceeds 256 characters")
        if len(value) > 5000:
            raise ApiError(400, f"Configuration: {field} '{key}' value exceeds 5000 characters")
        out.append((key, value))
    return out


async def create_configuration(request: Request, ctx: Ctx) -> Response:
    body = await json_body(request)
    name = _name(body, "Configuration")
    scenario_id = _required_str(body, "scenarioId", "Configuration")
    executable_id = _required_str(body, "executableId", "Configuration")
    t = ctx.emu.templates.get(executable_id)
    if t is None or t.scenario_id != scenario_id:
        raise ApiError(
            400,
            f"Could not create configuration, because executable {executable_id} for scenario "
            f"{scenario_id} is not found",
        )
    params = _bindings(body, "parameterBindings", "value")
    artifacts = _bindings(body, "inputArtifactBindings", "artifactId")
    for key, artifact_id in artifacts:
        a = ctx.emu.artifacts.get(artifact_id)
        if a is None or a.resource_group != ctx.rg:
            raise ApiError(
                400, f"Configuration: input artifact '{key}': artifact {artifact_id} not found"
            )
    config = Configuration(
        id=new_uuid(),
        resource_group=ctx.rg,
        name=name,
        scenario_id=scenario_id,
        executable_id=executable_id,
        parameter_bindings=params,
        artifact_bindings=artifacts,
        created_at=now(),
    )
    ctx.emu.configurations[config.id] = config
    return JSONResponse(
        {"id": config.id, "message": "Configuration created"},
        status_code=201,
        headers=_location(request, f"/v2/lm/configurations/{config.id}"),
    )


def _configurations(request: Request, ctx: Ctx) -> list[Configuration]:
    scenario_id = request.query_params.get("scenarioId")
    executables = csv_param(request, "executableIds")
    items = [
        c
        for c in ctx.emu.configurations.values()
        if c.resource_group == ctx.rg
        and (not scenario_id or c.scenario_id == scenario_id)
        and (not executables or c.executable_id in executables)
        and search_match(request, c.name)
    ]
    return sorted(items, key=lambda c: c.created_at)


async def list_configurations(request: Request, ctx: Ctx) -> Response:
    items = _configurations(request, ctx)
    return listing(
        [_expand(ctx, request, c.wire(), c.scenario_id) for c in page(request, items)], len(items)
    )


async def count_configurations(request: Request, ctx: Ctx) -> Response:
    return text_count(len(_configurations(request, ctx)))


def _configuration(ctx: Ctx, cid: str) -> Configuration:
    c = ctx.emu.configurations.get(cid)
    if c is None or c.resource_group != ctx.rg:
        raise not_found("Configuration", cid)
    return c


async def get_configuration(request: Request, ctx: Ctx) -> Response:
    c = _configuration(ctx, request.path_params["configuration_id"])
    return JSONResponse(_expand(ctx, request, c.wire(), c.scenario_id))


# -- deployments ----------------------------------------------------------------------------
async def create_deployment(request: Request, ctx: Ctx) -> Response:
    body = await json_body(request)
    cid = _required_str(body, "configurationId", "Deployment")
    config = ctx.emu.configurations.get(cid)
    if config is None or config.resource_group != ctx.rg:
        raise ApiError(
            400, f"Deployment: configuration {cid} does not exist in resource group {ctx.rg}"
        )
    ttl = body.get("ttl")
    if ttl is not None and not isinstance(ttl, str):
        raise ApiError(400, "Deployment: ttl must be a string such as 24H")
    dep = ctx.emu.lifecycle.create(ctx.rg, config, ttl)
    out: dict[str, Any] = {
        "id": dep.id,
        "message": "Deployment scheduled.",
        "deploymentUrl": "",
        "status": "UNKNOWN",
    }
    if ttl:
        out["ttl"] = ttl
    return JSONResponse(
        out, status_code=202, headers=_location(request, f"/v2/lm/deployments/{dep.id}")
    )


def _deployments(request: Request, ctx: Ctx) -> list[Deployment]:
    q = request.query_params
    executables = csv_param(request, "executableIds")
    status = q.get("status")
    if status and status not in DEPLOYMENT_STATUSES:
        raise ApiError(400, f"status must be one of {', '.join(DEPLOYMENT_STATUSES)}")
    items = [
        d
        for d in ctx.emu.deployments.values()
        if d.resource_group == ctx.rg
        and (not q.get("scenarioId") or d.scenario_id == q["scenarioId"])
        and (not q.get("configurationId") or d.configuration_id == q["configurationId"])
        and (not executables or d.executable_id in executables)
        and (not status or d.status == status)
    ]
    return sorted(items, key=lambda d: d.created_at)


def _select_status(request: Request) -> bool:
    select = param(request, "select")
    if select is None:
        return False
    if select != "status":
        raise ApiError(400, f"$select supports only 'status', got '{select}'")
    return True


async def list_deployments(request: Request, ctx: Ctx) -> Response:
    items = _deployments(request, ctx)
    status_only = _select_status(request)
    return listing(
        [d.wire_status() if status_only else d.wire() for d in page(request, items)], len(items)
    )


async def count_deployments(request: Request, ctx: Ctx) -> Response:
    return text_count(len(_deployments(request, ctx)))


def _deployment(ctx: Ctx, did: str) -> Deployment:
    d = ctx.emu.deployments.get(did)
    if d is None or d.resource_group != ctx.rg:
        raise not_found("Deployment", did)
    return d


async def get_deployment(request: Request, ctx: Ctx) -> Response:
    d = _deployment(ctx, request.path_params["deployment_id"])
    if _select_status(request):
        return JSONResponse(d.wire_status())
    return JSONResponse(d.wire(with_status_details=True))


async def patch_deployment(request: Request, ctx: Ctx) -> Response:
    d = _deployment(ctx, request.path_params["deployment_id"])
    body = await json_body(request)
    target = body.get("targetStatus")
    cid = body.get("configurationId")
    if target is not None and cid is not None:
        raise ApiError(400, "Give either targetStatus or configurationId, not both")
    if target is not None:
        if target != "STOPPED":
            raise ApiError(
                400,
                f"targetStatus '{target}' is not supported: only STOPPED is (to run a stopped "
                "deployment again, create a new deployment with the same configuration)",
            )
        ctx.emu.lifecycle.stop(d)
    elif cid is not None:
        if not isinstance(cid, str):
            raise ApiError(400, "configurationId must be a string")
        config = ctx.emu.configurations.get(cid)
        if config is None or config.resource_group != ctx.rg:
            raise ApiError(400, f"configuration {cid} does not exist in resource group {ctx.rg}")
        ctx.emu.lifecycle.update(ctx.rg, d, config)
    else:
        raise ApiError(400, "Give targetStatus (STOPPED) or configurationId")
    return JSONResponse(
        {"id": d.id, "message": "Deployment modification scheduled"}, status_code=202
    )


async def delete_deployment(request: Request, ctx: Ctx) -> Response:
    d = _deployment(ctx, request.path_params["deployment_id"])
    ctx.emu.lifecycle.delete(d)
    return JSONResponse(
        {"id": d.id, "message": "Deletion scheduled", "targetStatus": "DELETED"}, status_code=202
    )


async def bulk_patch_deployments(request: Request, ctx: Ctx) -> Response:
    raise ApiError(
        400,
        "Bulk updates of deployments are not enabled for this tenant "
        "(meta: aiApi.capabilities.bulkUpdates.deployments = false)",
    )


def _time_param(request: Request, name: str) -> float | None:
    raw = request.query_params.get(name)
    if not raw:
        return None
    try:
        return datetime.fromisoformat(raw.replace(" ", "+")).timestamp()
    except ValueError:
        raise ApiError(400, f"Query parameter {name} must be an RFC 3339 timestamp") from None


async def deployment_logs(request: Request, ctx: Ctx) -> Response:
    d = _deployment(ctx, request.path_params["deployment_id"])
    top = int_param(request, "top", 1000, 1, 5000)
    order = (param(request, "order") or "asc").lower()
    if order not in ("asc", "desc"):
        raise ApiError(400, "$order must be asc or desc")
    end = _time_param(request, "end") or now() + 1
    start = _time_param(request, "start")
    if start is None:
        start = end - 3600
    entries = [e for e in d.logs.entries if start <= e.timestamp <= end]
    if order == "desc":
        entries.reverse()
    return JSONResponse({"data": {"result": [e.wire() for e in entries[:top]]}})


def routes(emu: Emulator) -> list[Route]:
    def r(path: str, handler: Any, methods: list[str], rg: Any = "required") -> Route:
        return Route(path, endpoint(emu, handler, rg), methods=methods)

    lm = "/v2/lm"
    return [
        r(f"{lm}/meta", get_meta, ["GET"], "none"),
        r(f"{lm}/scenarios", list_scenarios, ["GET"]),
        r(f"{lm}/scenarios/{{scenario_id}}", get_scenario, ["GET"]),
        r(f"{lm}/scenarios/{{scenario_id}}/versions", list_versions, ["GET"]),
        r(f"{lm}/scenarios/{{scenario_id}}/executables", list_executables, ["GET"]),
        r(
            f"{lm}/scenarios/{{scenario_id}}/executables/{{executable_id}}",
            get_executable,
            ["GET"],
        ),
        r(f"{lm}/artifacts", list_artifacts, ["GET"]),
        r(f"{lm}/artifacts", create_artifact, ["POST"]),
        r(f"{lm}/artifacts/$count", count_artifacts, ["GET"]),
        r(f"{lm}/artifacts/{{artifact_id}}", get_artifact, ["GET"]),
        r(f"{lm}/configurations", list_configurations, ["GET"]),
        r(f"{lm}/configurations", create_configuration, ["POST"]),
        r(f"{lm}/configurations/$count", count_configurations, ["GET"]),
        r(f"{lm}/configurations/{{configuration_id}}", get_configuration, ["GET"]),
        r(f"{lm}/deployments", list_deployments, ["GET"]),
        r(f"{lm}/deployments", create_deployment, ["POST"]),
        r(f"{lm}/deployments", bulk_patch_deployments, ["PATCH"]),
        r(f"{lm}/deployments/$count", count_deployments, ["GET"]),
        r(f"{lm}/deployments/{{deployment_id}}", get_deployment, ["GET"]),
        r(f"{lm}/deployments/{{deployment_id}}", patch_deployment, ["PATCH"]),
        r(f"{lm}/deployments/{{deployment_id}}", delete_deployment, ["DELETE"]),
        # NB: the spec omits AI-Resource-Group here, but docs and the SDK send it.
        r(f"{lm}/deployments/{{deployment_id}}/logs", deployment_logs, ["GET"]),
    ]
