"""Local AI Core: a standalone emulator of the SAP AI Core REST API for development and tests.

It speaks the real wire format (OAuth2 token endpoint, `/v2/lm/*`, `/v2/admin/*`, the inference
gateway `/v2/inference/deployments/{id}/…`) closely enough that SAP's official `sap-ai-sdk-core`
client works against it, and its deployments run real predictor processes (infinity servers) that
are rendered from ServingTemplate YAML files. Everything lives in memory of one asyncio process.

This package must never import `embedding_operator`: it stands in for a remote service the
operator talks to over HTTP, and the operator must not be able to cheat through shared code.
See docs/aicore-local.md for the user-facing description.
"""
