"""The admin API (`/v2/admin/*`): resource groups, object store secrets, docker registry secrets,
git repositories and ArgoCD applications (the latter two re-read the template directories)."""

from __future__ import annotations

import asyncio
import re
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .endpoint import Ctx, bool_param, endpoint, int_param, json_body, label_selector, labels_match
from .errors import ApiError, not_found
from .model import Application, ObjectStoreSecret, Repository, ResourceGroup, now, rfc3339
from .state import Emulator

RG_ID = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9.-]{1,251}[a-zA-Z0-9]$")
RG_LABEL_VALUE_MAX = 5000  # spec BckndResourceGroupLabel.value maxLength
RG_LABEL_KEY = re.compile(r"^ext.ai.sap.com/(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]){1,48}$")
OSS_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
OSS_TYPES = ("S3", "azure", "gcs", "oss", "webhdfs")
DOCKER_NAME = re.compile(r"^[a-z0-9](?:_?[a-z0-9.\-]+)*[a-z0-9]$")
REPO_NAME = re.compile(r"^[a-z0-9\-]+$")
APP_NAME = re.compile(r"^[a-z0-9\-]+$")


def admin_page(request: Request, items: list[Any]) -> tuple[list[Any], int]:
    """`$top/$skip` paging; `count` is the total only with `$count=true` (spec)."""
    top = int_param(request, "top", 10000, 0, 100000)
    skip = int_param(request, "skip", 0, 0, 2**31)
    window = items[skip : skip + top]
    return window, len(items) if bool_param(request, "count") else len(window)


# -- resource groups ------------------------------------------------------------------------
def _rg_labels(body: dict[str, Any]) -> list[tuple[str, str]]:
    raw = body.get("labels") or []
    if not isinstance(raw, list):
        raise ApiError(400, "labels must be a list of {key, value} objects")
    out = []
    for item in raw:
        key = item.get("key") if isinstance(item, dict) else None
        if not isinstance(key, str) or len(key) > 63 or not RG_LABEL_KEY.match(key):
            raise ApiError(
                400, f"Invalid resource group label key {key!r}: use ext.ai.sap.com/<name>"
            )
        value = item.get("value")
        if not isinstance(value, str) or len(value) > RG_LABEL_VALUE_MAX:
            raise ApiError(
                400,
                f"Invalid value of resource group label {key!r}: "
                f"give a string of at most {RG_LABEL_VALUE_MAX} characters",
            )
        out.append((key, value))
    return out


async def create_rg(request: Request, ctx: Ctx) -> Response:
    body = await json_body(request)
    rid = body.get("resourceGroupId")
    if not isinstance(rid, str) or not RG_ID.match(rid):
        raise ApiError(
            400, "resourceGroupId must be 3-253 characters of letters, digits, '.' and '-'"
        )
    if rid in ctx.emu.resource_groups:
        raise ApiError(409, f"Resource group '{rid}' already exists", code="Conflict")
    rg = ResourceGroup(rid, _rg_labels(body), now(), status="PROVISIONING")
    ctx.emu.resource_groups[rid] = rg

    async def provision() -> None:
        await asyncio.sleep(ctx.emu.settings.rg_provision_s)
        rg.status = "PROVISIONED"

    ctx.emu.background(provision(), f"provision:{rid}")
    return JSONResponse(
        {"resourceGroupId": rid, "tenantId": "aicore-local-tenant", "zoneId": "aicore-local-zone"},
        status_code=202,
    )


async def list_rgs(request: Request, ctx: Ctx) -> Response:
    selector = label_selector(
        [s for s in (request.query_params.get("labelSelector") or "").split(",") if s]
    )
    items = [rg for rg in ctx.emu.resource_groups.values() if labels_match(rg.labels, selector)]
    window, count = admin_page(request, items)
    return JSONResponse({"count": count, "resources": [rg.wire() for rg in window]})


def _rg(ctx: Ctx, rid: str) -> ResourceGroup:
    rg = ctx.emu.resource_groups.get(rid)
    if rg is None:
        raise not_found("Resource group", rid)
    return rg


async def get_rg(request: Request, ctx: Ctx) -> Response:
    return JSONResponse(_rg(ctx, request.path_params["rg"]).wire())


async def patch_rg(request: Request, ctx: Ctx) -> Response:
    rg = _rg(ctx, request.path_params["rg"])
    rg.labels = _rg_labels(await json_body(request))
    return Response(status_code=202)


