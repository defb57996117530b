"""The embedding-space fingerprint and the guard: which spec changes change the vectors, and what
the reconcile shell does when one is held (pure tables, plus the shell with a stand-in backend)."""

from __future__ import annotations

import copy
import logging
import re
from typing import Any

import pytest

from embedding_operator.api.conditions import STALLED, Outcome, Reason, get_condition
from embedding_operator.api.spec import parse_spec
from embedding_operator.api.status import EmbeddingModelStatus, ServingStatus
from embedding_operator.backends.base import Finalized, ReconcileContext, Reconciled
from embedding_operator.handlers import user_state
from embedding_operator.plan.embedding_space import (
    CONFIRM_ANNOTATION,
    embedding_space,
    guard,
    next_recorded,
    output_flags,
)
from embedding_operator.reconciler import Reconciler
from embedding_operator.settings import Settings

BASE: dict[str, Any] = {
    "backend": "kserve",
    "model": {
        "name": "minilm",
        "uri": "hf://sentence-transformers/all-MiniLM-L6-v2",
        "dimensions": 384,
    },
    "serving": {"batchSize": 32, "args": ["--no-model-warmup"]},
}


def spec_with(**changes: Any) -> dict[str, Any]:
    """BASE with dotted-path changes, e.g. spec_with(**{"model.uri": "hf://a/b"})."""
    raw = copy.deepcopy(BASE)
    for path, value in changes.items():
        *parents, leaf = path.split(".")
        node = raw
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return raw


def fingerprint(raw: dict[str, Any]) -> str:
    return embedding_space(parse_spec(raw)).fingerprint


def test_fingerprint_is_short_stable_and_recognisable():
    first = fingerprint(BASE)
    assert re.fullmatch(r"es-[0-9a-f]{12}", first)
    assert fingerprint(copy.deepcopy(BASE)) == first
    # NB: a pinned value: a change of the hashing recipe would invalidate every stored
    # fingerprint, so it must be a deliberate, visible change of this test.
    assert first == "es-45c3a3b0585c"


# Changes that change the vectors: the fingerprint must move.
SPACE_CHANGES = {
    "uri": {"model.uri": "hf://BAAI/bge-small-en-v1.5"},
    "revision pinned": {"model.revision": "v2"},
    "pooling": {"model.pooling": "cls"},
    "pooling flag": {"serving.args": ["--no-model-warmup", "--pooling-method", "cls"]},
    "output dtype": {"serving.args": ["--embedding-dtype=int8"]},
    "model id flag": {"serving.args": ["--model-id", "other/model"]},
}

# Changes that keep the vectors: the fingerprint must stay (they roll out as before).
SPACE_KEEPING = {
    "served name": {"model.name": "renamed"},
    "batch size": {"serving.batchSize": 8},
    "replicas": {"replicas": {"min": 2, "max": 3}},
    "engine": {"serving.engine": "optimum"},
    "dtype": {"serving.dtype": "float16"},
    "warm-up flag": {"serving.args": []},
    "other flag": {"serving.args": ["--no-model-warmup", "--no-bettertransformer"]},
    "dimensions stated": {"model.dimensions": None},
    "resources": {"kserve": {"resources": {"requests": {"cpu": "2"}}, "gpus": 1}},
    "suspend": {"suspend": True},
    "trust remote code": {"model.trustRemoteCode": True},
}


@pytest.mark.parametrize("changes", SPACE_CHANGES.values(), ids=SPACE_CHANGES.keys())
def test_a_change_of_what_decides_the_vectors_changes_the_fingerprint(changes):
    assert fingerprint(spec_with(**changes)) != fingerprint(BASE)


@pytest.mark.parametrize("changes", SPACE_KEEPING.values(), ids=SPACE_KEEPING.keys())
def test_a_change_that_keeps_the_vectors_keeps_the_fingerprint(changes):
    assert fingerprint(spec_with(**changes)) == fingerprint(BASE)


@pytest.mark.parametrize(
    "args,expected",
    [
        ([], []),
        (["--no-model-warmup"], []),
        (["--pooling-method", "cls"], ["--pooling-method=cls"]),
        (["--pooling-method=cls"], ["--pooling-method=cls"]),
        (
            ["--embedding-dtype", "binary", "--revision=abc", "--batch-size", "4"],
            ["--embedding-dtype=binary", "--revision=abc"],
        ),
        (["--pooling-method"], ["--pooling-method="]),
    ],
)
def test_output_flags_are_found_in_either_spelling(args, expected):
    assert output_flags(args) == expected


