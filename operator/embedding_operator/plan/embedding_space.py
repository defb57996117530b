"""The embedding space an EmbeddingModel serves, and the guard that keeps it from changing silently.

Vectors are only comparable with vectors from the same model, weights revision, pooling and output
format. A spec change to any of those on an object that has served would make every vector index
built from it return wrong neighbours — with no error anywhere when the dimensions stay the same.
So the space gets a short fingerprint (recorded in `status.embeddingSpace` once the object is
Ready, for users to store beside their index), and a change of fingerprint on an object that has
served is held back until the user confirms the new fingerprint with an annotation. Everything
else (batch size, replicas, resources, engine, dtype, flags that do not change outputs) rolls out
as before. Pure: spec and status in, verdict out.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from embedding_operator.api.spec import GROUP, EmbeddingModelSpec
from embedding_operator.api.status import EmbeddingSpaceStatus

#: The annotation that confirms a change of embedding space; its value is the new fingerprint,
#: so a confirmation never carries over to a later, different change (and can live in git).
CONFIRM_ANNOTATION = f"{GROUP}/confirm-embedding-space"

#: `infinity_emb v2` flags in spec.serving.args that change the vectors, not just how fast they
#: are computed. Precision flags (--dtype, --engine) change the last digits, not the neighbours.
OUTPUT_FLAGS = ("--model-id", "--revision", "--pooling-method", "--embedding-dtype")

#: Prefix that makes a fingerprint recognisable next to an index ("es-" = embedding space).
FINGERPRINT_PREFIX = "es-"


def output_flags(args: Sequence[str]) -> list[str]:
    """The output-changing flags in `args`, as sorted `--flag=value` strings.

    Both `--flag value` and `--flag=value` spellings count, so re-spelling is no change.
    """
    found: list[str] = []
    for i, arg in enumerate(args):
        flag, sep, value = arg.partition("=")
        if flag not in OUTPUT_FLAGS:
            continue
        if not sep:
            value = args[i + 1] if i + 1 < len(args) and not args[i + 1].startswith("--") else ""
        found.append(f"{flag}={value}")
    return sorted(found)


def fingerprint_of(uri: str, revision: str | None, pooling: str, flags: Sequence[str]) -> str:
    """Short, stable hash of what decides the vectors. The served name is not part of it: a
    rename is not a new space."""
    canonical = json.dumps(
        {"uri": uri, "revision": revision, "pooling": pooling, "outputFlags": sorted(flags)},
        sort_keys=True,
        separators=(",", ":"),
    )
    return FINGERPRINT_PREFIX + hashlib.sha256(canonical.encode()).hexdigest()[:12]


def embedding_space(
    spec: EmbeddingModelSpec, dimensions: int | None = None
) -> EmbeddingSpaceStatus:
    """The space this spec serves; `dimensions` is what the server returned, if known."""
    model = spec.model
    flags = output_flags(spec.serving.args)
    return EmbeddingSpaceStatus(
        fingerprint=fingerprint_of(model.uri, model.revision, str(model.pooling), flags),
        model=model.name,
        uri=model.uri,
        revision=model.revision,
        pooling=str(model.pooling),
        output_flags=flags,
        dimensions=dimensions if dimensions is not None else model.dimensions,
    )


def _describe(space: EmbeddingSpaceStatus) -> str:
    parts = [
        f"uri {space.uri}",
        f"revision {space.revision or '(none)'}",
        f"pooling {space.pooling}",
    ]
    if space.output_flags:
        parts.append("flags " + " ".join(space.output_flags))
    return ", ".join(parts)


def _changes(old: EmbeddingSpaceStatus, new: EmbeddingSpaceStatus) -> str:
    changed = []
    for label, before, after in (
        ("spec.model.uri", old.uri, new.uri),
        ("spec.model.revision", old.revision or "(none)", new.revision or "(none)"),
        ("spec.model.pooling", old.pooling, new.pooling),
        (
            "output flags in spec.serving.args",
            " ".join(old.output_flags) or "(none)",
            " ".join(new.output_flags) or "(none)",
        ),
    ):
        if before != after:
            changed.append(f"{label} {before} -> {after}")
    return "; ".join(changed) or _describe(new)


@dataclass(frozen=True)
class Held:
    """A rollout the guard holds back: the fingerprints and the message for the Stalled
    condition."""

    old: str
    new: str
    message: str


def guard(
    recorded: EmbeddingSpaceStatus | None,
    spec: EmbeddingModelSpec,
    annotations: Mapping[str, str],
    *,
    name: str,
    namespace: str,
) -> Held | None:
    """None when the spec may roll out; a `Held` when it would change the space of an object
    that has served and the user has not confirmed the new fingerprint."""
    if recorded is None:
        return None  # never served: nobody can have indexed its vectors yet
    desired = embedding_space(spec)
    if desired.fingerprint == recorded.fingerprint:
        return None
    confirmed = annotations.get(CONFIRM_ANNOTATION, "").strip()
    if confirmed == desired.fingerprint:
        return None
    stale = (
        f" ({CONFIRM_ANNOTATION} is {confirmed!r}, which confirms another change)"
        if confirmed
        else ""
    )
    message = (
        f"the new spec changes the embedding space from {recorded.fingerprint} to "
        f"{desired.fingerprint} ({_changes(recorded, desired)}): vectors from the new model "
        "cannot be compared with vectors already indexed from the old one, even when the "
        f"dimensions match. The old deployment keeps serving {recorded.fingerprint}; nothing "
        f"was rolled out{stale}. To roll out, re-embed your corpus (or plan to) and confirm: "
        f"kubectl annotate emb {name} -n {namespace} --overwrite "
        f"{CONFIRM_ANNOTATION}={desired.fingerprint} (or add the annotation next to the spec "
        "change in git); to keep the old space, revert the change"
    )
    return Held(old=recorded.fingerprint, new=desired.fingerprint, message=message)


def next_recorded(
    recorded: EmbeddingSpaceStatus | None,
    spec: EmbeddingModelSpec,
    *,
    ready: bool,
    served_dimensions: int | None,
) -> EmbeddingSpaceStatus | None:
    """What status.embeddingSpace says after a reconcile: the spec's space once it is Ready
    (it is now what clients get), otherwise the space that served last."""
    if not ready:
        return recorded
    space = embedding_space(spec, served_dimensions)
    same = recorded is not None and recorded.fingerprint == space.fingerprint
    if space.dimensions is None and same and recorded is not None:
        space.dimensions = recorded.dimensions  # a skipped check does not forget what was seen
    return space