async def delete_rg(request: Request, ctx: Ctx) -> Response:
    emu = ctx.emu
    rg = _rg(ctx, request.path_params["rg"])
    rg.status = "DELETING"

    async def deprovision() -> None:
        for dep in [d for d in emu.deployments.values() if d.resource_group == rg.id]:
            await emu.lifecycle.stop_predictors(dep)
            emu.deployments.pop(dep.id, None)
        emu.artifacts = {k: a for k, a in emu.artifacts.items() if a.resource_group != rg.id}
        emu.configurations = {
            k: c for k, c in emu.configurations.items() if c.resource_group != rg.id
        }
        for key in [k for k in emu.object_store_secrets if k[0] == rg.id]:
            del emu.object_store_secrets[key]
        emu.resource_groups.pop(rg.id, None)

    emu.background(deprovision(), f"deprovision:{rg.id}")
    return JSONResponse(
        {"id": rg.id, "message": "Resource Group deletion scheduled"}, status_code=202
    )


# -- object store secrets ---------------------------------------------------------------------
def _oss_from_body(body: dict[str, Any], name: str) -> ObjectStoreSecret:
    stype = body.get("type")
    if stype not in OSS_TYPES:
        raise ApiError(400, f"Object store secret: type must be one of {', '.join(OSS_TYPES)}")
    if not isinstance(body.get("data"), dict):
        raise ApiError(
            400, "Object store secret: field 'data' (the credentials object) is required"
        )

    def opt(key: str) -> str | None:
        v = body.get(key)
        return None if v is None else str(v)

    return ObjectStoreSecret(
        name=name,
        type=str(stype),
        bucket=opt("bucket"),
        endpoint=opt("endpoint"),
        region=opt("region"),
        path_prefix=opt("pathPrefix"),
        verifyssl=opt("verifyssl"),
        usehttps=opt("usehttps") or "1",
        created_at=now(),
    )


async def create_oss(request: Request, ctx: Ctx) -> Response:
    body = await json_body(request)
    name = body.get("name")
    if not isinstance(name, str) or len(name) > 233 or not OSS_NAME.match(name):
        raise ApiError(400, "Object store secret: name must be a lowercase DNS name (max 233)")
    if (ctx.rg, name) in ctx.emu.object_store_secrets:
        raise ApiError(409, f"Object store secret '{name}' already exists", code="Conflict")
    ctx.emu.object_store_secrets[(ctx.rg, name)] = _oss_from_body(body, name)
    return JSONResponse({"message": "Secret has been created"}, status_code=202)


async def list_oss(request: Request, ctx: Ctx) -> Response:
    items = [s for (rg, _), s in sorted(ctx.emu.object_store_secrets.items()) if rg == ctx.rg]
    window, count = admin_page(request, items)
    return JSONResponse({"count": count, "resources": [s.wire() for s in window]})


def _oss(ctx: Ctx, name: str) -> ObjectStoreSecret:
    s = ctx.emu.object_store_secrets.get((ctx.rg, name))
    if s is None:
        raise not_found("Object store secret", name)
    return s


async def get_oss(request: Request, ctx: Ctx) -> Response:
    return JSONResponse(_oss(ctx, request.path_params["name"]).wire())


async def patch_oss(request: Request, ctx: Ctx) -> Response:
    name = request.path_params["name"]
    _oss(ctx, name)
    ctx.emu.object_store_secrets[(ctx.rg, name)] = _oss_from_body(await json_body(request), name)
    return JSONResponse({"id": name, "message": "Secret has been modified"}, status_code=202)


async def delete_oss(request: Request, ctx: Ctx) -> Response:
    name = request.path_params["name"]
    _oss(ctx, name)
    del ctx.emu.object_store_secrets[(ctx.rg, name)]
    return JSONResponse(
        {"id": name, "message": "Object Store Secret has been deleted"}, status_code=202
    )


# -- docker registry secrets ------------------------------------------------------------------
def _docker_data(body: dict[str, Any]) -> None:
    data = body.get("data")
    if not isinstance(data, dict) or set(data) != {".dockerconfigjson"}:
        raise ApiError(400, "Docker registry secret: data must hold exactly '.dockerconfigjson'")


async def create_docker(request: Request, ctx: Ctx) -> Response:
    body = await json_body(request)
    name = body.get("name")
    if not isinstance(name, str) or len(name) > 63 or not DOCKER_NAME.match(name):
        raise ApiError(400, "Docker registry secret: invalid name (lowercase, max 63)")
    _docker_data(body)
    if name in ctx.emu.docker_registry_secrets:
        raise ApiError(409, f"Docker registry secret '{name}' already exists", code="Conflict")
    ctx.emu.docker_registry_secrets[name] = now()
    return JSONResponse({"message": "Secret has been created"}, status_code=202)


async def list_docker(request: Request, ctx: Ctx) -> Response:
    window, count = admin_page(request, sorted(ctx.emu.docker_registry_secrets))
    return JSONResponse({"count": count, "resources": [{"name": n} for n in window]})


