"""The reconcile loop's wait: cut short by user changes, not by our own status writes."""

from __future__ import annotations

import asyncio

from embedding_operator import handlers


def body(generation: int = 1, **annotations: str) -> dict:
    return {"metadata": {"generation": generation, "annotations": annotations}, "status": {}}


def test_user_state_ignores_status_and_kopf_bookkeeping():
    before = handlers.user_state(body())
    after = body()
    after["status"] = {"phase": "Ready"}
    after["metadata"]["annotations"]["embeddings.ai/last-handled-configuration"] = "{}"
    assert handlers.user_state(after) == before
    assert handlers.user_state(body(generation=2)) != before
    assert handlers.user_state(body(**{"example.com/restart": "1"})) != before


async def test_wait_returns_early_on_a_spec_change(monkeypatch):
    monkeypatch.setattr(handlers, "CHANGE_CHECK_SECONDS", 0.01)
    live = body()

    async def edit() -> None:
        await asyncio.sleep(0.05)
        live["metadata"]["generation"] = 2

    loop = asyncio.get_running_loop()
    started = loop.time()
    await asyncio.gather(handlers.wait_for_change(live, 30), edit())
    assert loop.time() - started < 5


async def test_wait_runs_its_course_when_only_status_changes(monkeypatch):
    monkeypatch.setattr(handlers, "CHANGE_CHECK_SECONDS", 0.01)
    live = body()

    async def write_status() -> None:
        await asyncio.sleep(0.02)
        live["status"] = {"phase": "Ready"}

    loop = asyncio.get_running_loop()
    started = loop.time()
    await asyncio.gather(handlers.wait_for_change(live, 0.2), write_status())
    assert loop.time() - started >= 0.2
