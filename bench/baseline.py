"""The minimal call sequence the operator is measured against: N models straight on AI Core.

For each model, concurrently: POST artifact, POST configuration, POST deployment, then GET the
deployment every `poll` seconds until RUNNING. No Kubernetes, no find-before-create, no status:
the floor of what deploying N models costs on this AI Core. bench/scale.py runs it in the same
run as the operator and prints the ratio.

    .venv/bin/python bench/baseline.py --service-key key.json --models 100
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "operator"))

from embedding_operator.api.spec import parse_spec  # noqa: E402
from embedding_operator.serving import MODEL_ARTIFACT, parameter_bindings  # noqa: E402


async def one(
    http: httpx.AsyncClient, i: int, bindings: list[dict[str, str]], prefix: str, poll: float
) -> int:
    """Deploy model i; returns the number of calls it took."""
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
            return calls
        await asyncio.sleep(poll)


async def run(service_key: dict[str, Any], models: int, poll: float, prefix: str) -> dict[str, Any]:
    spec = parse_spec(
        {
            "backend": "aicore",
            "model": {"name": "m", "uri": "ai://default/models/all-minilm-l6-v2"},
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
        calls = await asyncio.gather(*(one(http, i, bindings, prefix, poll) for i in range(models)))
    return {
        "models": models,
        "baseline_seconds": round(time.monotonic() - started, 1),
        "baseline_calls_per_model": round(sum(calls) / max(models, 1), 1),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--service-key", type=Path, required=True)
    parser.add_argument("--models", type=int, default=100)
    parser.add_argument("--poll", type=float, default=1.0, help="seconds between GETs")
    parser.add_argument("--prefix", default="baseline-")
    args = parser.parse_args()
    key = json.loads(args.service_key.read_text())
    print(json.dumps(asyncio.run(run(key, args.models, args.poll, args.prefix))))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