def _docker(ctx: Ctx, name: str) -> str:
    if name not in ctx.emu.docker_registry_secrets:
        raise not_found("Docker registry secret", name)
    return name


async def get_docker(request: Request, ctx: Ctx) -> Response:
    return JSONResponse({"name": _docker(ctx, request.path_params["name"])})


async def patch_docker(request: Request, ctx: Ctx) -> Response:
    name = _docker(ctx, request.path_params["name"])
    _docker_data(await json_body(request))
    return JSONResponse({"id": name, "message": "Secret has been modified"}, status_code=202)


async def delete_docker(request: Request, ctx: Ctx) -> Response:
    name = _docker(ctx, request.path_params["name"])
    del ctx.emu.docker_registry_secrets[name]
    return JSONResponse({"id": name, "message": "Secret has been deleted"}, status_code=202)


# -- repositories and applications --------------------------------------------------------------
def _repo_wire(r: Repository) -> dict[str, Any]:
    return {"name": r.name, "url": r.url, "status": "COMPLETED"}


async def create_repo(request: Request, ctx: Ctx) -> Response:
    body = await json_body(request)
    name, url = body.get("name"), body.get("url")
    if not isinstance(name, str) or not 1 <= len(name) <= 51 or not REPO_NAME.match(name):
        raise ApiError(400, "Repository: name must be 1-51 characters of a-z, 0-9 and '-'")
    if not isinstance(url, str) or not url:
        raise ApiError(400, "Repository: field 'url' is required")
    if name in ctx.emu.repositories:
        raise ApiError(409, f"Repository '{name}' already exists", code="Conflict")
    ctx.emu.repositories[name] = Repository(name, url, str(body.get("username", "")), now())
    return JSONResponse({"id": name, "message": "Repository has been on-boarded"})


async def list_repos(request: Request, ctx: Ctx) -> Response:
    items = [_repo_wire(r) for r in ctx.emu.repositories.values()]
    return JSONResponse({"count": len(items), "resources": items})


def _repo(ctx: Ctx, name: str) -> Repository:
    r = ctx.emu.repositories.get(name)
    if r is None:
        raise not_found("Repository", name)
    return r


async def get_repo(request: Request, ctx: Ctx) -> Response:
    return JSONResponse(_repo_wire(_repo(ctx, request.path_params["name"])))


async def patch_repo(request: Request, ctx: Ctx) -> Response:
    r = _repo(ctx, request.path_params["name"])
    body = await json_body(request)
    r.username = str(body.get("username", r.username))
    return JSONResponse({"id": r.name, "message": "Repository has been updated"})


async def delete_repo(request: Request, ctx: Ctx) -> Response:
    r = _repo(ctx, request.path_params["name"])
    del ctx.emu.repositories[r.name]
    return JSONResponse({"id": r.name, "message": "Repository has been deleted"})


def _app_wire(a: Application) -> dict[str, Any]:
    return {
        "applicationName": a.name,
        "repositoryUrl": a.repository_url,
        "revision": a.revision,
        "path": a.path,
    }


async def create_app(request: Request, ctx: Ctx) -> Response:
    body = await json_body(request)
    repo_url, repo_name = body.get("repositoryUrl"), body.get("repositoryName")
    if bool(repo_url) == bool(repo_name):
        raise ApiError(400, "Application: give either repositoryUrl or repositoryName")
    if repo_name:
        repo = ctx.emu.repositories.get(str(repo_name))
        if repo is None:
            raise ApiError(400, f"Application: repository '{repo_name}' is not on-boarded")
        repo_url = repo.url
    elif not any(r.url == repo_url for r in ctx.emu.repositories.values()):
        raise ApiError(400, f"Application: repository {repo_url} is not on-boarded")
    for field in ("revision", "path"):
        if not isinstance(body.get(field), str) or not body[field]:
            raise ApiError(400, f"Application: field '{field}' is required")
    name = body.get("applicationName") or str(body["path"]).strip("/").replace("/", "-")
    if not isinstance(name, str) or not 3 <= len(name) <= 54 or not APP_NAME.match(name):
        raise ApiError(400, "Application: applicationName must be 3-54 characters of a-z, 0-9, '-'")
    if name in ctx.emu.applications:
        raise ApiError(409, f"Application '{name}' already exists", code="Conflict")
    ctx.emu.applications[name] = Application(
        name, str(repo_url), str(body["revision"]), str(body["path"]), now()
    )
    ctx.emu.sync_templates()
    return JSONResponse({"id": name, "message": "Application has been successfully created."})


async def list_apps(request: Request, ctx: Ctx) -> Response:
    items = [_app_wire(a) for a in ctx.emu.applications.values()]
    return JSONResponse({"count": len(items), "resources": items})


