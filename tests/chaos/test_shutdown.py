"""Issue 15 item 6: SIGTERM during a burst of new models stops cleanly (exit 0, not kopf's
last-resort SIGKILL) within a third of a pod's 30 s grace period, without "client has been
closed", and loses no work: the next operator converges every model without a duplicate. An
API-server outage costs a few lines per object and no tracebacks."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from datetime import datetime

import pytest

from tests.chaos.helpers import (
    apply_models,
    models,
    remote_counts,
    wait_all_running,
)
from tests.fixtures.aicore_operator import events
from tests.fixtures.cluster import wait_until

pytestmark = pytest.mark.integration

GRACE_PERIOD = 30.0  # terminationGracePeriodSeconds in manifests/install and the chart
#: The bound a clean stop is held to: a third of the grace period, so a starved node still fits.
CLEAN_STOP = GRACE_PERIOD / 3
CLOSED = "client has been closed"
# Shutdown milestones in the operator's log (kopf's own lines, then ours), for the figures.
PHASES = {
    "daemons_stopped": "Daemon killer is cancelled",
    "cleanup_done": "Activity 'close' succeeded",
    "lease_released": "released Lease",
}
STAMP = re.compile(r"^\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3})\]")


def shutdown_phases(log: str) -> dict[str, float]:
    """Seconds from the SIGTERM line to each milestone of the last shutdown in `log`."""
    lines = log.splitlines()
    start = max(i for i, line in enumerate(lines) if "Signal SIGTERM is received" in line)

    def at(line: str) -> datetime:
        match = STAMP.match(line)
        assert match, line
        return datetime.strptime(match.group(1), "%Y-%m-%d %H:%M:%S,%f")

    t0, phases = at(lines[start]), {}
    for line in lines[start:]:
        for phase, text in PHASES.items():
            if phase not in phases and text in line:
                phases[phase] = round((at(line) - t0).total_seconds(), 1)
    return phases


def burst_then_sigterm(kubectl, namespace, aicore, aicore_faults, start_operator, figures, n):
    aicore_faults.set_runtime("noop")
    # NB: a slow AI Core keeps many passes in flight when the signal comes.
    aicore_faults.set_faults(latency={"seconds": 0.2})
    operator = start_operator(namespace)
    apply_models(kubectl, namespace, [f"b{i}" for i in range(n)])
    wait_until(
        lambda: sum(e["reason"] == "ArtifactCreated" for e in events(kubectl, namespace)) >= 3,
        what="the burst under way",
        timeout=120,
    )
    started = time.monotonic()
    rc = operator.stop(timeout=60)
    stop_seconds = time.monotonic() - started
    figures["models"] = n
    figures["sigterm_to_exit_seconds"] = round(stop_seconds, 1)
    logs = operator.logs()
    figures["client_closed_lines"] = logs.count(CLOSED)
    figures["exit_code"] = rc
    figures.values.update({f"{k}_seconds": v for k, v in shutdown_phases(logs).items()})
    # NB: -9 is kopf's last resort (ULTIMATE_EXIT_SECONDS) killing a shutdown that hung.
    assert rc == 0, f"exit code {rc} after {stop_seconds:.1f}s"
    assert stop_seconds < CLEAN_STOP, f"stopped after {stop_seconds:.1f}s"
    assert CLOSED not in logs

    aicore_faults.set_faults(latency={"seconds": 0})
    restarted = time.monotonic()
    operator.start()
    wait_all_running(kubectl, namespace, n, timeout=60 + 2 * n)
    figures["seconds_to_converge_after_restart"] = round(time.monotonic() - restarted, 1)
    duplicates = remote_counts(aicore, models(kubectl, namespace))
    figures["duplicates"] = sum(duplicates.values())
    assert duplicates == {"artifacts": 0, "configurations": 0, "deployments": 0}


def test_sigterm_during_a_burst_stops_within_the_grace_period(
    kubectl, namespace, aicore, aicore_faults, aicore_key, start_operator, figures
):
    burst_then_sigterm(kubectl, namespace, aicore, aicore_faults, start_operator, figures, 20)


@pytest.mark.chaos_long
def test_sigterm_during_a_burst_of_250(
    kubectl, namespace, aicore, aicore_faults, aicore_key, start_operator, figures
):
    burst_then_sigterm(kubectl, namespace, aicore, aicore_faults, start_operator, figures, 250)


@pytest.mark.chaos_long
def test_an_api_server_outage_is_a_few_lines_per_object(
    kubectl, cluster, namespace, aicore, aicore_faults, aicore_key, start_operator, figures
):
    """The API server frozen (SIGSTOP) for 60 s under settled models, then thawed (the issue's
    run had 45 models; 20 keep the case inside ten minutes on a 2-core machine)."""
    if cluster.local is None:
        pytest.skip("needs the local control plane (it freezes the API server)")
    state = cluster.local._state()
    assert state is not None
    apiserver = state.pids["kube-apiserver"]
    aicore_faults.set_runtime("noop")
    n = 20
    operator = start_operator(namespace, args=["--metrics-port=0"])
    apply_models(kubectl, namespace, [f"o{i}" for i in range(n)])
    wait_all_running(kubectl, namespace, n, timeout=600)
    before = len(operator.logs().splitlines())
    os.kill(apiserver, signal.SIGSTOP)
    try:
        time.sleep(60)
    finally:
        os.kill(apiserver, signal.SIGCONT)
    thawed = time.monotonic()
    # NB: the leader cannot renew its Lease while the API server is frozen for longer than the
    # renew deadline (10 s), so it exits 1, as controller-runtime's managers do, and kubelet
    # restarts the container; this case restarts it the same way. (The case was written before
    # leader election, when the process rode the outage out.)
    assert operator.proc is not None
    assert operator.proc.wait(timeout=60) == 1
    assert "lost Lease" in operator.logs()
    operator.start()
    # A change after the outage is served: the operator's watch came back.
    subprocess.run(
        ["kubectl", "--kubeconfig", str(cluster.kubeconfig), "annotate", "emb", "o0",
         "-n", namespace, "chaos/poke=1", "--overwrite"], check=True, capture_output=True,
    )  # fmt: skip
    wait_all_running(kubectl, namespace, n, timeout=120)
    figures["seconds_to_converge_after_outage"] = round(time.monotonic() - thawed, 1)
    time.sleep(10)
    # NB: the fixture runs the operator with --verbose; count what a default run would print.
    lines = [line for line in operator.logs().splitlines()[before:] if "[DEBUG" not in line]
    figures["models"] = n
    figures["outage_seconds"] = 60
    figures["log_lines_during_and_after"] = len(lines)
    figures["tracebacks"] = sum("Traceback" in line for line in lines)
    figures["restarts"] = 1
    assert figures["tracebacks"] == 0
    assert len(lines) < 10 * n, f"{len(lines)} log lines for {n} models"
