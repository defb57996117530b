"""The API key of spec.kserve.auth, from a Secret's data: usable as a bearer token or a clear
error that names the Secret and never the key (pure)."""

from __future__ import annotations

import base64

import pytest

from embedding_operator.api.spec import ApiKeySecretRef, parse_spec
from embedding_operator.apikey import ApiKey, ApiKeyUnavailable, api_key_from
from embedding_operator.embed import target_of

REF = ApiKeySecretRef(name="minilm-api-key")


def b64(text: bytes) -> str:
    return base64.b64encode(text).decode()


def test_a_good_key_becomes_a_bearer_header_and_hides_in_repr():
    key = api_key_from({"apiKey": b64(b"s3cret-Key_1")}, "42", "ml", REF)
    assert key.headers() == {"Authorization": "Bearer s3cret-Key_1"}
    assert key.version == "42"
    assert "s3cret" not in repr(key)


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        (None, "has no key 'apiKey' (it has: none)"),
        ({"token": b64(b"x")}, "has no key 'apiKey' (it has: token)"),
        ({"apiKey": b64(b"s3cret\n")}, "without a trailing newline"),
        ({"apiKey": b64(b"two s3cret")}, "whitespace"),
        ({"apiKey": b64(b"")}, "empty"),
        ({"apiKey": b64("sëcret".encode())}, "non-ASCII"),
        ({"apiKey": "not base64!"}, "empty"),
    ],
)
def test_an_unusable_key_names_the_secret_and_the_fix_never_the_value(data, fragment):
    with pytest.raises(ApiKeyUnavailable) as error:
        api_key_from(data, "1", "ml", REF)
    message = str(error.value)
    assert "Secret ml/minilm-api-key (spec.kserve.auth.apiKeySecretRef)" in message
    assert fragment in message
    assert "s3cret" not in message


def test_the_key_name_defaults_to_api_key_and_can_be_set():
    spec = parse_spec(
        {
            "backend": "kserve",
            "model": {"name": "m", "uri": "hf://a/b"},
            "kserve": {"auth": {"apiKeySecretRef": {"name": "k", "key": "token"}}},
        }
    )
    assert spec.kserve is not None and spec.kserve.auth is not None
    assert spec.kserve.auth.api_key_secret_ref == ApiKeySecretRef(name="k", key="token")
    assert ApiKeySecretRef(name="k").key == "apiKey"
    assert isinstance(
        api_key_from({"token": b64(b"t")}, "", "ml", ApiKeySecretRef(name="k", key="token")), ApiKey
    )


def test_embed_target_carries_the_secret_ref_of_an_authenticated_kserve_model():
    ready = {"type": "Ready", "status": "True", "reason": "ServingVerified"}
    obj = {
        "metadata": {"name": "m", "namespace": "ml"},
        "spec": {
            "backend": "kserve",
            "model": {"name": "minilm"},
            "kserve": {"auth": {"apiKeySecretRef": {"name": "k"}}},
        },
        "status": {"conditions": [ready], "endpoint": "http://m.ml/v1"},
    }
    assert target_of(obj).api_key_ref == {"name": "k"}
    del obj["spec"]["kserve"]
    assert target_of(obj).api_key_ref is None
