"""The minimal call sequence the operator is measured against: N models straight on AI Core.

For each model, concurrently: POST artifact, POST configuration, POST deployment, then GET the
deployment every `poll` seconds until RUNNING. No Kubernetes, no find-before-create, no status:
the floor of what deploying N models costs on this AI Core. With `--serving`, also the step a
user does by hand next: POST one embedding to `{deploymentUrl}/v1/embeddings` (token and
AI-Resource-Group, as the operator's serving check sends it) every `poll` seconds until it answers
200 with a vector. bench/scale.py runs it in the same run as the operator and prints the ratio.

    .venv/bin/python bench/baseline.py --service-key key.json --models 100
    .venv/bin/python bench/baseline.py --service-key key.json --models 100 --serving
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "operator"))

from embedding_operator.api.spec import parse_spec  # noqa: E402
from embedding_operator.plan.serving_check import first_embedding_size  # noqa: E402
from embedding_operator.serving import MODEL_ARTIFACT, parameter_bindings  # noqa: E402

#: The input of the embedding the baseline asks for (the operator's check sends a fixed one too).
SERVING_INPUT = "baseline serving check"


async def one(
    http: httpx.AsyncClient,
    i: int,
    bindings: list[dict[str, str]],
    prefix: str,
    poll: float,
    serve_model: str | None = None,
) -> int:
    """Deploy model i (and with `serve_model`, get one embedding from it); returns the calls."""
    artifact = await http.post(
        "/lm/artifacts",
        json={
            "name": f"{prefix}{i}",
            "kind": "model",
            "url": "ai://default/models/all-minilm-l6-v2",
            "scenarioId": "embedding-infinity",
        },
    )
    artifact.raise_for_status()
    configuration = await http.post(
        "/lm/configurations",
        json={
            "name": f"{prefix}{i}",
            "scenarioId": "embedding-infinity",
            "executableId": "embedding-infinity",
            "parameterBindings": bindings,
            "inputArtifactBindings": [{"key": MODEL_ARTIFACT, "artifactId": artifact.json()["id"]}],
        },
    )
    configuration.raise_for_status()
    deployment = await http.post(
        "/lm/deployments", json={"configurationId": configuration.json()["id"]}
    )
    deployment.raise_for_status()
    calls = 3
    while True:
        calls += 1
        try:
            got = await http.get(f"/lm/deployments/{deployment.json()['id']}")
        except httpx.TransportError:  # a GET is safe to repeat; the operator's client retries too
            await asyncio.sleep(poll)
            continue
        got.raise_for_status()
        if got.json()["status"] == "RUNNING":
            break
        await asyncio.sleep(poll)
    if serve_model is None:
        return calls
    return calls + await embed_once(http, got.json()["deploymentUrl"], serve_model, poll)


async def embed_once(http: httpx.AsyncClient, deployment_url: str, model: str, poll: float) -> int:
    """POST one embedding until the deployment answers 200 with a vector; returns the calls."""
    calls = 0
    while True:
        calls += 1
        with contextlib.suppress(httpx.TransportError):
            answer = await http.post(
                f"{deployment_url}/v1/embeddings", json={"model": model, "input": [SERVING_INPUT]}
            )
            if answer.status_code == 200:
                with contextlib.suppress(ValueError):
                    if first_embedding_size(answer.json()) > 0:
                        return calls
        await asyncio.sleep(poll)


async def run(
    service_key: dict[str, Any],
    models: int,
    poll: float,
    prefix: str,
    serve_model: str | None = None,
) -> dict[str, Any]:
    """Deploy `models` models; with `serve_model` (the served model name, which the
    configurations bind) each also waits for a real embedding."""
    spec = parse_spec(
        {
            "backend": "aicore",
            "model": {"name": serve_model or "m", "uri": "ai://default/models/all-minilm-l6-v2"},
            "aicore": {"secretRef": {"name": "x"}},
        }
    )
    bindings = parameter_bindings(spec)
    async with httpx.AsyncClient(timeout=30) as auth:
        answer = await auth.post(
            service_key["url"].rstrip("/") + "/oauth/token",
            data={
                "grant_type": "client_credentials",
                "client_id": service_key["clientid"],
                "client_secret": service_key["clientsecret"],
            },
        )
    token = answer.json()["access_token"]
    started = time.monotonic()
    async with httpx.AsyncClient(
        base_url=service_key["serviceurls"]["AI_API_URL"].rstrip("/") + "/v2",
        headers={"Authorization": f"Bearer {token}", "AI-Resource-Group": "default"},
        timeout=120,
        # NB: idle connections expire before uvicorn's 5 s keep-alive closes them; at httpx's
        # default (also 5 s) a reused connection the server had just closed failed a POST with
        # ReadError on the loaded machine.
        limits=httpx.Limits(max_connections=100, keepalive_expiry=1.0),
    ) as http:
        calls = await asyncio.gather(
            *(one(http, i, bindings, prefix, poll, serve_model) for i in range(models))
        )
    seconds = round(time.monotonic() - started, 1)
    return {
        "models": models,
        "baseline_ready_seconds" if serve_model else "baseline_seconds": seconds,
        "baseline_calls_per_model": round(sum(calls) / max(models, 1), 1),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--service-key", type=Path, required=True)
    parser.add_argument("--models", type=int, default=100)
    parser.add_argument("--poll", type=float, default=1.0, help="seconds between GETs")
    parser.add_argument("--prefix", default="baseline-")
    parser.add_argument(
        "--serving",
        metavar="MODEL",
        nargs="?",
        const="all-minilm-l6-v2",
        help="also get one embedding from each, served as MODEL [all-minilm-l6-v2]",
    )
    args = parser.parse_args()
    key = json.loads(args.service_key.read_text())
    print(json.dumps(asyncio.run(run(key, args.models, args.poll, args.prefix, args.serving))))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
