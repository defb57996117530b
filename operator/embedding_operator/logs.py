"""Operator logging: text or JSON lines, each line about an object naming it, secrets masked.

kopf's own set-up (`kopf.configure`, called by runner.py) installs the one stream handler and
its level rules; `install` finishes that handler. kopf's per-object loggers attach `k8s_ref`
(namespace, name, uid, ...) to their records, and its text formatter prefixes such lines with
`[namespace/name]`. Two filters on that handler finish the job:

- `ObjectContextFilter` gives `k8s_ref` to records from our own module loggers (the AI Core
  client, the reconciler) logged while a handler works on an object: the handlers bind the object
  with `bind(body)` / `about(body)` in a context variable, which asyncio keeps per task.
- `WaitingIsNotAnError` turns kopf's ERROR line for each retry of the finalizer (how kopf
  handlers wait: they raise `TemporaryError`) into an INFO line saying what deletion waits for.
- `RedactingFilter` passes the message and the traceback of every record through the one
  redactor (redact.py), whichever logger it came from. It also sits on kopf's object logger
  itself, because kopf turns that logger's warnings into Events in a handler of its own that
  runs before the root handler's filters.

NB: kopf's JSON formatter nests the reference under `object` and has no logger name; log
pipelines query flat keys, so `--log-format json` uses `JsonFormatter` below: one object per
line with timestamp, level, logger, message, and namespace/name when the line is about an object.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Iterator, Mapping
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

from embedding_operator.redact import redact

TEXT = "text"
JSON = "json"
FORMATS = (TEXT, JSON)

# NB: httpx logs every request URL at INFO; URLs carry no secrets, but the noise hides ours.
_NOISY = ("httpx", "httpcore", "httpx2", "httpcore2")

_object: ContextVar[dict[str, Any] | None] = ContextVar("embedding_operator_object", default=None)


def _ref(body: Mapping[str, Any]) -> dict[str, Any]:
    meta = body.get("metadata") or {}
    return {
        "apiVersion": body.get("apiVersion"),
        "kind": body.get("kind"),
        "namespace": meta.get("namespace"),
        "name": meta.get("name"),
        "uid": meta.get("uid"),
    }


def bind(body: Mapping[str, Any]) -> None:
    """From now on, log lines of the current asyncio task name the object `body`."""
    _object.set(_ref(body))


@contextlib.contextmanager
def about(body: Mapping[str, Any]) -> Iterator[None]:
    """Within this block, log lines of the current task name the object `body`."""
    token = _object.set(_ref(body))
    try:
        yield
    finally:
        _object.reset(token)


class ObjectContextFilter(logging.Filter):
    """Adds the object bound by `about()` to records that carry no object of their own."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "k8s_ref", None) is None:
            ref = _object.get()
            if ref is not None:
                record.k8s_ref = ref
        return True


class WaitingIsNotAnError(logging.Filter):
    """kopf logs each `TemporaryError` retry at ERROR; for the finalizer that is a deletion
    still waiting for AI Core or KServe (a stop in progress, an outage), not a failure.

    NB: a normal deletion logged "Handler 'finalize' failed temporarily: stopping and deleting
    AI Core deployments: …=RUNNING" at ERROR on every pass, which log alerting takes for a
    failure. The status (Terminating, Stalled DeletionBlocked after the deadline) and our own
    `Deleting` Event say what waits; the line stays, at INFO, and is never posted as an Event.
    """

    PREFIX = "Handler 'finalize' failed temporarily: "

    def filter(self, record: logging.LogRecord) -> bool:
        if (
            record.levelno == logging.ERROR
            and isinstance(record.msg, str)
            and record.msg.startswith(self.PREFIX)
        ):
            record.levelno, record.levelname = logging.INFO, "INFO"
            record.msg = "deletion waits: " + record.msg.removeprefix(self.PREFIX)
            record.k8s_skip = True  # kopf's Event poster skips such records
        return True


class RedactingFilter(logging.Filter):
    """Masks secrets in every record's message and traceback before any formatter sees them."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a broken format call must not drop the line
            message = f"{record.msg!s} {record.args!r}"
        clean = redact(message)
        if clean != message or record.args:
            record.msg, record.args = clean, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: timestamp, level, logger, message, namespace/name, exception."""

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "timestamp": datetime.fromtimestamp(record.created, UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        ref = getattr(record, "k8s_ref", None)
        if isinstance(ref, Mapping):
            if ref.get("namespace"):
                doc["namespace"] = ref["namespace"]
            doc["name"] = ref.get("name")
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            doc["exception"] = record.exc_text
        if record.stack_info:
            doc["stack"] = record.stack_info
        return json.dumps(doc, default=str)


def install(handler: logging.Handler, *, log_format: str = TEXT) -> None:
    """Finish the operator's log handler (the one `kopf.configure` installed on the root logger).

    Text lines keep kopf's formatter, which prefixes lines about an object with [namespace/name].
    """
    if log_format not in FORMATS:
        raise ValueError(f"log format must be one of {', '.join(FORMATS)}, got {log_format!r}")
    if log_format == JSON:
        handler.setFormatter(JsonFormatter())
    # NB: order matters: the object is attached first, then everything is redacted.
    handler.addFilter(ObjectContextFilter())
    handler.addFilter(RedactingFilter())
    # NB: kopf's K8sPoster (an Event per warning of an object logger) hangs on "kopf.objects".
    objects = logging.getLogger("kopf.objects")
    for kind in (WaitingIsNotAnError, RedactingFilter):
        if not any(isinstance(f, kind) for f in objects.filters):
            objects.addFilter(kind())
    for noisy in _NOISY:
        logging.getLogger(noisy).setLevel(logging.WARNING)
