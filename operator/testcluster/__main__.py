"""CLI of the local control plane: `python -m testcluster build|up|down|status`.

Defaults put the runtime state where every other tool of the project looks: the state directory
`.local/cluster`, the admin kubeconfig `.local/kubeconfig`, the unprivileged one
`.local/kubeconfig-tester`, logs in `.local/logs/` (all relative to the repository root).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from testcluster import kserve
from testcluster.build import ensure_binary
from testcluster.cluster import Cluster
from testcluster.errors import ClusterError


def _repo_root() -> Path:
    # operator/testcluster/__main__.py -> repository root (editable install / source checkout)
    root = Path(__file__).resolve().parents[2]
    return root if (root / "pyproject.toml").is_file() else Path.cwd()


def _cluster(args: argparse.Namespace) -> Cluster:
    local = _repo_root() / ".local"
    return Cluster(
        args.dir or local / "cluster",
        kubeconfig=args.kubeconfig or local / "kubeconfig",
        tester_kubeconfig=args.tester_kubeconfig or local / "kubeconfig-tester",
        log_dir=args.log_dir or local / "logs",
        node=getattr(args, "node", False) or getattr(args, "kserve", False),
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="testcluster", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("build", help="build (or reuse the cached) testcluster binary")
    for name, text in (
        ("up", "start the control plane in the background (no-op if it runs)"),
        ("down", "stop the control plane and remove its state"),
        ("status", "say whether it runs (exit 0) or not (exit 1)"),
    ):
        p = sub.add_parser(name, help=text)
        p.add_argument("--dir", type=Path, help="state directory (default .local/cluster)")
        p.add_argument(
            "--kubeconfig", type=Path, help="admin kubeconfig (default .local/kubeconfig)"
        )
        p.add_argument("--tester-kubeconfig", type=Path, help="default .local/kubeconfig-tester")
        p.add_argument("--log-dir", type=Path, help="default .local/logs")
        if name == "up":
            p.add_argument("--timeout", type=float, default=None, help="seconds to wait for ready")
            p.add_argument(
                "--node",
                action="store_true",
                help="also run a node (containerd + kubelet + kube-scheduler): pods run",
            )
            p.add_argument(
                "--kserve",
                action="store_true",
                help=f"also run KServe's own controller {kserve.VERSION} (implies --node)",
            )
    imp = sub.add_parser(
        "import-image",
        help="import podman images into the running node's containerd (pods use them, no pulls)",
    )
    imp.add_argument("images", nargs="+", metavar="IMAGE[=ALIAS,...]")
    imp.add_argument("--dir", type=Path, help="state directory (default .local/cluster)")
    args = parser.parse_args(argv)

    try:
        if args.command == "build":
            print(ensure_binary())
            return 0
        if args.command == "import-image":
            local = _repo_root() / ".local"
            node = Cluster(args.dir or local / "cluster", log_dir=local / "logs").node
            for spec in args.images:
                image, _, aliases = spec.partition("=")
                names = tuple(a for a in aliases.split(",") if a)
                done = node.import_podman_image(image, names)
                print(f"testcluster: {image} {'imported' if done else 'already there'}")
            return 0
        cluster = _cluster(args)
        if args.command == "up":
            ensure_binary()
            t0 = time.monotonic()
            timeout = args.timeout or (240.0 if cluster.node_mode else 90.0)
            if not cluster.start(timeout=timeout):
                print("testcluster: already running")
            else:
                print(f"testcluster: ready in {time.monotonic() - t0:.1f}s")
            if args.kserve:
                controller = cluster.kserve_controller()
                if controller.running():
                    print("testcluster: KServe controller already running")
                else:
                    t1 = time.monotonic()
                    controller.start()
                    print(
                        f"testcluster: KServe {kserve.VERSION} ready "
                        f"in {time.monotonic() - t1:.1f}s"
                    )
            for line in cluster.status_lines():
                print(f"  {line}")
            print(f"  try: kubectl --kubeconfig {cluster.kubeconfig} get ns")
            return 0
        if args.command == "down":
            cluster.stop()
            print("testcluster: stopped")
            return 0
        running = cluster.is_running()
        for line in cluster.status_lines():
            print(line)
        return 0 if running else 1
    except ClusterError as exc:
        print(f"testcluster: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
