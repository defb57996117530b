"""Outages are logged once per object without a traceback; bugs keep their traceback (issue 15
item 6); clean-up waits for the reconcile loops before it closes the clients."""

from __future__ import annotations

import asyncio
import logging

import httpx
import httpx2
import pytest
from lightkube.core.exceptions import ApiError

from embedding_operator.handlers import ActiveLoops, log_failure
from embedding_operator.retry import describe, is_transient


def api_error(code: int) -> ApiError:
    response = httpx2.Response(
        code,
        json={"kind": "Status", "code": code, "message": "m"},
        request=httpx2.Request("GET", "http://x"),
    )
    return ApiError(response=response)


@pytest.mark.parametrize(
    "error,expected",
    [
        (httpx2.ConnectError("refused"), True),
        (httpx.ReadTimeout("slow"), True),
        (ConnectionResetError(), True),
        (TimeoutError(), True),
        (api_error(503), True),
        (api_error(429), True),
        (api_error(409), True),
        (api_error(403), False),
        (api_error(422), False),
        (KeyError("status"), False),
        (AttributeError("x"), False),
    ],
    ids=lambda v: type(v).__name__ if isinstance(v, BaseException) else str(v),
)
def test_is_transient(error, expected):
    assert is_transient(error) is expected


def test_an_outage_logs_one_line_and_no_traceback(caplog):
    logger = logging.getLogger("test.outage")
    with caplog.at_level(logging.DEBUG, logger="test.outage"):
        for failures in range(1, 20):
            log_failure(logger, httpx2.ConnectError("Connection refused"), failures, 1.0)
    loud = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(loud) == 1 and "ConnectError: Connection refused" in loud[0].getMessage()
    assert not any(r.exc_info for r in caplog.records)


def test_a_bug_keeps_its_traceback_once(caplog):
    logger = logging.getLogger("test.bug")
    with caplog.at_level(logging.INFO, logger="test.bug"):
        for failures in range(1, 5):
            try:
                raise KeyError("status")
            except KeyError as error:
                log_failure(logger, error, failures, 1.0)
    assert [bool(r.exc_info) for r in caplog.records] == [True, False, False, False]


def test_describe_is_one_line():
    assert describe(ValueError("a\nb")) == "ValueError: a"
    assert describe(TimeoutError()) == "TimeoutError"


async def test_cleanup_waits_for_the_last_loop():
    loops = ActiveLoops()
    assert await loops.wait_idle(0.01)
    loops.enter()
    loops.enter()
    assert not await loops.wait_idle(0.01)
    loops.leave()
    asyncio.get_running_loop().call_later(0.05, loops.leave)
    assert await loops.wait_idle(1)
    assert loops.count == 0


async def test_the_operators_exit_cancels_every_pass_in_flight():
    """The first loop told that the operator exits stops all of them at once (kopf tells one
    daemon after another), and a loop that is itself cancelled still sees its cancellation."""
    loops = ActiveLoops()
    started = asyncio.Event()

    async def slow_pass() -> float:
        started.set()
        await asyncio.sleep(60)
        return 1.0

    async def quick_pass() -> float:
        return 2.0

    assert await loops.run(quick_pass()) == 2.0
    passes = [asyncio.ensure_future(loops.run(slow_pass())) for _ in range(3)]
    await started.wait()
    loops.exit()
    assert await asyncio.wait_for(asyncio.gather(*passes), 1) == [None, None, None]
    assert await loops.run(quick_pass()) is None  # no new pass once exiting

    # kopf cancelling the loop itself (deletion, or its cancellation_backoff) is not swallowed.
    other = ActiveLoops()
    loop_task = asyncio.ensure_future(other.run(slow_pass()))
    await asyncio.sleep(0.01)
    loop_task.cancel()
    try:
        await loop_task
    except asyncio.CancelledError:
        pass
    else:
        raise AssertionError("a cancelled loop must stay cancelled")
