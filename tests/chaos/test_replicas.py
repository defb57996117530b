"""Issue 15 item 1: two operator processes, one Lease. Only the holder acts; when it is killed
the standby takes over within a lease duration; no model gets a second deployment."""

from __future__ import annotations

import time

import pytest

from tests.chaos.helpers import (
    FAST_LEASE,
    apply_models,
    lease_holder,
    models,
    remote_counts,
    wait_all_running,
)
from tests.fixtures.cluster import wait_until

pytestmark = pytest.mark.integration

MODELS = 6


def test_two_replicas_one_acts_and_the_standby_takes_over(
    kubectl, namespace, aicore, aicore_faults, aicore_key, start_operator, figures
):
    aicore_faults.set_runtime("noop")
    first = start_operator(namespace, POD_NAME="replica-a", **FAST_LEASE)
    wait_until(lambda: lease_holder(kubectl, namespace) == "replica-a", what="a leads", timeout=30)
    second = start_operator(namespace, POD_NAME="replica-b", **FAST_LEASE)
    names = [f"r{i}" for i in range(MODELS)]
    apply_models(kubectl, namespace, names)
    figures["models"] = MODELS
    figures["seconds_to_converge"] = wait_all_running(kubectl, namespace, MODELS, timeout=180)
    assert lease_holder(kubectl, namespace) == "replica-a"
    assert "standby" in second.logs() and "acquired" not in second.logs()
    assert "lost Lease" not in first.logs()

    # The leader dies: the standby takes the Lease once it has not been renewed for 8 s.
    first.kill()
    killed = time.monotonic()
    wait_until(lambda: lease_holder(kubectl, namespace) == "replica-b", what="b leads", timeout=30)
    failover = time.monotonic() - killed
    figures["failover_seconds"] = round(failover, 1)
    assert failover < 8 + 4, f"standby took {failover:.1f}s for an 8 s lease"

    # The new leader serves changes; a restarted first replica waits as the standby.
    first.start()
    apply_models(kubectl, namespace, [f"r{i}" for i in range(MODELS, MODELS + 2)])
    figures["seconds_to_converge_after_failover"] = wait_all_running(
        kubectl, namespace, MODELS + 2, timeout=180
    )
    objs = models(kubectl, namespace)
    duplicates = remote_counts(aicore, objs)
    figures["kills"] = 1
    figures["duplicates"] = sum(duplicates.values())
    assert duplicates == {"artifacts": 0, "configurations": 0, "deployments": 0}
    assert lease_holder(kubectl, namespace) == "replica-b"

    # A clean stop releases the Lease: the standby takes over without waiting for expiry.
    second.stop()
    stopped = time.monotonic()
    wait_until(lambda: lease_holder(kubectl, namespace) == "replica-a", what="a again", timeout=30)
    figures["handover_seconds_after_sigterm"] = round(time.monotonic() - stopped, 1)
    assert "Traceback" not in first.logs() + second.logs()
