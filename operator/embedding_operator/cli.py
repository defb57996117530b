"""`embedding-operator`: the single entry point for the operator and its tools.

embedding-operator run [--namespace NS] [--liveness URL]   run the operator (kopf)
    [--metrics-port N] [--log-format text|json] [--no-leader-elect]
embedding-operator crd                                     print the generated CRD
embedding-operator template                                print the AI Core ServingTemplate
embedding-operator generate                                rewrite crds/ (and the chart's),
                                                           manifests/aicore/, docs/api-reference.md
embedding-operator embed NAME [-n NS] [-o json] TEXT...     call a deployed model once
embedding-operator fingerprint FILE...                     the embedding-space fingerprint of
                                                           each EmbeddingModel in YAML files
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import yaml

from embedding_operator import embed
from embedding_operator.api.crd import render_crd
from embedding_operator.api.reference import render_reference
from embedding_operator.api.spec import KIND, parse_spec
from embedding_operator.plan.embedding_space import embedding_space
from embedding_operator.serving import render_serving_template

REPO_ROOT = Path(__file__).resolve().parents[2]
CRD_PATH = Path("crds/embeddings.ai_embeddingmodels.yaml")
#: Helm installs CRDs from the chart's own crds/ directory: the same generated file.
CHART_CRD_PATH = Path("charts/embedding-operator/crds/embeddings.ai_embeddingmodels.yaml")
TEMPLATE_PATH = Path("manifests/aicore/serving-template.yaml")
API_REFERENCE_PATH = Path("docs/api-reference.md")


def generated_files() -> dict[Path, str]:
    """Every checked-in file generated from Python, keyed by its path relative to the repo."""
    return {
        CRD_PATH: render_crd(),
        CHART_CRD_PATH: render_crd(),
        TEMPLATE_PATH: render_serving_template(),
        API_REFERENCE_PATH: render_reference(),
    }


def _generate(root: Path) -> None:
    for rel, text in generated_files().items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        print(f"wrote {rel}")


def _fingerprints(paths: Sequence[Path]) -> int:
    """Print `name fingerprint` per EmbeddingModel, so the confirmation annotation can be
    committed together with the spec change it confirms (docs/embedding-space.md)."""
    for path in paths:
        text = sys.stdin.read() if str(path) == "-" else path.read_text()
        for doc in yaml.safe_load_all(text):
            if not isinstance(doc, dict) or doc.get("kind") != KIND:
                continue
            name = (doc.get("metadata") or {}).get("name", "?")
            try:
                space = embedding_space(parse_spec(doc.get("spec") or {}))
            except ValueError as error:
                print(f"{path}: {name}: invalid spec: {error}", file=sys.stderr)
                return 1
            print(f"{name} {space.fingerprint}")
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="embedding-operator", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run the operator")
    run.add_argument(
        "--namespace",
        "-n",
        action="append",
        default=None,
        help="watch only this namespace (repeatable); all namespaces when omitted",
    )
    run.add_argument(
        "--liveness",
        default="http://0.0.0.0:8080/healthz",
        help="liveness endpoint URL (kopf's health server)",
    )
    run.add_argument("--verbose", action="store_true", help="debug logging")
    run.add_argument(
        "--metrics-port",
        type=int,
        default=9090,
        help="serve Prometheus metrics at :PORT/metrics (0 disables; default 9090)",
    )
    run.add_argument(
        "--log-format",
        choices=["text", "json"],
        default="text",
        help="text lines, or one JSON object per line (default text)",
    )
    run.add_argument(
        "--leader-elect",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="hold a coordination.k8s.io Lease before acting, so replicas never both act "
        "(default on)",
    )
    run.add_argument(
        "--leader-election-namespace",
        default=None,
        help="namespace of the Lease (default: $POD_NAMESPACE, the ServiceAccount's namespace, "
        "or the one watched namespace)",
    )
    sub.add_parser("crd", help="print the generated CustomResourceDefinition")
    sub.add_parser("template", help="print the generated AI Core ServingTemplate")
    gen = sub.add_parser("generate", help="rewrite the generated files in the repository")
    gen.add_argument("--root", type=Path, default=REPO_ROOT)
    embed.add_arguments(
        sub.add_parser("embed", help="embed text(s) with a deployed EmbeddingModel (smoke test)")
    )
    fingerprint = sub.add_parser(
        "fingerprint", help="print the embedding-space fingerprint of EmbeddingModel manifests"
    )
    fingerprint.add_argument("files", nargs="+", type=Path, help="YAML files ('-' for stdin)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "crd":
        sys.stdout.write(render_crd())
    elif args.command == "template":
        sys.stdout.write(render_serving_template())
    elif args.command == "generate":
        _generate(args.root)
    elif args.command == "embed":
        return embed.main(args)
    elif args.command == "fingerprint":
        return _fingerprints(args.files)
    elif args.command == "run":
        # NB: kopf import only when running.
        from embedding_operator.runner import exit_now, run_operator

        run_operator(
            namespaces=args.namespace,
            liveness=args.liveness,
            verbose=args.verbose,
            metrics_port=args.metrics_port,
            log_format=args.log_format,
            leader_election=args.leader_elect,
            lease_namespace=args.leader_election_namespace,
        )
        exit_now(0)  # a clean stop: skip the interpreter's teardown (runner.exit_now)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
