"""examples/aicore_openai.py `AICoreTokenAuth`: token reuse, expiry, one retry on 401, no secrets.

The AI Core side is an `httpx.MockTransport` that issues numbered tokens and accepts only the
latest one; the end-to-end run against the local AI Core is in tests/integration/test_clients.py.
"""

from __future__ import annotations

import importlib.util
from types import ModuleType
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest

from tests.fixtures.cluster import REPO_ROOT

KEY = {
    "clientid": "sb-client!b1",
    "clientsecret": "s3cr3t-value",
    "url": "https://tenant.auth.example",
    "serviceurls": {"AI_API_URL": "https://api.ai.example"},
}
API = "https://api.ai.example/v2/inference/deployments/d1/v1/embeddings"


def load() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "aicore_openai", REPO_ROOT / "examples" / "aicore_openai.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class FakeAICore:
    def __init__(self, lifetime: int = 3600) -> None:
        self.lifetime = lifetime
        self.issued = 0
        self.token_forms: list[dict[str, list[str]]] = []
        self.seen: list[tuple[str | None, str | None, int]] = []
        self.token_status = 200
        self.accept = True

    @property
    def valid(self) -> str:
        return f"token-{self.issued}"

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/oauth/token":
            self.token_forms.append(parse_qs(request.content.decode()))
            if self.token_status != 200:
                return httpx.Response(self.token_status, json={"error": "invalid_client"})
            self.issued += 1
            return httpx.Response(
                200, json={"access_token": self.valid, "expires_in": self.lifetime}
            )
        auth = request.headers.get("authorization")
        status = 200 if self.accept and auth == f"Bearer {self.valid}" else 401
        self.seen.append((auth, request.headers.get("ai-resource-group"), status))
        return httpx.Response(status, json={"data": []})

    def revoke(self) -> None:
        self.issued += 1  # the current token is no longer the valid one


@pytest.fixture
def example() -> ModuleType:
    return load()


def client(example: ModuleType, fake: FakeAICore, **kw: Any) -> httpx.Client:
    auth = example.AICoreTokenAuth(KEY, "team-a", **kw)
    return httpx.Client(auth=auth, transport=httpx.MockTransport(fake))


def test_one_token_is_reused_with_the_resource_group(example: ModuleType) -> None:
    fake = FakeAICore()
    with client(example, fake) as http:
        assert [http.post(API, json={}).status_code for _ in range(3)] == [200, 200, 200]
    assert fake.issued == 1
    assert fake.seen == [("Bearer token-1", "team-a", 200)] * 3
    assert fake.token_forms == [
        {
            "grant_type": ["client_credentials"],
            "client_id": ["sb-client!b1"],
            "client_secret": ["s3cr3t-value"],
        }
    ]


def test_a_revoked_token_is_replaced_once_and_the_call_retried(example: ModuleType) -> None:
    fake = FakeAICore()
    with client(example, fake) as http:
        assert http.post(API, json={}).status_code == 200
        fake.revoke()
        assert http.post(API, json={}).status_code == 200
    assert [s for _, _, s in fake.seen] == [200, 401, 200]
    assert len(fake.token_forms) == 2


def test_a_still_refused_retry_is_returned_not_repeated(example: ModuleType) -> None:
    fake = FakeAICore()
    with client(example, fake) as http:
        assert http.post(API, json={}).status_code == 200
        fake.accept = False  # e.g. the service key was deleted in BTP
        assert http.post(API, json={}).status_code == 401
    assert [s for _, _, s in fake.seen] == [200, 401, 401]
    assert fake.issued == 2


def test_a_token_is_renewed_before_it_expires(
    example: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = [1000.0]
    monkeypatch.setattr(example.time, "monotonic", lambda: now[0])
    fake = FakeAICore(lifetime=600)  # refreshed after max(600 - 300, 600 / 2) = 300 s
    with client(example, fake) as http:
        http.post(API, json={})
        now[0] += 299
        http.post(API, json={})
        assert fake.issued == 1
        now[0] += 2
        http.post(API, json={})
    assert fake.issued == 2
    assert [s for _, _, s in fake.seen] == [200, 200, 200]  # no 401 needed


def test_no_secret_in_repr_or_token_errors(example: ModuleType) -> None:
    fake = FakeAICore()
    fake.token_status = 401
    auth = example.AICoreTokenAuth(KEY, "team-a")
    assert "s3cr3t-value" not in repr(auth) and "sb-client" not in repr(auth)
    with httpx.Client(auth=auth, transport=httpx.MockTransport(fake)) as http:
        with pytest.raises(RuntimeError) as exc:
            http.post(API, json={})
    assert str(exc.value) == (
        "AI Core token request to https://tenant.auth.example/oauth/token failed: HTTP 401"
    )
