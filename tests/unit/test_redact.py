"""The one redactor: every secret shape through every exit (log lines, kopf's log Events, our
Events, condition messages, status.serving.message, exception text, AI Core errors).

A row is a shape a secret arrives in (seen in adversarial runs: a gateway echoing the request,
an encoded client secret); an exit is a way text leaves the operator. The check does not look
for the literal only: `recoverable` also percent-decodes, JSON-unescapes and base64-decodes what
came out, so a secret that left in another encoding still fails the test.
"""

from __future__ import annotations

import base64
import io
import json
import logging
import re
from collections.abc import Callable, Iterator
from urllib.parse import quote, quote_plus, unquote_plus, urlencode

import httpx
import kopf
import pytest

from embedding_operator import logs, redact
from embedding_operator.aicore.errors import status_error
from embedding_operator.api.conditions import Outcome, Reason
from embedding_operator.api.spec import ApiKeySecretRef
from embedding_operator.api.status import ServingStatus
from embedding_operator.apikey import ApiKeyUnavailable, api_key_from, create_hint
from embedding_operator.backends.base import Event, Reconciled
from embedding_operator.reconciler import Reconciler
from embedding_operator.settings import Settings
from tests.fixtures.reconciler import FakeBackend, FakeKube, body

SECRET = "kX9/long+client secret!value=="
CLIENT_ID = "sb-4f1c2d0e!b1|aicore!b540"
JWT = (
    "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9."
    "eyJzdWIiOiJzYi1jbGllbnQiLCJzY29wZSI6WyJ1YWEucmVzb3VyY2UiXSwiZXhwIjoxNzAwMDAwMDAwfQ."
    "c2lnbmF0dXJlLXZhbHVlLXRoYXQtaXMtbG9uZy1lbm91Z2g"
)
OPAQUE = "f3a9c1d2e4b5a6c7d8e9f0a1b2c3d4e5"
SHORT = "Ab3x9"
REFRESH = "rt-8c1d5e7f9a0b"
# An API key nobody `remember`ed: only the shape rules can mask it.
API_KEY = "9b1e4f7a2c8d3e6f0a5b7c9d"
# The hint in the KServe API-key messages: `$(…)` makes a key, it is not one.
HINT = create_hint("team-a", ApiKeySecretRef(name="embed-key"))
PEM = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n-----END PRIVATE KEY-----"

SERVICE_KEY = {
    "clientid": CLIENT_ID,
    "clientsecret": SECRET,
    "url": "https://tenant.authentication.example.test",
    "serviceurls": {"AI_API_URL": "https://api.ai.example.test"},
}
FORM = urlencode(
    {"grant_type": "client_credentials", "client_id": CLIENT_ID, "client_secret": SECRET}
)
# What the serving check saw from a gateway that echoes the request, cut to 200 characters.
ECHO = json.dumps({"echo": {"headers": {"authorization": f"Bearer {JWT}"}}})[:200]

