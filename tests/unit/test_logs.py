"""Operator log lines: secrets masked, the object named in text and JSON, one JSON object per line.

Every secret shape through every exit is in test_redact.py; this file checks the log wiring.

The handler under test is set up the way runner.py does it (kopf.configure, then logs.install),
writing to a StringIO instead of stderr.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging

import kopf
import pytest

from embedding_operator import logs
from embedding_operator.redact import REDACTED

OPAQUE = "f3a9c1d2e4b5a6c7d8e9f0a1b2c3d4e5"
SECRET = "kX9-long-client-secret_value=="
BODY = {
    "apiVersion": "embeddings.ai/v1alpha1",
    "kind": "EmbeddingModel",
    "metadata": {"name": "minilm", "namespace": "team-a", "uid": "u-1"},
}


def lines(stream: io.StringIO) -> list[str]:
    return stream.getvalue().splitlines()


def test_text_lines_name_the_object_from_kopf_and_from_our_own_loggers(log_capture):
    stream, handler = log_capture
    logs.install(handler, log_format=logs.TEXT)
    kopf_logger = kopf.LocalObjectLogger(body=kopf.Body(BODY), settings=kopf.OperatorSettings())
    kopf_logger.info("handler succeeded")
    with logs.about(BODY):
        logging.getLogger("embedding_operator.aicore").warning("retrying GET %s", "/lm/meta")
    logging.getLogger("embedding_operator.aicore").warning("no object here")
    first, second, third = lines(stream)[-3:]
    assert "[team-a/minilm] handler succeeded" in first
    assert "[team-a/minilm] retrying GET /lm/meta" in second
    assert "[team-a/" not in third and "no object here" in third


def test_json_lines_are_one_object_each_with_flat_object_fields(log_capture):
    stream, handler = log_capture
    logs.install(handler, log_format=logs.JSON)
    with logs.about(BODY):
        logging.getLogger("embedding_operator.reconciler").info("reconciled %s", "ok")
    logging.getLogger("embedding_operator").error("multi\nline message")
    try:
        raise ValueError("boom")
    except ValueError:
        logging.getLogger("embedding_operator").exception("failed")
    records = [json.loads(line) for line in lines(stream)]
    about, plain, failed = records[-3:]
    assert about["message"] == "reconciled ok"
    assert about["namespace"] == "team-a" and about["name"] == "minilm"
    assert about["level"] == "INFO" and about["logger"] == "embedding_operator.reconciler"
    assert about["timestamp"].endswith("+00:00")
    assert "namespace" not in plain and plain["message"] == "multi\nline message"
    assert "ValueError: boom" in failed["exception"]


def test_secrets_are_masked_in_messages_arguments_and_tracebacks(log_capture):
    stream, handler = log_capture
    logs.install(handler, log_format=logs.JSON)
    log = logging.getLogger("embedding_operator.aicore")
    log.warning("token response: %s", {"access_token": OPAQUE, "token_type": "bearer"})
    log.info("calling with Authorization: Bearer %s", OPAQUE)
    try:
        raise RuntimeError(f'XSUAA said: {{"clientsecret": "{SECRET}"}}')
    except RuntimeError:
        log.exception("token fetch failed")
    output = stream.getvalue()
    assert OPAQUE not in output and SECRET not in output
    assert output.count(REDACTED) >= 3


async def test_the_bound_object_stays_with_its_task(log_capture):
    stream, handler = log_capture
    logs.install(handler, log_format=logs.JSON)
    log = logging.getLogger("embedding_operator")

    async def daemon(name: str) -> None:
        logs.bind({"metadata": {"namespace": "ns", "name": name}})
        await asyncio.sleep(0)
        log.info("pass of %s", name)

    await asyncio.gather(daemon("a"), daemon("b"))
    log.info("after")
    records = [json.loads(line) for line in lines(stream)[-3:]]
    assert {(r["name"], r["message"]) for r in records[:2]} == {
        ("a", "pass of a"),
        ("b", "pass of b"),
    }
    assert "name" not in records[2]


def test_unknown_format_is_refused():
    with pytest.raises(ValueError, match="text, json"):
        logs.install(logging.StreamHandler(io.StringIO()), log_format="yaml")


def test_a_finalizer_retry_is_an_info_line_about_what_deletion_waits_for(log_capture):
    stream, handler = log_capture
    logs.install(handler, log_format=logs.TEXT)
    kopf_logger = kopf.LocalObjectLogger(body=kopf.Body(BODY), settings=kopf.OperatorSettings())
    # kopf's own wording for a TemporaryError retry (kopf/_core/actions/execution.py)
    kopf_logger.error("Handler 'finalize' failed temporarily: stopping d1=RUNNING")
    kopf_logger.error("Handler 'reconcile' failed temporarily: boom")  # not the finalizer
    got = lines(stream)
    assert "[INFO    ]" in got[0] and "deletion waits: stopping d1=RUNNING" in got[0]
    assert "failed" not in got[0]
    assert "[ERROR   ]" in got[1] and "Handler 'reconcile' failed temporarily: boom" in got[1]
