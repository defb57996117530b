"""Request plumbing shared by all handlers: auth, the AI-Resource-Group header, JSON bodies,
query parameters in both spellings the clients use (`$top` and `top`), paging, label selectors."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from starlette.requests import Request
from starlette.responses import Response

from .errors import ApiError, error_response
from .state import Emulator

log = logging.getLogger("aicore_local")

T = TypeVar("T")
RgMode = Literal["required", "optional", "none"]


@dataclass
class Ctx:
    emu: Emulator
    rg: str  # "" for tenant-level endpoints


Handler = Callable[[Request, Ctx], Awaitable[Response]]


def endpoint(emu: Emulator, handler: Handler, rg_mode: RgMode) -> Callable[[Request], Any]:
    """Wrap a handler with bearer-token auth, resource-group handling and error rendering."""

    async def wrapped(request: Request) -> Response:
        target = request.url.path
        if not emu.tokens.bearer_ok(request):
            return error_response(
                401,
                "Unauthorized: the bearer token is missing, invalid or expired",
                target=target,
                code="Unauthorized",
                headers={"WWW-Authenticate": 'Bearer realm="aicore"'},
            )
        rg = ""
        if rg_mode != "none":
            rg = request.headers.get("ai-resource-group", "").strip()
            if not rg:
                if rg_mode == "required":
                    return error_response(
                        400,
                        "Missing header AI-Resource-Group: name the resource group of the request",
                        target=target,
                        code="MissingResourceGroup",
                    )
                rg = "default"
            if rg not in emu.resource_groups:
                return error_response(
                    400,
                    f"Resource group '{rg}' does not exist (create it with "
                    "POST /v2/admin/resourceGroups)",
                    target=target,
                    code="InvalidResourceGroup",
                )
        try:
            return await handler(request, Ctx(emu, rg))
        except ApiError as exc:
            return exc.response(target)
        except Exception:  # noqa: BLE001 - a bug must still answer in AI Core's error shape
            log.exception("%s %s failed", request.method, target)
            return error_response(500, "Internal server error", target=target, code="500")

    return wrapped


async def json_body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ApiError(
            400, f"Request body is not valid UTF-8 (byte {exc.start}): send JSON in UTF-8"
        ) from None
    try:
        body = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ApiError(400, f"Request body is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise ApiError(400, "Request body must be a JSON object")
    return body


def param(request: Request, name: str) -> str | None:
    """A query parameter given as `$name` (spec) or `name` (what the Python SDK sends)."""
    q = request.query_params
    value = q.get("$" + name)
    return value if value is not None else q.get(name)


def int_param(request: Request, name: str, default: int, lo: int, hi: int) -> int:
    raw = param(request, name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ApiError(400, f"Query parameter ${name} must be an integer, got '{raw}'") from None
    if not lo <= value <= hi:
        raise ApiError(400, f"Query parameter ${name} must be between {lo} and {hi}")
    return value


def bool_param(request: Request, name: str) -> bool:
    raw = param(request, name)
    return raw is not None and raw.strip().lower() in ("true", "1", "yes")


def csv_param(request: Request, name: str) -> list[str] | None:
    raw = param(request, name)
    if raw is None or raw == "":
        return None
    return [p.strip() for p in raw.split(",") if p.strip()]


def page(request: Request, items: Sequence[T]) -> list[T]:
    top = int_param(request, "top", 10000, 0, 100000)
    skip = int_param(request, "skip", 0, 0, 2**31)
    return list(items[skip : skip + top])


def text_count(n: int) -> Response:
    return Response(str(n), media_type="text/plain")


LABEL_EXPR = re.compile(r"^([^=!]+?)(!=|=)(.*)$")


def label_selector(exprs: list[str] | None) -> list[tuple[str, str, bool]]:
    """`key=value` / `key!=value` expressions; `{comma}` stands for a literal comma."""
    if not exprs:
        return []
    if len(exprs) > 10:
        raise ApiError(400, "artifactLabelSelector allows at most 10 expressions")
    out = []
    for e in exprs:
        m = LABEL_EXPR.match(e)
        if not m:
            raise ApiError(400, f"Invalid label selector '{e}': use key=value or key!=value")
        out.append((m.group(1), m.group(3).replace("{comma}", ","), m.group(2) == "="))
    return out


def labels_match(labels: list[tuple[str, str]], selector: list[tuple[str, str, bool]]) -> bool:
    have = dict(labels)
    return all((have.get(k) == v) == equal for k, v, equal in selector)


def search_match(request: Request, *fields: str | None) -> bool:
    needle = param(request, "search")
    if not needle:
        return True
    if bool_param(request, "searchCaseInsensitive"):
        needle = needle.lower()
        return any(needle in f.lower() for f in fields if f)
    return any(needle in f for f in fields if f)
