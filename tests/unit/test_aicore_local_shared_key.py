"""The shared runtime's keying (aicore_local/runtime/shared.py): deployments share one process
exactly when they serve the same thing: same image, command, args, env (the per-process PORT,
MODEL_DIR and HOST aside) and the same model files."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import pytest

from aicore_local.runtime.base import PredictorSpec
from aicore_local.runtime.shared import model_fingerprint, share_key

ENV = {
    "STORAGE_URI": "file:///data/objectstore/default/models/all-minilm-l6-v2",
    "MODEL_SERVE_NAME": "all-minilm-l6-v2",
    "BATCH_SIZE": "32",
    "PORT": "8080",
}


def spec(deployment_id: str = "d1", generation: int = 1, **changes: object) -> PredictorSpec:
    base = PredictorSpec(
        deployment_id=deployment_id,
        generation=generation,
        pod_name=f"{deployment_id}-predictor-{generation:05d}",
        image="ghcr.io/embedding-operator/embedding-infinity:0.1.0",
        command=[],
        args=[],
        env=dict(ENV),
        model_dir=Path(f"/data/deployments/{deployment_id}/{generation}/mnt/models"),
        work_dir=Path(f"/data/deployments/{deployment_id}/{generation}"),
    )
    return replace(base, **changes)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("other", "shares"),
    [
        # Per deployment, not what it serves: id, generation, pod, its own directories.
        (spec("d2", 3), True),
        (spec(env={**ENV, "PORT": "9000"}), True),
        (spec(env={**ENV, "MODEL_DIR": "/elsewhere", "HOST": "0.0.0.0"}), True),
        # What it serves.
        (spec(env={**ENV, "MODEL_SERVE_NAME": "other-name"}), False),
        (spec(env={**ENV, "BATCH_SIZE": "16"}), False),
        (spec(env={**ENV, "STORAGE_URI": "file:///data/objectstore/default/models/e5"}), False),
        (spec(env={k: v for k, v in ENV.items() if k != "BATCH_SIZE"}), False),
        (spec(image="localhost/embedding-infinity:dev"), False),
        (spec(command=["/app/run.sh"]), False),
        (spec(args=["--no-bettertransformer"]), False),
    ],
)
def test_deployments_share_a_process_only_when_they_serve_the_same(
    other: PredictorSpec, shares: bool
) -> None:
    assert (share_key(spec(), "model-a") == share_key(other, "model-a")) is shares


def test_the_same_location_with_other_model_files_is_another_process() -> None:
    assert share_key(spec(), "model-a") != share_key(spec(), "model-b")


def test_env_order_does_not_matter() -> None:
    reordered = spec(env=dict(reversed(list(ENV.items()))))
    assert share_key(reordered, "m") == share_key(spec(), "m")


def test_the_fingerprint_follows_the_model_files(tmp_path: Path) -> None:
    model = tmp_path / "models" / "minilm"
    model.mkdir(parents=True)
    (model / "config.json").write_text("{}")
    (model / "model.safetensors").write_bytes(b"\0" * 64)
    uri = model.as_uri()
    first = model_fingerprint(uri)
    assert first and model_fingerprint(uri) == first
    (model / "model.safetensors").write_bytes(b"\0" * 65)  # new weights, same place
    assert model_fingerprint(uri) != first
    second = model_fingerprint(uri)
    os.utime(model / "config.json", ns=(1, 1))  # touched
    assert model_fingerprint(uri) != second


@pytest.mark.parametrize("uri", [None, "", "ai://missing/models/x", "s3://bucket/models/x"])
def test_a_model_that_is_not_local_has_no_fingerprint(uri: str | None) -> None:
    assert model_fingerprint(uri) == ""
