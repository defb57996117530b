"""Scale benchmark: N EmbeddingModels on the local AI Core (noop runtime) through the real operator.

Measures the time from `kubectl apply` of N objects until every one reports an AI Core deployment
RUNNING, the operator's peak resident memory, and the AI Core API calls it made per object; then
the calls of a settled operator over `--idle` seconds, and how long it takes to exit on SIGTERM.
The noop runtime starts no infinity process, so this measures the operator, not the model server.
In the same run, after the operator has exited, bench/baseline.py deploys N models with the
minimal call sequence on the same AI Core (`baseline_seconds`, `ratio`).

`--serving` measures time to Ready instead: until every object is Ready=True with reason
ServingVerified, i.e. the operator's serving check got a real embedding through the AI Core
gateway. The local AI Core then runs the `shared` runtime: all N deployments of the one model
(every object serves all-MiniLM-L6-v2 under one name) share one real infinity process, started
and checked once by a warm-up deployment before the clock starts (`infinity_start_seconds`), so
both sides measure the control plane and the checks, not infinity's cold start. The baseline
then also POSTs one embedding per deployment until it answers (`baseline_ready_seconds`).
Serving checks are counted at the emulator's gateway (the operator has no metric of its own):
per object until Ready, and per second over the settled `--idle` window.

    .venv/bin/python bench/scale.py --models 50
    .venv/bin/python bench/scale.py --models 200 --json
    .venv/bin/python bench/scale.py --models 100 --serving --idle 60 --json
    .venv/bin/python bench/scale.py --models 500 --json --profile /tmp/op.txt   # py-spy on PATH

Results go to stdout; bench/RESULTS.md records the runs we keep. Whatever happens, the operator,
the local AI Core, the API server and etcd are stopped and the work directory removed.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "operator"))
sys.path.insert(0, str(ROOT))

from lightkube import Client, KubeConfig  # noqa: E402

from bench.baseline import run as run_baseline  # noqa: E402
from embedding_operator.api.conditions import Reason  # noqa: E402
from embedding_operator.kube import EmbeddingModelResource  # noqa: E402
from testcluster import Cluster  # noqa: E402


def aicore_calls(metrics_port: int) -> tuple[float, float]:
    """The operator's AI Core requests so far: (all of them, deployment lists), one scrape."""
    metrics = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=30).text
    counts = [
        line
        for line in metrics.splitlines()
        if line.startswith("embedding_operator_aicore_request_duration_seconds_count")
    ]

    def total(lines: list[str]) -> float:
        return sum(float(line.rsplit(" ", 1)[1]) for line in lines)

    lists = [c for c in counts if 'method="GET"' in c and 'endpoint="/lm/deployments"' in c]
    return total(counts), total(lists)


#: The one model every object serves in `--serving` mode (so they share one infinity).
SERVED_MODEL = "all-minilm-l6-v2"
SERVED_DIMENSIONS = 384


def running(obj: object) -> bool:
    status = getattr(obj, "status", None) or {}
    return bool((status.get("aicore") or {}).get("deploymentStatus") == "RUNNING")


def serving_verified(obj: object) -> bool:
    """Ready=True, reason ServingVerified, and the check's vector had all-MiniLM-L6-v2's size."""
    status = getattr(obj, "status", None) or {}
    if (status.get("serving") or {}).get("dimensions") != SERVED_DIMENSIONS:
        return False
    return any(
        c.get("type") == "Ready"
        and c.get("status") == "True"
        and c.get("reason") == Reason.SERVING_VERIFIED
        for c in status.get("conditions") or []
    )


def embedding_calls(aicore_url: str) -> list[dict[str, object]]:
    """The embedding requests the emulator's gateway forwarded or refused, oldest first."""
    calls = httpx.get(f"{aicore_url}/_emulator/inference-calls", timeout=30).json()["calls"]
    return [c for c in calls if c["method"] == "POST" and str(c["path"]).endswith("/embeddings")]


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):  # peak resident set size
            return int(line.split()[1])
    return 0


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", type=int, default=50)
    parser.add_argument("--timeout", type=float, default=600)
    parser.add_argument("--json", action="store_true", help="print one JSON line")
    parser.add_argument(
        "--poll", type=float, default=2.0, help="operator pending interval = baseline GET interval"
    )
    parser.add_argument("--idle", type=float, default=0, help="seconds to count settled calls")
    parser.add_argument("--no-baseline", action="store_true")
    parser.add_argument(
        "--serving",
        action="store_true",
        help="time to Ready=ServingVerified on the shared runtime (one real infinity)",
    )
    parser.add_argument("--logs", type=Path, help="copy the run's logs here before cleaning up")
    parser.add_argument(
        "--profile",
        type=Path,
        help="sample the operator with py-spy (on PATH) from apply to all RUNNING; raw stacks here",
    )
    args = parser.parse_args()
    # NB: Python's default SIGTERM ends the process without running `finally`: a bench stopped by
    # `timeout` or a CI runner left its API server, etcd and local AI Core running. As SystemExit,
    # the clean-up below runs whatever the bench was doing.
    signal.signal(signal.SIGTERM, _terminated)

    work = Path(tempfile.mkdtemp(prefix="emb-bench-"))
    cluster = Cluster(work / "cluster", log_dir=work / "logs")
    try:
        cluster.start(detach=False)
        return _bench(args, work, cluster)
    finally:
        if args.logs is not None:
            shutil.copytree(work / "logs", args.logs, dirs_exist_ok=True)
        _cleanup(work, cluster)


