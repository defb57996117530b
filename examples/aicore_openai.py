"""Call an EmbeddingModel on SAP AI Core with the OpenAI Python client, refreshing the token.

AI Core's inference gateway wants `Authorization: Bearer <XSUAA token>` and
`AI-Resource-Group: <group>` on every call. Tokens expire (and can be revoked), so a fixed
`api_key` stops working after a while. `AICoreTokenAuth` is an `httpx.Auth` that fetches a token
with the client-credentials flow from the service key, reuses it until shortly before it expires,
and on a 401 fetches a new one and retries the request once. Give it to OpenAI through
`http_client=httpx.Client(auth=...)`; the `api_key` OpenAI insists on is then never sent.

Run (the endpoint is the EmbeddingModel's status.endpoint):

    ENDPOINT=$(kubectl get emb my-model -o jsonpath='{.status.endpoint}')
    python examples/aicore_openai.py service-key.json "$ENDPOINT" my-model "hello" "world"

Needs only `httpx` and `openai`; nothing from this repository. Tested in
tests/integration/test_clients.py (including a revocation of every token mid-way).
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Generator, Mapping
from typing import Any

import httpx
import openai


class AICoreTokenAuth(httpx.Auth):
    """Bearer token from an AI Core service key, refreshed before expiry and after a 401."""

    # The token response body must be read inside the flow.
    requires_response_body = True

    def __init__(
        self, service_key: Mapping[str, Any], resource_group: str, *, leeway: float = 300.0
    ) -> None:
        url = str(service_key["url"]).rstrip("/")
        self._token_url = url if url.endswith("/oauth/token") else url + "/oauth/token"
        self._form = {
            "grant_type": "client_credentials",
            "client_id": str(service_key["clientid"]),
            "client_secret": str(service_key["clientsecret"]),
        }
        self.resource_group = resource_group
        self._leeway = leeway
        self._token: str | None = None
        self._expires_at = 0.0
        self._lock = threading.Lock()
        self.fetched = 0  # how many tokens this auth has fetched (for tests and metrics)

    def __repr__(self) -> str:  # never show the secret or the token
        return f"<AICoreTokenAuth {self._token_url} rg={self.resource_group}>"

    def _token_request(self) -> httpx.Request:
        return httpx.Request("POST", self._token_url, data=self._form)

    def _store(self, response: httpx.Response) -> None:
        if response.status_code != 200:
            # NB: the body of a refused token request may echo the client id; keep it out.
            raise RuntimeError(
                f"AI Core token request to {self._token_url} failed: HTTP {response.status_code}"
            )
        body = response.json()
        lifetime = float(body.get("expires_in", 3600))
        with self._lock:
            self._token = str(body["access_token"])
            # Refresh `leeway` seconds early, but never later than half-way for short tokens.
            self._expires_at = time.monotonic() + max(lifetime - self._leeway, lifetime / 2)
            self.fetched += 1

    def _current(self) -> str | None:
        with self._lock:
            return self._token if time.monotonic() < self._expires_at else None

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        token = self._current()
        if token is None:
            self._store((yield self._token_request()))
            token = self._current()
        request.headers["Authorization"] = f"Bearer {token}"
        request.headers["AI-Resource-Group"] = self.resource_group
        response = yield request
        if response.status_code == 401:  # revoked or expired early: one fresh token, one retry
            self._store((yield self._token_request()))
            request.headers["Authorization"] = f"Bearer {self._current()}"
            yield request


def aicore_openai(
    service_key: Mapping[str, Any], endpoint: str, resource_group: str = "default"
) -> openai.OpenAI:
    """An OpenAI client for one AI Core deployment (`endpoint` = status.endpoint)."""
    return openai.OpenAI(
        base_url=endpoint,
        api_key="unused",  # AICoreTokenAuth replaces the Authorization header
        # NB: openai 3.x is typed for its httpx2 fork but takes an httpx.Client as well (and
        # openai 1.x only httpx), so the example sticks to plain httpx.
        http_client=httpx.Client(  # type: ignore[arg-type]
            auth=AICoreTokenAuth(service_key, resource_group), timeout=60
        ),
    )


def main(argv: list[str]) -> int:
    if len(argv) < 4:
        print(__doc__, file=sys.stderr)
        return 2
    key_file, endpoint, model, *texts = argv
    with open(key_file, encoding="utf-8") as f:
        key = json.load(f)
    client = aicore_openai(key, endpoint)
    result = client.embeddings.create(model=model, input=texts, encoding_format="float")
    print(f"{len(result.data)} vectors x {len(result.data[0].embedding)} dimensions")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