# (id, text, the secrets that must not be recoverable from the output)
SHAPES: list[tuple[str, str, tuple[str, ...]]] = [
    ("service-key-json", json.dumps(SERVICE_KEY), (SECRET,)),
    ("service-key-pretty", json.dumps({"credentials": SERVICE_KEY}, indent=2), (SECRET,)),
    ("service-key-repr", repr(SERVICE_KEY), (SECRET,)),
    ("service-key-in-json-string", json.dumps({"body": json.dumps(SERVICE_KEY)}), (SECRET,)),
    ("form-body", FORM, (SECRET,)),
    ("query-string", f"POST https://x.test/oauth/token?{FORM} -> 401", (SECRET,)),
    ("form-in-url-param", f"next={quote(FORM, safe='')}", (SECRET,)),
    ("header-bearer", f"Authorization: Bearer {OPAQUE}", (OPAQUE,)),
    ("header-repr", f"{{'Authorization': 'bearer {OPAQUE}', 'AI-Resource-Group': 'x'}}", (OPAQUE,)),
    (
        "header-basic",
        "Authorization: Basic " + base64.b64encode(f"{CLIENT_ID}:{SECRET}".encode()).decode(),
        (SECRET,),
    ),  # noqa: E501
    ("short-bearer", f"upstream said: Bearer {SHORT} rejected", (SHORT,)),
    ("jwt", f"token {JWT} expired", (JWT,)),
    ("jwt-cut-short", f"HTTP 502: {ECHO}", (JWT[:150],)),
    ("refresh-token-form", f"grant_type=refresh_token&refresh_token={REFRESH}", (REFRESH,)),
    ("refresh-token-json", f'{{"refresh_token": "{REFRESH}"}}', (REFRESH,)),
    ("id-token-json", f'{{"id_token": "{JWT}", "token_type": "bearer"}}', (JWT,)),
    ("access-token-repr", f"{{'access_token': '{OPAQUE}', 'expires_in': 3600}}", (OPAQUE,)),
    ("env-var", f"AICORE_CLIENT_SECRET={SECRET} is set", (SECRET,)),
    ("yaml-line", f"password: {OPAQUE}", (OPAQUE,)),
    ("known-verbatim", f"gateway echo: {SECRET}", (SECRET,)),
    ("known-percent", f"gateway echo: {quote(SECRET, safe='')}", (SECRET,)),
    (
        "known-percent-lower",
        "echo: " + re.sub(r"%[0-9A-F]{2}", lambda m: m[0].lower(), quote(SECRET, safe="")),
        (SECRET,),
    ),  # noqa: E501
    ("known-plus", f"echo: {quote_plus(SECRET)}", (SECRET,)),
    ("known-base64", f"echo: {base64.b64encode(SECRET.encode()).decode()}", (SECRET,)),
    ("known-base64url", f"echo: {base64.urlsafe_b64encode(SECRET.encode()).decode()}", (SECRET,)),
    ("known-base64-body", f"echo: {base64.b64encode(FORM.encode()).decode()}", (SECRET,)),
    ("known-json-escaped", json.dumps({"echo": f'said "{SECRET}"'}), (SECRET,)),
    ("pem", f"key: {PEM}", ("MIIEvQIBADANBgkqhkiG9w0BAQEFAASC",)),
    ("key-next-to-the-hint", f"{HINT} --from-literal=token={API_KEY}", (API_KEY,)),
    ("key-in-the-hint", HINT.replace("$(openssl rand -hex 32)", API_KEY), (API_KEY,)),
    (
        "key-next-to-the-hint-json",
        json.dumps({"apiKey": "$(openssl rand -hex 32)", "api_key": API_KEY}),
        (API_KEY,),
    ),
    ("key-shaped-like-a-command", 'apiKey="$(Zq8!wP3vR7tL)"', ("$(Zq8!wP3vR7tL)",)),
    ("key-glued-to-a-command", f'apiKey="$(openssl rand -hex 32){API_KEY}"', (API_KEY,)),
]

PROSE = [
    "created AI Core deployment d1a2b3c4 (configuration cfg-1)",
    '{"token_type": "bearer", "expires_in": 3600}',
    "GET /lm/deployments/{deployment} -> 200 in 0.12s",
    "Unauthorized: the bearer token is missing, invalid or expired",
    'WWW-Authenticate: Bearer realm="aicore", error="invalid_token"',
    "Secret team-a/aicore-key: key 'serviceKey' is missing; create it with kubectl",
    "AI Core service key is invalid: missing required field 'clientsecret'; use the JSON",
    "spec.model.uri: String should match pattern '^(hf|s3|pvc)://'",
    "InferenceService minilm is Ready and served a 384-dimensional embedding",
    "https://api.ai.example.test/v2/inference/deployments/d1a2b3c4/v1/embeddings",
    HINT,
    create_hint("team-a", ApiKeySecretRef(name="embed-key", key="token")),
    "--from-literal=api-key='$(openssl rand -base64 32)' or --from-literal=apiKey=$(pwgen -s 32 1)",
]