def test_status_describes_the_space_in_users_terms():
    space = embedding_space(parse_spec(spec_with(**{"model.revision": "main"})), 384)
    assert space.model == "minilm"
    assert space.uri == "hf://sentence-transformers/all-MiniLM-L6-v2"
    assert (space.revision, space.pooling, space.dimensions) == ("main", "auto", 384)
    assert space.model_dump(by_alias=True)["outputFlags"] == []


RECORDED = embedding_space(parse_spec(BASE), 384)
NEW = spec_with(**{"model.uri": "hf://BAAI/bge-small-en-v1.5"})


def run_guard(raw: dict[str, Any], annotations: dict[str, str] | None = None, recorded=RECORDED):
    return guard(recorded, parse_spec(raw), annotations or {}, name="m", namespace="team")


def test_a_space_change_on_an_object_that_served_is_held_with_both_fingerprints_and_the_fix():
    held = run_guard(NEW)
    assert held is not None
    assert (held.old, held.new) == (RECORDED.fingerprint, fingerprint(NEW))
    assert "hf://sentence-transformers/all-MiniLM-L6-v2 -> hf://BAAI/bge-small-en-v1.5" in (
        held.message
    )
    assert "keeps serving" in held.message
    assert (
        f"kubectl annotate emb m -n team --overwrite {CONFIRM_ANNOTATION}={fingerprint(NEW)}"
        in held.message
    )


def test_the_guard_lets_through_what_it_must():
    assert run_guard(NEW, recorded=None) is None  # never served: nothing indexed yet
    assert run_guard(spec_with(**{"serving.batchSize": 4})) is None  # same space
    assert run_guard(NEW, {CONFIRM_ANNOTATION: fingerprint(NEW)}) is None  # confirmed
    assert run_guard(NEW, {CONFIRM_ANNOTATION: f" {fingerprint(NEW)}\n"}) is None


def test_a_confirmation_of_another_change_does_not_carry_over():
    other = spec_with(**{"model.pooling": "cls"})
    held = run_guard(NEW, {CONFIRM_ANNOTATION: fingerprint(other)})
    assert held is not None
    assert f"{CONFIRM_ANNOTATION} is '{fingerprint(other)}'" in held.message
    # Reverting the spec to the space that served needs no confirmation.
    assert run_guard(BASE, {CONFIRM_ANNOTATION: fingerprint(other)}) is None


@pytest.mark.parametrize(
    "recorded,ready,dims,expected_fp,expected_dims",
    [
        (None, False, None, None, None),  # never Ready: nothing recorded
        (None, True, 384, "new", 384),  # first Ready: recorded with the served size
        (RECORDED, False, None, "old", 384),  # rolling out: the old space is still what serves
        (RECORDED, True, 768, "new", 768),  # Ready on the new spec: now it is the new space
    ],
)
def test_the_recorded_space_follows_what_served(recorded, ready, dims, expected_fp, expected_dims):
    result = next_recorded(recorded, parse_spec(NEW), ready=ready, served_dimensions=dims)
    want = {"old": RECORDED.fingerprint, "new": fingerprint(NEW), None: None}[expected_fp]
    assert (result.fingerprint if result else None) == want
    assert (result.dimensions if result else None) == expected_dims


def test_a_skipped_serving_check_keeps_the_dimensions_seen_before():
    spec = parse_spec(spec_with(**{"model.dimensions": None}))
    result = next_recorded(RECORDED, spec, ready=True, served_dimensions=None)
    assert result is not None and result.dimensions == 384


def test_confirming_cuts_the_operators_wait_short_but_kopf_bookkeeping_does_not():
    body: dict[str, Any] = {"metadata": {"generation": 2, "annotations": {}}}
    before = user_state(body)
    body["metadata"]["annotations"]["embeddings.ai/last-handled-configuration"] = "{}"
    assert user_state(body) == before
    body["metadata"]["annotations"][CONFIRM_ANNOTATION] = "es-0123456789ab"
    assert user_state(body) != before


# --- the reconcile shell: the guard runs before the backend ------------------------------------


