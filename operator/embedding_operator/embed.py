"""`embedding-operator embed`: call a deployed EmbeddingModel the way an application would.

It reads the object, trusts only what the operator published (`status.endpoint`, the Ready
condition) and sends one OpenAI-style `POST {endpoint}/embeddings`. For `backend: aicore` it reads
the same service-key Secret the operator uses (`spec.aicore.secretRef`), gets a token through the
operator's own `AICoreClient` and sends `AI-Resource-Group`; for `backend: kserve` it calls the
endpoint as is, with the API key of `spec.kserve.auth` as a bearer token when one is set. This is
the smoke test a user runs after `kubectl wait --for=condition=Ready`.

The pure parts (`target_of`, `format_result`, `dimensions_of`) take plain dicts so they are table
tested; `embed` does the I/O. Secrets never reach stdout, stderr or an exception message: errors
name the object, the field and the fix, and HTTP errors quote the server's body, never our headers.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from embedding_operator.redact import redact

EXIT_ERROR = 1
DEFAULT_TIMEOUT = 60.0


class EmbedError(Exception):
    """A problem the user must fix; the message says what and how. Never carries a secret."""


@dataclass(frozen=True)
class Target:
    """Where and how to call one EmbeddingModel, read from its spec and status."""

    namespace: str
    name: str
    backend: str
    endpoint: str
    model: str
    secret_name: str | None = None
    secret_key: str = "serviceKey"
    resource_group: str | None = None
    #: spec.kserve.auth.apiKeySecretRef as written (name, key), when the endpoint needs a key.
    api_key_ref: Mapping[str, str] | None = None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The `embed` subcommand's arguments (cli.py owns the subparser itself)."""
    parser.add_argument("name", metavar="NAME", help="EmbeddingModel name")
    parser.add_argument(
        "texts",
        metavar="TEXT",
        nargs="+",
        help="text(s) to embed, one vector each; '-' reads one text per line from stdin",
    )
    parser.add_argument(
        "--namespace",
        "-n",
        default=None,
        help="namespace of the EmbeddingModel (default: the kubeconfig context's namespace)",
    )
    parser.add_argument(
        "--output",
        "-o",
        choices=["text", "json"],
        default="text",
        help="text: 'N vectors x D dimensions'; json: the server's response as is",
    )
    parser.add_argument(
        "--kubeconfig", default=None, help="kubeconfig path (default: $KUBECONFIG, ~/.kube/config)"
    )
    parser.add_argument(
        "--endpoint",
        default=None,
        help="call this base URL instead of status.endpoint (e.g. after kubectl port-forward)",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_TIMEOUT,
        help=f"seconds to wait for the answer (default {DEFAULT_TIMEOUT:.0f})",
    )


def read_texts(texts: Sequence[str], stdin: Any = None) -> list[str]:
    """The texts to embed: arguments as given, '-' replaced by the non-empty lines of stdin."""
    result: list[str] = []
    for text in texts:
        if text == "-":
            source = stdin if stdin is not None else sys.stdin
            result.extend(line.rstrip("\r\n") for line in source if line.strip())
        else:
            result.append(text)
    if not result:
        raise EmbedError("nothing to embed: pass at least one TEXT (or non-empty lines on stdin)")
    return result


def ready_condition(status: Mapping[str, Any]) -> Mapping[str, Any] | None:
    for condition in status.get("conditions") or []:
        if condition.get("type") == "Ready":
            found: Mapping[str, Any] = condition
            return found
    return None


