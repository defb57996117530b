"""Call an EmbeddingModel on SAP AI Core through SAP's `gen_ai_hub` (PyPI `sap-ai-sdk-gen`).

gen_ai_hub finds deployments itself: for every registered scenario it lists the RUNNING
deployments, keeps those whose configuration name matches, and reads the model name from the
configuration's `modelName` parameter binding (which the operator writes from spec.model.name).
So the only set-up is registering the operator's scenario, as SAP documents for custom models:

    GenAIHubProxyClient.add_foundation_model_scenario(
        scenario_id="embedding-infinity",      # spec.aicore.scenarioId
        config_names="*",                      # or "<name>-<uid8>-*" for one EmbeddingModel
        prediction_url_suffix="/v1",           # spec.serving.urlPrefix
        model_name_parameter="model_name",     # the `modelName` binding, camel -> snake
    )

NB: sap-ai-sdk-gen 7.4.1 accepts `prediction_url_suffix` but never uses it: it posts to
`{deploymentUrl}/embeddings`, while infinity serves under `{deploymentUrl}/v1` (the url prefix
SAP's own Infinity template uses, because AI Core routes `/v1` paths). `PrefixedProxyClient` below
restores what the suffix did in the older SDK (generative-ai-hub-sdk 4.x): it appends it to each
deployment URL, so the SDK posts to `{deploymentUrl}/v1/embeddings`. It overrides only the public
`update_deployments` and sets the public `Deployment.url`. See docs/calling-models.md.

Run with the service key in the environment, as the SDK expects:

    AICORE_SERVICE_KEY="$(cat service-key.json)" AICORE_RESOURCE_GROUP=default \
        python examples/gen_ai_hub_embeddings.py my-model-name "hello" "world"

Tested in tests/integration/test_clients.py.
"""

from __future__ import annotations

import sys
from typing import Any

from gen_ai_hub.proxy.gen_ai_hub_proxy.client import (  # type: ignore[import-untyped]
    GenAIHubProxyClient,
)
from gen_ai_hub.proxy.native.openai import OpenAI  # type: ignore[import-untyped]

SCENARIO_ID = "embedding-infinity"
URL_PREFIX = "/v1"


class PrefixedProxyClient(GenAIHubProxyClient):  # type: ignore[misc]
    """GenAIHubProxyClient that honours `prediction_url_suffix` (ignored by sap-ai-sdk-gen 7.x)."""

    def update_deployments(self) -> Any:
        deployments = super().update_deployments()
        for deployment in deployments:
            suffix = deployment.custom_prediction_suffix
            if suffix and deployment.url and not deployment.url.rstrip("/").endswith(suffix):
                deployment.url = deployment.url.rstrip("/") + suffix
        return deployments


def register_scenario(config_names: str | list[str] = "*") -> None:
    """Make gen_ai_hub look at the operator's scenario (a class-wide, process-wide setting)."""
    GenAIHubProxyClient.add_foundation_model_scenario(
        scenario_id=SCENARIO_ID,
        config_names=config_names,
        prediction_url_suffix=URL_PREFIX,
        model_name_parameter="model_name",
    )


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    model_name, *texts = argv
    register_scenario()
    client = OpenAI(proxy_client=PrefixedProxyClient())
    result = client.embeddings.create(model_name=model_name, input=texts)
    print(f"{len(result.data)} vectors x {len(result.data[0].embedding)} dimensions")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