def test_the_api_key_hint_reaches_the_user_whole() -> None:
    """The KServe API-key message tells how to make a key; the redactor keeps that command."""
    data = {"apiKey": base64.b64encode(b"key with spaces").decode()}
    with pytest.raises(ApiKeyUnavailable) as error:
        api_key_from(data, "1", "team-a", ApiKeySecretRef(name="embed-key"))
    message = str(error.value)
    assert '--from-literal=apiKey="$(openssl rand -hex 32)"' in message
    assert redact.redact(message) == message


def recoverable(output: str, secret: str, window: int = 10) -> bool:
    """Whether any `window` characters of `secret` can be read back from `output`."""
    once = unquote_plus(output)
    candidates = {output, once, unquote_plus(once), output.replace("\\", "")}
    for run in re.findall(r"[A-Za-z0-9+/_-]{8,}", output):
        for start in range(4):
            chunk = run[start:]
            chunk = chunk[: len(chunk) // 4 * 4]
            for decode in (base64.b64decode, base64.urlsafe_b64decode):
                try:
                    decoded = decode(chunk).decode("utf-8", "replace")
                except ValueError:
                    continue
                candidates |= {decoded, unquote_plus(decoded)}
    pieces = {secret[i : i + window] for i in range(max(1, len(secret) - window + 1))}
    return any(piece in text for piece in pieces for text in candidates)


@pytest.fixture(autouse=True)
def known_secrets() -> Iterator[None]:
    """The operator has loaded a service key and fetched a token, as the AI Core session does."""
    redact.remember(SECRET, OPAQUE)
    yield
    redact.forget_all()


@pytest.fixture
def log_stream(log_capture: tuple[io.StringIO, logging.Handler]) -> io.StringIO:
    """The operator's stderr handler in JSON, as runner.py sets it up."""
    stream, handler = log_capture
    logs.install(handler, log_format=logs.JSON)
    return stream


class Capture(logging.Handler):
    """Stands next to kopf's K8sPoster on "kopf.objects": sees what it would post as an Event."""

    def __init__(self) -> None:
        super().__init__()
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(self.format(record))


async def via_log_message(text: str, log_stream: io.StringIO) -> str:
    logging.getLogger("embedding_operator.aicore").warning("call failed: %s", text)
    return log_stream.getvalue()


async def via_log_traceback(text: str, log_stream: io.StringIO) -> str:
    try:
        raise RuntimeError(text)
    except RuntimeError:
        logging.getLogger("embedding_operator").exception("reconcile failed")
    return log_stream.getvalue()


async def via_kopf_log_event(text: str, log_stream: io.StringIO) -> str:
    capture = Capture()
    objects = logging.getLogger("kopf.objects")
    objects.addHandler(capture)
    try:
        logger = kopf.LocalObjectLogger(body=kopf.Body(body()), settings=kopf.OperatorSettings())
        logger.warning("Handler failed: %s", text)
    finally:
        objects.removeHandler(capture)
    return "\n".join(capture.messages)


async def reconcile_with(next_: Reconciled | Exception) -> tuple[FakeKube, list[Event]]:
    kube, backend, events = FakeKube(), FakeBackend(), []
    backend.next = next_
    shell = Reconciler(
        kube,  # type: ignore[arg-type]
        {"kserve": backend},
        Settings(),
        post_event=lambda _, event: events.append(event),
    )
    await shell.reconcile(body(), logging.getLogger("test"))
    return kube, events


async def via_event(text: str, log_stream: io.StringIO) -> str:
    outcome = Outcome.ready(Reason.SERVING_VERIFIED, "ok")
    _, events = await reconcile_with(Reconciled(outcome, 5, events=[Event.warning("X", text)]))
    return json.dumps([e.message for e in events])


async def via_condition_and_transition_event(text: str, log_stream: io.StringIO) -> str:
    kube, events = await reconcile_with(Reconciled(Outcome.stalled(Reason.INVALID_SPEC, text), 5))
    assert events, "a Stalled transition posts an Event"
    return json.dumps(kube.patches) + json.dumps([e.message for e in events])


async def via_serving_message(text: str, log_stream: io.StringIO) -> str:
    serving = ServingStatus(verified=False, message=text)
    outcome = Outcome.progressing(Reason.SERVING_CHECK_FAILED, "failed")
    kube, _ = await reconcile_with(Reconciled(outcome, 5, serving=serving))
    return json.dumps(kube.patches)


async def via_backend_exception(text: str, log_stream: io.StringIO) -> str:
    kube, _ = await reconcile_with(RuntimeError(text))
    return json.dumps(kube.patches) + log_stream.getvalue()


async def via_aicore_error(text: str, log_stream: io.StringIO) -> str:
    error = status_error("POST", "/v2/lm/deployments", httpx.Response(502, text=text))
    return str(error) + repr(error.args)


Exit = Callable[[str, io.StringIO], object]
EXITS: list[Exit] = [
    via_log_message,
    via_log_traceback,
    via_kopf_log_event,
    via_event,
    via_condition_and_transition_event,
    via_serving_message,
    via_backend_exception,
    via_aicore_error,
]


@pytest.mark.parametrize("exit_", EXITS, ids=lambda f: f.__name__.removeprefix("via_"))
@pytest.mark.parametrize(("text", "secrets"), [s[1:] for s in SHAPES], ids=[s[0] for s in SHAPES])
async def test_no_secret_shape_leaves_by_any_exit(text, secrets, exit_, log_stream):
    output = await exit_(text, log_stream)
    assert isinstance(output, str) and output
    for secret in secrets:
        assert not recoverable(output, secret), output


@pytest.mark.parametrize(("text", "secrets"), [s[1:] for s in SHAPES], ids=[s[0] for s in SHAPES])
def test_every_shape_is_masked_and_masking_is_stable(text, secrets):
    clean = redact.redact(text)
    assert redact.REDACTED in clean
    assert all(not recoverable(clean, s) for s in secrets), clean
    assert redact.redact(clean) == clean


def test_the_oracle_would_see_each_leak():
    """`recoverable` finds each shape's secret in the raw text: the table can fail."""
    for name, text, secrets in SHAPES:
        assert all(recoverable(text, s) for s in secrets), name


@pytest.mark.parametrize("text", PROSE)
def test_ordinary_text_is_left_alone(text):
    assert redact.redact(text) == text


def test_values_passed_per_call_are_masked_without_remembering_them():
    one_off = "per-call-value-91f2"
    assert redact.redact(f"echo {quote(one_off)}", [one_off]) == f"echo {redact.REDACTED}"
    assert one_off in redact.redact(f"echo {one_off}")


def test_short_values_are_not_matched_verbatim():
    redact.remember("abc")
    assert redact.redact("abc abc") == "abc abc"


def test_status_rewrite_is_idempotent_so_no_event_repeats():
    """A masked Stalled message must compare equal on the next pass (one Event, not one a poll)."""
    from datetime import UTC, datetime

    from embedding_operator.api.status import EmbeddingModelStatus
    from embedding_operator.report import build_status, redact_status, transition_events

    result = Reconciled(Outcome.stalled(Reason.INVALID_SPEC, f"bad key {SECRET}"), 5)
    now = datetime(2026, 1, 1, tzinfo=UTC)
    first = redact_status(build_status(EmbeddingModelStatus(), result, generation=1, now=now))
    second = redact_status(build_status(first, result, generation=1, now=now))
    assert transition_events(first, second) == []