def merged(target: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """RFC 7386, as the API server applies the shell's status patch."""
    out = dict(target)
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        elif isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merged(out[key], value)
        else:
            out[key] = value
    return out


class Kube:
    """Keeps the status the shell's merge patches produce (only the status write is used)."""

    def __init__(self) -> None:
        self.status: dict[str, Any] = {}

    async def patch(self, resource: Any, name: str, obj: dict[str, Any], **_: Any) -> None:
        self.status = merged(self.status, obj["status"])


class Backend:
    """Counts passes: a held change must not reach the backend at all (no remote write)."""

    def __init__(self) -> None:
        self.passes = 0

    async def reconcile(self, ctx: ReconcileContext) -> Reconciled:
        self.passes += 1
        return Reconciled(
            Outcome.ready(Reason.SERVING_VERIFIED, "ok"),
            requeue_after=60,
            endpoint=f"http://{ctx.spec.model.name}.svc/v1",
            serving=ServingStatus(dimensions=384, verified=True),
        )

    async def finalize(self, ctx: ReconcileContext) -> Finalized:
        return Finalized(done=True, message="gone")


def obj(spec: dict[str, Any], status: dict[str, Any], **annotations: str) -> dict[str, Any]:
    return {
        "metadata": {
            "name": "m",
            "namespace": "team",
            "uid": "u1",
            "generation": 2,
            "annotations": annotations,
        },
        "spec": spec,
        "status": status,
    }


async def test_the_shell_holds_a_space_change_before_the_backend_and_rolls_out_once_confirmed():
    backend, kube = Backend(), Kube()
    shell = Reconciler(kube, {"kserve": backend}, Settings(), post_event=lambda b, e: None)  # type: ignore[arg-type]
    log = logging.getLogger("test")

    # First Ready: the space is recorded.
    await shell.reconcile(obj(BASE, kube.status), log)
    status = EmbeddingModelStatus.model_validate(kube.status)
    assert status.embedding_space is not None
    assert status.embedding_space.fingerprint == RECORDED.fingerprint
    assert status.embedding_space.dimensions == 384

    # A new uri: held, the backend never called, the old endpoint and space kept.
    await shell.reconcile(obj(NEW, kube.status), log)
    assert backend.passes == 1
    held = EmbeddingModelStatus.model_validate(kube.status)
    stalled = get_condition(held.conditions, STALLED)
    assert stalled is not None and stalled.status == "True"
    assert stalled.reason == "EmbeddingSpaceChange"
    assert RECORDED.fingerprint in stalled.message and fingerprint(NEW) in stalled.message
    assert held.endpoint == "http://minilm.svc/v1"
    assert held.embedding_space is not None
    assert held.embedding_space.fingerprint == RECORDED.fingerprint

    # A space-keeping change goes through as before, and clears Stalled.
    await shell.reconcile(obj(spec_with(**{"serving.batchSize": 4}), kube.status), log)
    assert backend.passes == 2
    stalled = get_condition(EmbeddingModelStatus.model_validate(kube.status).conditions, STALLED)
    assert stalled is not None and stalled.status == "False"

    # Confirmed: rolled out and the new space recorded.
    await shell.reconcile(obj(NEW, kube.status, **{CONFIRM_ANNOTATION: fingerprint(NEW)}), log)
    assert backend.passes == 3
    status = EmbeddingModelStatus.model_validate(kube.status)
    assert status.embedding_space is not None
    assert status.embedding_space.fingerprint == fingerprint(NEW)


def test_the_cli_prints_the_fingerprint_of_each_model_in_a_manifest(tmp_path, capsys):
    from embedding_operator.cli import main

    manifest = tmp_path / "models.yaml"
    manifest.write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: other}\n---\n"
        + "apiVersion: embeddings.ai/v1alpha1\nkind: EmbeddingModel\nmetadata: {name: a}\n"
        + f"spec: {BASE}\n---\n"
        + "apiVersion: embeddings.ai/v1alpha1\nkind: EmbeddingModel\nmetadata: {name: b}\n"
        + f"spec: {NEW}\n"
    )
    assert main(["fingerprint", str(manifest)]) == 0
    assert capsys.readouterr().out == f"a {fingerprint(BASE)}\nb {fingerprint(NEW)}\n"

    bad = tmp_path / "bad.yaml"
    bad.write_text("kind: EmbeddingModel\nmetadata: {name: c}\nspec: {backend: kserve}\n")
    assert main(["fingerprint", str(bad)]) == 1
    assert "c: invalid spec" in capsys.readouterr().err