def _terminated(signum: int, frame: object) -> None:
    # One clean-up, even if the sender insists. NB: a handler, not SIG_IGN, which the clean-up's
    # own processes would inherit.
    signal.signal(signal.SIGTERM, lambda *_: None)
    raise SystemExit(128 + signum)


def _bench(args: argparse.Namespace, work: Path, cluster: Cluster) -> int:
    kube = ["kubectl", f"--kubeconfig={cluster.kubeconfig}"]
    port, metrics_port, live_port = free_port(), free_port(), free_port()
    key_path = work / "key.json"
    aicore = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "aicore_local",
            "up",
            "--port",
            str(port),
            "--data",
            str(work / "aicore"),
            "--service-key",
            str(key_path),
            "--runtime",
            "shared" if args.serving else "noop",
            "--pidfile",
            str(work / "aicore.pid"),
            "--log",
            str(work / "logs" / "aicore.log"),
        ],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT / "operator")},
    )
    aicore.wait()
    aicore_url = f"http://127.0.0.1:{port}"
    operator = None
    try:
        subprocess.run(
            [*kube, "apply", "--server-side", "-f", str(ROOT / "crds")],
            check=True,
            capture_output=True,
        )
        subprocess.run(
            [*kube, "wait", "--for=condition=Established", "crd/embeddingmodels.embeddings.ai"],
            check=True,
            capture_output=True,
        )
        subprocess.run(
            [*kube, "create", "secret", "generic", "aicore", f"--from-file=serviceKey={key_path}"],
            check=True,
            capture_output=True,
        )
        warm: dict[str, object] = {}
        if args.serving:
            # NB: one deployment starts the shared infinity and gets an embedding; it stays
            # RUNNING through both runs, so neither side pays infinity's cold start.
            warm = asyncio.run(
                run_baseline(json.loads(key_path.read_text()), 1, args.poll, "warm-", SERVED_MODEL)
            )
        env = {
            **os.environ,
            "KUBECONFIG": str(cluster.kubeconfig),
            "PYTHONPATH": str(ROOT / "operator"),
            "EMB_POLL_PENDING_SECONDS": str(args.poll),
        }
        log = (work / "logs" / "operator.log").open("wb")
        operator = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "embedding_operator",
                "run",
                "-n",
                "default",
                f"--liveness=http://127.0.0.1:{live_port}/healthz",
                f"--metrics-port={metrics_port}",
            ],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        time.sleep(3)
        docs = [
            {
                "apiVersion": "embeddings.ai/v1alpha1",
                "kind": "EmbeddingModel",
                "metadata": {"name": f"m{i:04d}"},
                "spec": {
                    "backend": "aicore",
                    "model": {
                        "name": SERVED_MODEL if args.serving else f"m{i}",
                        "uri": "ai://default/models/all-minilm-l6-v2",
                    },
                    "aicore": {"secretRef": {"name": "aicore"}},
                },
            }
            for i in range(args.models)
        ]
        profiler = None
        if args.profile is not None:
            # NB: sampling (20/s, not stopping the target) rather than cProfile's tracing, which
            # slows every call and so moves the ratio it is meant to explain.
            spy = shutil.which("py-spy")
            if spy is None:
                raise SystemExit("--profile needs py-spy on PATH (pip install py-spy)")
            profiler = subprocess.Popen(
                [spy, "record", "--pid", str(operator.pid), "--rate", "20", "--nonblocking"]
                + ["--format", "raw", "-o", str(args.profile.resolve())],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        if args.serving:
            httpx.delete(f"{aicore_url}/_emulator/inference-calls", timeout=30)  # not the warm-up's
        load_before = os.getloadavg()[0]
        started = time.monotonic()
        subprocess.run(
            [*kube, "apply", "-f", "-"],
            input=yaml.safe_dump_all(docs),
            text=True,
            check=True,
            capture_output=True,
        )
        applied = time.monotonic() - started  # kubectl creates the N objects one by one
        done, all_running = 0, None
        goal = serving_verified if args.serving else running
        # NB: one client in this process, not a kubectl per look: at 500 objects each kubectl
        # cost about a CPU-second, taken from the operator (and not from the baseline).
        with Client(KubeConfig.from_file(cluster.kubeconfig)) as watcher:
            while time.monotonic() - started < args.timeout:
                objects = list(watcher.list(EmbeddingModelResource, namespace="default"))
                done = sum(1 for o in objects if goal(o))
                if all_running is None and sum(1 for o in objects if running(o)) == args.models:
                    all_running = time.monotonic() - started
                if done == args.models:
                    break
                time.sleep(1)
        elapsed = time.monotonic() - started
        if profiler is not None:
            profiler.send_signal(signal.SIGINT)  # py-spy writes its file on SIGINT
            try:
                profiler.wait(timeout=60)
            except subprocess.TimeoutExpired:
                profiler.kill()
                profiler.wait()
        calls, _ = aicore_calls(metrics_port)
        result: dict[str, object] = {
            "models": args.models,
            "running": done,
            "seconds_to_all_running": round(elapsed, 1),
            "apply_seconds": round(applied, 1),
            "operator_peak_rss_mib": 0.0,
            "aicore_calls_per_model": round(calls / max(args.models, 1), 1),
            # NB: the machine is shared; the 1-min load average says how much of it we had.
            "load_average": [round(load_before, 1), round(os.getloadavg()[0], 1)],
            "date": time.strftime("%Y-%m-%dT%H:%MZ", time.gmtime()),
        }
        if args.serving:
            checks = embedding_calls(aicore_url)
            result = {
                "models": result.pop("models"),
                "ready": result.pop("running"),
                "ready_seconds": result.pop("seconds_to_all_running"),
                "seconds_to_all_running": round(all_running, 1) if all_running else None,
                "infinity_start_seconds": warm["baseline_ready_seconds"],
                "serving_checks_per_model": round(len(checks) / max(args.models, 1), 2),
                "serving_check_statuses": dict(
                    sorted(collections.Counter(str(c["status"]) for c in checks).items())
                ),
                **result,
            }
        if args.idle:
            before, lists = aicore_calls(metrics_port)
            if args.serving:
                httpx.delete(f"{aicore_url}/_emulator/inference-calls", timeout=30)
                idle_from = time.time()
            time.sleep(args.idle)
            if args.serving:
                settled = embedding_calls(aicore_url)
                result["idle_serving_checks_per_second"] = round(len(settled) / args.idle, 3)
                # NB: when in the window they came: all at once (a burst) or spread out.
                result["idle_serving_check_window_seconds"] = [
                    round(float(str(c["at"])) - idle_from, 1) for c in settled[:1] + settled[-1:]
                ]
            after, lists_after = aicore_calls(metrics_port)
            result["idle_calls_per_second"] = round((after - before) / args.idle, 2)
            result["idle_list_calls_per_second"] = round((lists_after - lists) / args.idle, 2)
        result["operator_peak_rss_mib"] = round(rss_kib(operator.pid) / 1024, 1)
        stop = time.monotonic()
        operator.send_signal(signal.SIGTERM)
        try:
            operator.wait(timeout=60)
            result["sigterm_to_exit_seconds"] = round(time.monotonic() - stop, 1)
        except subprocess.TimeoutExpired:
            result["sigterm_to_exit_seconds"] = None  # did not exit within 60 s
        if not args.no_baseline:
            # NB: the operator's figures first (stderr), in case the baseline is cut short.
            print(json.dumps(result), file=sys.stderr, flush=True)
            key = json.loads(key_path.read_text())
            served = SERVED_MODEL if args.serving else None
            try:
                base = asyncio.run(run_baseline(key, args.models, args.poll, "baseline-", served))
            except Exception as error:  # the operator's figures are printed anyway
                result["baseline_error"] = f"{type(error).__name__}: {error}"[:300]
            else:
                seconds = base["baseline_ready_seconds" if args.serving else "baseline_seconds"]
                result["baseline_ready_seconds" if args.serving else "baseline_seconds"] = seconds
                result["baseline_calls_per_model"] = base["baseline_calls_per_model"]
                result["ratio"] = round(elapsed / max(seconds, 0.1), 2)
        print(
            json.dumps(result) if args.json else "\n".join(f"{k}: {v}" for k, v in result.items())
        )
        return 0 if done == args.models else 1
    finally:
        if operator is not None and operator.poll() is None:
            operator.kill()
            operator.wait()


def _cleanup(work: Path, cluster: Cluster) -> None:
    """Stop everything the bench started, each step on its own, so one failure stops no other."""
    with contextlib.suppress(Exception):
        subprocess.run(
            [
                sys.executable,
                "-m",
                "aicore_local",
                "down",
                "--pidfile",
                str(work / "aicore.pid"),
                "--data",
                str(work / "aicore"),
            ],
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT / "operator")},
            capture_output=True,
            timeout=120,
        )
    with contextlib.suppress(Exception):
        cluster.stop()
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
