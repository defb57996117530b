"""Run infinity's own CLI (`serve.py v2 …` = `infinity_emb v2 …`), with one addition: the OpenAI
routes also answer without the URL prefix.

Why: infinity serves under `--url-prefix /v1` because AI Core's samples route `/v1` paths, but SAP's
gen_ai_hub 7.x posts to `{deploymentUrl}/embeddings` (no `/v1`), while the OpenAI client and older
gen_ai_hub post to `{deploymentUrl}/v1/embeddings`. Serving both keeps every client working.
infinity cannot mount its routes twice, so its app is wrapped in a small ASGI middleware that maps
`/embeddings` to `{prefix}/embeddings` (and the same for the other OpenAI-style routes). Flags,
environment variables and behaviour otherwise stay exactly infinity's.
"""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
ASGIApp = Callable[[Scope, Any, Any], Awaitable[None]]

# Routes infinity registers under its prefix that clients may call without it.
UNPREFIXED_ROUTES = ("/embeddings", "/models", "/rerank", "/classify")


def alias_unprefixed(app: ASGIApp, prefix: str) -> ASGIApp:
    """An ASGI app that serves `route` as `{prefix}{route}` for the OpenAI-style routes."""
    if not prefix:
        return app

    async def aliased(scope: Scope, receive: Any, send: Any) -> None:
        if scope.get("type") == "http" and scope.get("path") in UNPREFIXED_ROUTES:
            path = prefix + scope["path"]
            scope = {**scope, "path": path, "raw_path": path.encode()}
        await app(scope, receive, send)

    return aliased


def main() -> None:
    import infinity_emb.cli as cli

    create_server = cli.create_server  # type: ignore[attr-defined]

    def create_server_with_aliases(*args: Any, **kwargs: Any) -> ASGIApp:
        app = create_server(*args, **kwargs)
        return alias_unprefixed(app, kwargs.get("url_prefix") or "")

    cli.create_server = create_server_with_aliases  # type: ignore[attr-defined]
    sys.argv[0] = "infinity_emb"
    cli.cli()


if __name__ == "__main__":
    main()