def target_of(obj: Mapping[str, Any], *, endpoint: str | None = None) -> Target:
    """Check that the object can be called and say how; `endpoint` overrides status.endpoint."""
    meta = obj.get("metadata") or {}
    spec = obj.get("spec") or {}
    status = obj.get("status") or {}
    ns, name = meta.get("namespace", ""), meta.get("name", "")
    where = f"EmbeddingModel {ns}/{name}"
    ready = ready_condition(status)
    if ready is None or ready.get("status") != "True":
        if ready is None:
            why = "it has no Ready condition yet (has the operator seen it?)"
        else:
            reason = ready.get("reason") or "Unknown"
            why = f"Ready={ready.get('status')}, reason {reason}: {ready.get('message') or '-'}"
        raise EmbedError(
            f"{where} is not Ready: {why}. Wait with: kubectl wait --for=condition=Ready "
            f"emb/{name} -n {ns}"
        )
    url = endpoint or status.get("endpoint")
    if not url:
        raise EmbedError(
            f"{where} is Ready but has no status.endpoint: the operator has not published one; "
            f"see kubectl describe emb/{name} -n {ns}"
        )
    backend = spec.get("backend", "")
    model = (spec.get("model") or {}).get("name", "")
    if backend == "aicore":
        aicore = spec.get("aicore") or {}
        ref = aicore.get("secretRef") or {}
        if not ref.get("name"):
            raise EmbedError(f"{where} has no spec.aicore.secretRef.name: cannot get a token")
        resource_group = (status.get("aicore") or {}).get("resourceGroup") or aicore.get(
            "resourceGroup", "default"
        )
        return Target(
            ns,
            name,
            backend,
            url.rstrip("/"),
            model,
            secret_name=ref["name"],
            secret_key=ref.get("key") or "serviceKey",
            resource_group=resource_group,
        )
    if backend == "kserve":
        auth = ((spec.get("kserve") or {}).get("auth") or {}).get("apiKeySecretRef")
        return Target(ns, name, backend, url.rstrip("/"), model, api_key_ref=auth or None)
    raise EmbedError(f"{where} has an unknown spec.backend {backend!r}: expected aicore or kserve")


def _vector_size(embedding: Any) -> int:
    from embedding_operator.plan.serving_check import embedding_size

    try:
        return embedding_size(embedding)
    except ValueError:
        raise EmbedError(
            "the server's answer has an embedding that is neither a list nor base64"
        ) from None


def dimensions_of(response: Mapping[str, Any]) -> tuple[int, list[int]]:
    """(number of vectors, the distinct vector sizes in order seen) of an embeddings response."""
    data = response.get("data")
    if not isinstance(data, list):
        raise EmbedError("the server's answer has no 'data' list: is this an embeddings endpoint?")
    sizes: list[int] = []
    for item in data:
        if not isinstance(item, Mapping) or "embedding" not in item:
            raise EmbedError("the server's answer has a 'data' item without an 'embedding'")
        size = _vector_size(item["embedding"])
        if size not in sizes:
            sizes.append(size)
    return len(data), sizes


def format_result(response: Mapping[str, Any], output: str) -> str:
    """What `embed` prints: the summary line, or the response as indented JSON."""
    if output == "json":
        return json.dumps(response, indent=2)
    count, sizes = dimensions_of(response)
    noun = "vector" if count == 1 else "vectors"
    dims = "/".join(str(s) for s in sizes) if sizes else "0"
    return f"{count} {noun} x {dims} dimensions"


def _error_body(response: httpx.Response) -> str:
    text = redact(response.text).strip().replace("\n", " ")
    return text[:300] + ("…" if len(text) > 300 else "")


async def _read_object(kube: Any, name: str, namespace: str) -> dict[str, Any]:
    import httpx2  # lightkube's HTTP client (a fork of httpx with its own error classes)
    from lightkube import ApiError

    from embedding_operator.kube import EmbeddingModelResource, kube_error

    try:
        obj = await kube.get(EmbeddingModelResource, name, namespace=namespace)
    except (ApiError, httpx2.HTTPError) as raw:
        error = kube_error(raw)
        assert error is not None
        if error.code == 404 and not isinstance(raw, ApiError):
            # NB: without the CRD the API server answers a plain-text 404.
            raise EmbedError(
                "the API server does not know EmbeddingModel (embeddings.ai/v1alpha1): "
                "install the CRD from crds/ first"
            ) from None
        if error.code == 404:
            raise EmbedError(
                f"EmbeddingModel {namespace}/{name} not found: check the name and namespace "
                f"(kubectl get emb -n {namespace})"
            ) from None
        if error.code == 403:
            raise EmbedError(
                f"not allowed to read EmbeddingModel {namespace}/{name}: you need 'get' on "
                "embeddingmodels.embeddings.ai in that namespace"
            ) from None
        if error.code is None:
            raise EmbedError(error.message) from None
        raise EmbedError(
            f"reading EmbeddingModel {namespace}/{name} failed: {error.message}"
        ) from None
    result: dict[str, Any] = obj.to_dict()
    return result


