"""Conditions and status reporting: pure table tests."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from embedding_operator.api.conditions import (
    READY,
    RECONCILING,
    STALLED,
    Outcome,
    Reason,
    conditions_for,
    get_condition,
)
from embedding_operator.api.status import EmbeddingModelStatus, Phase
from embedding_operator.backends.base import Reconciled
from embedding_operator.report import build_status, merge_patch, transition_events

T0 = datetime(2026, 11, 24, 12, 0, 0, 123456, tzinfo=UTC)
T1 = T0 + timedelta(minutes=5)


def test_every_reason_matches_the_metav1_condition_pattern():
    for reason in Reason:
        assert re.fullmatch(r"[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?", reason.value), reason


@pytest.mark.parametrize(
    "outcome,expected",
    [
        (
            Outcome.ready(Reason.SERVING_VERIFIED, "ok"),
            {READY: "True", RECONCILING: "False", STALLED: "False"},
        ),
        (
            Outcome.progressing(Reason.CREATING, "…"),
            {READY: "False", RECONCILING: "True", STALLED: "False"},
        ),
        (
            Outcome.stalled(Reason.SECRET_NOT_FOUND, "…"),
            {READY: "False", RECONCILING: "False", STALLED: "True"},
        ),
        (
            Outcome.suspended(Reason.SUSPENDED, "…"),
            {READY: "False", RECONCILING: "False", STALLED: "False"},
        ),
    ],
    ids=["ready", "progressing", "stalled", "suspended"],
)
def test_outcome_sets_all_three_kstatus_conditions(outcome, expected):
    conditions = conditions_for(outcome, [], generation=3, now=T0)
    assert [c.type for c in conditions] == [READY, RECONCILING, STALLED]
    assert {c.type: c.status for c in conditions} == expected
    assert all(c.observed_generation == 3 for c in conditions)
    assert all(c.reason == outcome.reason for c in conditions)


def test_transition_time_moves_only_when_status_flips_and_has_whole_seconds():
    first = conditions_for(Outcome.progressing(Reason.CREATING, "a"), [], generation=1, now=T0)
    assert get_condition(first, READY).last_transition_time == "2026-11-24T12:00:00Z"
    again = conditions_for(
        Outcome.progressing(Reason.DEPLOYMENT_PENDING, "b"), first, generation=2, now=T1
    )
    assert get_condition(again, READY).last_transition_time == "2026-11-24T12:00:00Z"
    assert get_condition(again, READY).observed_generation == 2
    ready = conditions_for(Outcome.ready(Reason.SERVING_VERIFIED, "c"), again, generation=2, now=T1)
    assert get_condition(ready, READY).last_transition_time == "2026-11-24T12:05:00Z"


def test_build_status_keeps_backend_sections_and_sets_phase():
    previous = EmbeddingModelStatus.model_validate({"aicore": {"deploymentId": "d123"}})
    status = build_status(
        previous,
        Reconciled(Outcome.stalled(Reason.SECRET_NOT_FOUND, "create it"), requeue_after=1),
        generation=4,
        now=T0,
    )
    assert status.phase == Phase.FAILED
    assert status.observed_generation == 4
    assert status.aicore is not None and status.aicore.deployment_id == "d123"
    assert status.endpoint is None


def test_events_fire_once_per_transition():
    def status(outcome: Outcome, prev: EmbeddingModelStatus) -> EmbeddingModelStatus:
        return build_status(prev, Reconciled(outcome, requeue_after=1), generation=1, now=T0)

    empty = EmbeddingModelStatus()
    creating = status(Outcome.progressing(Reason.CREATING, "x"), empty)
    assert [e.reason for e in transition_events(empty, creating)] == ["Creating"]
    assert (
        transition_events(creating, status(Outcome.progressing(Reason.CREATING, "x"), creating))
        == []
    )
    stalled = status(Outcome.stalled(Reason.SECRET_NOT_FOUND, "no secret"), creating)
    (event,) = transition_events(creating, stalled)
    assert (event.type, event.reason, event.message) == ("Warning", "SecretNotFound", "no secret")
    assert (
        transition_events(
            stalled, status(Outcome.stalled(Reason.SECRET_NOT_FOUND, "no secret"), stalled)
        )
        == []
    )
    ready = status(Outcome.ready(Reason.SERVING_VERIFIED, "ok"), stalled)
    assert [(e.type, e.reason) for e in transition_events(stalled, ready)] == [
        ("Normal", "ServingVerified")
    ]


@pytest.mark.parametrize(
    "old,new,patch",
    [
        ({}, {"a": 1}, {"a": 1}),
        ({"a": 1}, {"a": 1}, {}),
        ({"a": 1, "b": 2}, {"a": 1}, {"b": None}),
        ({"x": {"a": 1, "b": 2}}, {"x": {"a": 1}}, {"x": {"b": None}}),
        ({"c": [1, 2]}, {"c": [1]}, {"c": [1]}),
    ],
)
def test_merge_patch(old, new, patch):
    assert merge_patch(old, new) == patch