def _app(ctx: Ctx, name: str) -> Application:
    a = ctx.emu.applications.get(name)
    if a is None:
        raise not_found("Application", name)
    return a


async def get_app(request: Request, ctx: Ctx) -> Response:
    return JSONResponse(_app_wire(_app(ctx, request.path_params["name"])))


async def patch_app(request: Request, ctx: Ctx) -> Response:
    a = _app(ctx, request.path_params["name"])
    body = await json_body(request)
    a.repository_url = str(body.get("repositoryUrl", a.repository_url))
    a.revision = str(body.get("revision", a.revision))
    a.path = str(body.get("path", a.path))
    ctx.emu.sync_templates()
    return JSONResponse({"id": a.name, "message": "Application has been updated"})


async def delete_app(request: Request, ctx: Ctx) -> Response:
    a = _app(ctx, request.path_params["name"])
    del ctx.emu.applications[a.name]
    ctx.emu.sync_templates()
    return JSONResponse({"id": a.name, "message": "Application has been deleted"})


async def app_status(request: Request, ctx: Ctx) -> Response:
    a = _app(ctx, request.path_params["name"])
    emu = ctx.emu
    synced = rfc3339(emu.synced_at)
    resources = [
        {"name": t.executable_id, "kind": "ServingTemplate", "status": "Synced", "message": ""}
        for t in emu.templates.values()
    ]
    errors = emu.template_errors
    return JSONResponse(
        {
            "healthStatus": "Degraded" if errors else "Healthy",
            "syncStatus": "OutOfSync" if errors else "Synced",
            "message": "; ".join(errors) if errors else "successfully synced",
            "source": {"repoURL": a.repository_url, "path": a.path, "revision": a.revision},
            "syncStartedAt": synced,
            "syncFinishedAt": synced,
            "reconciledAt": synced,
            "syncResourcesStatus": resources,
            "syncRessourcesStatus": resources,
        }
    )


async def refresh_app(request: Request, ctx: Ctx) -> Response:
    a = _app(ctx, request.path_params["name"])
    ctx.emu.sync_templates()
    return JSONResponse(
        {"id": a.name, "message": "Refresh of ArgoCD application has been scheduled"},
        status_code=202,
    )


def routes(emu: Emulator) -> list[Route]:
    def r(path: str, handler: Any, methods: list[str], rg: Any = "none") -> Route:
        return Route(path, endpoint(emu, handler, rg), methods=methods)

    a = "/v2/admin"
    return [
        r(f"{a}/resourceGroups", list_rgs, ["GET"]),
        r(f"{a}/resourceGroups", create_rg, ["POST"]),
        r(f"{a}/resourceGroups/{{rg}}", get_rg, ["GET"]),
        r(f"{a}/resourceGroups/{{rg}}", patch_rg, ["PATCH"]),
        r(f"{a}/resourceGroups/{{rg}}", delete_rg, ["DELETE"]),
        r(f"{a}/objectStoreSecrets", list_oss, ["GET"], "optional"),
        r(f"{a}/objectStoreSecrets", create_oss, ["POST"], "optional"),
        r(f"{a}/objectStoreSecrets/{{name}}", get_oss, ["GET"], "optional"),
        r(f"{a}/objectStoreSecrets/{{name}}", patch_oss, ["PATCH"], "optional"),
        r(f"{a}/objectStoreSecrets/{{name}}", delete_oss, ["DELETE"], "optional"),
        r(f"{a}/dockerRegistrySecrets", list_docker, ["GET"]),
        r(f"{a}/dockerRegistrySecrets", create_docker, ["POST"]),
        r(f"{a}/dockerRegistrySecrets/{{name}}", get_docker, ["GET"]),
        r(f"{a}/dockerRegistrySecrets/{{name}}", patch_docker, ["PATCH"]),
        r(f"{a}/dockerRegistrySecrets/{{name}}", delete_docker, ["DELETE"]),
        r(f"{a}/repositories", list_repos, ["GET"]),
        r(f"{a}/repositories", create_repo, ["POST"]),
        r(f"{a}/repositories/{{name}}", get_repo, ["GET"]),
        r(f"{a}/repositories/{{name}}", patch_repo, ["PATCH"]),
        r(f"{a}/repositories/{{name}}", delete_repo, ["DELETE"]),
        r(f"{a}/applications", list_apps, ["GET"]),
        r(f"{a}/applications", create_app, ["POST"]),
        r(f"{a}/applications/{{name}}", get_app, ["GET"]),
        r(f"{a}/applications/{{name}}", patch_app, ["PATCH"]),
        r(f"{a}/applications/{{name}}", delete_app, ["DELETE"]),
        r(f"{a}/applications/{{name}}/status", app_status, ["GET"]),
        r(f"{a}/applications/{{name}}/refresh", refresh_app, ["POST"]),
    ]