async def _aicore_headers(kube: Any, target: Target) -> dict[str, str]:
    """Token + resource group from the service key in the object's Secret (never printed)."""
    from embedding_operator.aicore import AICoreClient, AICoreError, parse_service_key
    from embedding_operator.kube import KubeError, SecretProblem, read_secret_key

    assert target.secret_name is not None
    where = f"Secret {target.namespace}/{target.secret_name}"
    try:
        content = await read_secret_key(
            kube, target.namespace, target.secret_name, target.secret_key
        )
    except SecretProblem as problem:
        raise EmbedError(f"{problem.message} (spec.aicore.secretRef)") from None
    except KubeError as error:
        raise EmbedError(f"reading {where} failed: {error.message}") from None
    try:
        key = parse_service_key(content)
    except AICoreError as exc:
        raise EmbedError(f"{where}: {exc}") from None
    assert target.resource_group is not None
    try:
        async with AICoreClient(key) as client:
            return await client.inference_headers(target.resource_group)
    except AICoreError as exc:  # the client's messages are redacted
        raise EmbedError(
            f"getting an AI Core token with the key in {where} failed: {exc}"
        ) from None


async def _api_key_headers(kube: Any, target: Target) -> dict[str, str]:
    """The bearer token from spec.kserve.auth's Secret, read as the operator reads it."""
    from embedding_operator.api.spec import ApiKeySecretRef
    from embedding_operator.apikey import ApiKeyUnavailable, read_api_key

    assert target.api_key_ref is not None
    ref = ApiKeySecretRef.model_validate(target.api_key_ref)
    try:
        key = await read_api_key(kube, target.namespace, ref)
    except ApiKeyUnavailable as exc:
        raise EmbedError(str(exc)) from None
    return key.headers()


async def _post_embeddings(
    target: Target, texts: list[str], headers: Mapping[str, str], seconds: float
) -> dict[str, Any]:
    url = f"{target.endpoint}/embeddings"
    body = {"model": target.model, "input": texts, "encoding_format": "float"}
    try:
        async with httpx.AsyncClient(timeout=seconds) as http:
            response = await http.post(url, json=body, headers=dict(headers))
    except httpx.TimeoutException:
        raise EmbedError(f"{url} did not answer within {seconds:.0f}s (raise --timeout)") from None
    except httpx.HTTPError as exc:
        hint = ""
        if target.backend == "kserve":
            hint = (
                "; a cluster-internal URL is reachable only from inside the cluster: "
                "kubectl port-forward, then pass --endpoint http://127.0.0.1:PORT<urlPrefix>"
            )
        raise EmbedError(f"cannot reach {url}: {type(exc).__name__}: {exc}{hint}") from None
    if response.status_code != 200:
        what = f"{url} answered HTTP {response.status_code}"
        if response.status_code == 401 and target.backend == "aicore":
            what += " (AI Core refused the token: check the service key's instance)"
        elif response.status_code == 401 and target.api_key_ref is None:
            what += " (the endpoint wants an API key, but the object has no spec.kserve.auth)"
        elif response.status_code == 401:
            what += " (the key in spec.kserve.auth's Secret was refused: rotated just now?)"
        raise EmbedError(f"{what}: {_error_body(response)}")
    try:
        data: dict[str, Any] = response.json()
    except ValueError:
        raise EmbedError(f"{url} answered with something that is not JSON") from None
    return data


async def embed(args: argparse.Namespace) -> str:
    """Run one `embed` command; returns what to print."""
    from embedding_operator.kube import make_client

    texts = read_texts(args.texts)
    try:
        kube = make_client(args.kubeconfig)
    except Exception as exc:  # lightkube's ConfigError and friends
        raise EmbedError(f"cannot load a kubeconfig: {exc}") from None
    try:
        namespace = args.namespace or kube.namespace or "default"
        obj = await _read_object(kube, args.name, namespace)
        target = target_of(obj, endpoint=args.endpoint)
        headers: dict[str, str] = {}
        if target.backend == "aicore":
            headers = await _aicore_headers(kube, target)
        elif target.api_key_ref is not None:
            headers = await _api_key_headers(kube, target)
    finally:
        await kube.close()
    response = await _post_embeddings(target, texts, headers, args.timeout)
    return format_result(response, args.output)


def main(args: argparse.Namespace) -> int:
    """Entry point for `embedding-operator embed`: prints the result or one error line."""
    try:
        print(asyncio.run(embed(args)))
    except EmbedError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    return 0
