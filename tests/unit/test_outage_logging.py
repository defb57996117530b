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
