"""`embedding-operator embed`: arguments, target resolution and output; no cluster needed."""

from __future__ import annotations

import base64
import io
import json
import struct
from typing import Any

import pytest

from embedding_operator.cli import _parser
from embedding_operator.embed import (
    EmbedError,
    Target,
    dimensions_of,
    format_result,
    read_texts,
    target_of,
)

ENDPOINT = "http://ai.example/v2/inference/deployments/d123/v1"


def ready(status: str = "True", reason: str = "Ready", message: str = "") -> dict[str, Any]:
    return {"type": "Ready", "status": status, "reason": reason, "message": message}


def obj(backend: str = "aicore", **status: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {"backend": backend, "model": {"name": "minilm", "uri": "x"}}
    if backend == "aicore":
        spec["aicore"] = {"secretRef": {"name": "key"}, "resourceGroup": "team-a"}
    status.setdefault("conditions", [ready()])
    status.setdefault("endpoint", ENDPOINT)
    return {"metadata": {"name": "m", "namespace": "ns"}, "spec": spec, "status": status}


def test_parser_takes_name_texts_and_options() -> None:
    args = _parser().parse_args(
        ["embed", "m", "-n", "ns", "-o", "json", "--kubeconfig", "/k", "hello", "world"]
    )
    assert (args.command, args.name, args.namespace, args.output) == ("embed", "m", "ns", "json")
    assert args.kubeconfig == "/k" and args.texts == ["hello", "world"]
    defaults = _parser().parse_args(["embed", "m", "hi"])
    assert (defaults.namespace, defaults.output, defaults.endpoint) == (None, "text", None)


@pytest.mark.parametrize(
    "argv", [["embed"], ["embed", "m"], ["embed", "m", "-o", "yaml", "hi"]], ids=str
)
def test_parser_rejects_incomplete_or_unknown(argv: list[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        _parser().parse_args(argv)
    assert exc.value.code == 2


def test_read_texts_replaces_dash_with_stdin_lines() -> None:
    stdin = io.StringIO("first line\n\n  \nsecond\r\n")
    assert read_texts(["a", "-", "b"], stdin) == ["a", "first line", "second", "b"]
    with pytest.raises(EmbedError, match="nothing to embed"):
        read_texts(["-"], io.StringIO("\n"))


def test_target_aicore_uses_status_resource_group_then_spec() -> None:
    target = target_of(obj(aicore={"resourceGroup": "from-status"}))
    assert target == Target(
        "ns", "m", "aicore", ENDPOINT, "minilm", "key", "serviceKey", "from-status"
    )
    assert target_of(obj()).resource_group == "team-a"


def test_target_kserve_and_endpoint_override() -> None:
    target = target_of(obj("kserve", endpoint="http://isvc.ns.svc/v1/"))
    assert (target.backend, target.endpoint, target.secret_name) == (
        "kserve",
        "http://isvc.ns.svc/v1",
        None,
    )
    local = target_of(obj("kserve"), endpoint="http://127.0.0.1:8080/v1")
    assert local.endpoint == "http://127.0.0.1:8080/v1"


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ({"conditions": []}, "no Ready condition yet"),
        (
            {"conditions": [ready("False", "SecretNotFound", "Secret ns/key not found")]},
            "Ready=False, reason SecretNotFound: Secret ns/key not found",
        ),
        ({"conditions": [ready("Unknown", "Progressing")]}, "reason Progressing"),
        ({"endpoint": None}, "has no status.endpoint"),
    ],
    ids=["no-condition", "stalled", "progressing", "no-endpoint"],
)
def test_target_explains_why_it_cannot_call(status: dict[str, Any], expected: str) -> None:
    with pytest.raises(EmbedError, match=expected) as exc:
        target_of(obj(**status))
    assert "EmbeddingModel ns/m" in str(exc.value)


def test_target_rejects_unknown_backend() -> None:
    with pytest.raises(EmbedError, match="unknown spec.backend 'other'"):
        target_of(obj("other"))


def b64(values: list[float]) -> str:
    return base64.b64encode(struct.pack(f"<{len(values)}f", *values)).decode()


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ([{"embedding": [0.1] * 384}, {"embedding": [0.2] * 384}], "2 vectors x 384 dimensions"),
        ([{"embedding": [0.1, 0.2, 0.3]}], "1 vector x 3 dimensions"),
        ([{"embedding": b64([1.0] * 8)}], "1 vector x 8 dimensions"),
        ([{"embedding": [0.1]}, {"embedding": [0.1, 0.2]}], "2 vectors x 1/2 dimensions"),
        ([], "0 vectors x 0 dimensions"),
    ],
    ids=["float", "one", "base64", "mixed", "empty"],
)
def test_format_text(data: list[dict[str, Any]], expected: str) -> None:
    assert format_result({"object": "list", "data": data}, "text") == expected


def test_format_json_is_the_response() -> None:
    response = {"object": "list", "data": [{"embedding": [0.5], "index": 0}], "model": "m"}
    assert json.loads(format_result(response, "json")) == response


@pytest.mark.parametrize(
    "response",
    [{"detail": "not found"}, {"data": [{"index": 0}]}, {"data": [{"embedding": 3}]}],
    ids=["no-data", "no-embedding", "not-a-vector"],
)
def test_dimensions_refuses_non_embedding_answers(response: dict[str, Any]) -> None:
    with pytest.raises(EmbedError):
        dimensions_of(response)
