"""Service-key parsing: accepted shapes, derived URLs, and error messages that never echo values."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from embedding_operator.aicore import ServiceKeyError, load_service_key, parse_service_key

SECRET = "very-secret-client-secret-value"


def key(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "clientid": "sb-abc!b1|aicore!b2",
        "clientsecret": SECRET,
        "url": "https://tenant.authentication.eu10.example.test",
        "identityzone": "tenant",
        "appname": "x",
        "serviceurls": {"AI_API_URL": "https://api.ai.example.test"},
    }
    for name, value in overrides.items():
        if value is None:
            data.pop(name, None)
        else:
            data[name] = value
    return data


def test_parses_json_text_and_derives_urls() -> None:
    parsed = parse_service_key(json.dumps(key()))
    assert parsed.clientid == "sb-abc!b1|aicore!b2"
    assert parsed.clientsecret.get_secret_value() == SECRET
    assert parsed.auth_url == "https://tenant.authentication.eu10.example.test/oauth/token"
    assert parsed.api_url == "https://api.ai.example.test/v2"
    assert SECRET not in repr(parsed) and SECRET not in str(parsed)


@pytest.mark.parametrize(
    ("url", "ai_api_url", "auth_url", "api_url"),
    [
        (
            "https://a.test/",
            "https://api.test/",
            "https://a.test/oauth/token",
            "https://api.test/v2",
        ),
        (
            "https://a.test/oauth/token",
            "https://api.test/v2",
            "https://a.test/oauth/token",
            "https://api.test/v2",
        ),
        ("http://127.0.0.1:5000", "http://127.0.0.1:5000", None, "http://127.0.0.1:5000/v2"),
    ],
    ids=["trailing-slash", "already-suffixed", "local-http"],
)
def test_url_derivation_matches_the_sdk(
    url: str, ai_api_url: str, auth_url: str | None, api_url: str
) -> None:
    parsed = parse_service_key(key(url=url, serviceurls={"AI_API_URL": ai_api_url}))
    assert parsed.auth_url == (auth_url or url + "/oauth/token")
    assert parsed.api_url == api_url


def test_accepts_credentials_wrapper_and_ignores_extra_fields() -> None:
    parsed = parse_service_key({"credentials": key(extra_field={"x": 1})})
    assert parsed.clientid == "sb-abc!b1|aicore!b2"


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (key(clientid=None), "missing required field 'clientid'"),
        (key(clientsecret=None), "missing required field 'clientsecret'"),
        (key(url=None), "missing required field 'url'"),
        (key(serviceurls=None), "missing required field 'serviceurls'"),
        (key(serviceurls={"OTHER": "x"}), "missing required field 'serviceurls.AI_API_URL'"),
        (key(clientsecret=""), "field 'clientsecret' is invalid"),
        (key(url="tenant.authentication.test"), "field 'url' is invalid"),
        (key(clientid=""), "field 'clientid' is invalid"),
    ],
    ids=[
        "no-clientid",
        "no-clientsecret",
        "no-url",
        "no-serviceurls",
        "no-ai-api-url",
        "empty-secret",
        "url-not-http",
        "empty-clientid",
    ],
)
def test_invalid_keys_name_the_field_and_never_echo_values(
    data: dict[str, Any], expected: str
) -> None:
    with pytest.raises(ServiceKeyError) as info:
        parse_service_key(data)
    message = str(info.value)
    assert expected in message
    assert "service key" in message  # says what to fix
    for value in (SECRET, "sb-abc!b1", "tenant.authentication"):
        assert value not in message
    assert info.value.__cause__ is None and info.value.__suppress_context__


def test_x509_key_is_reported_as_unsupported() -> None:
    data = key(clientsecret=None, url=None, certificate="-----BEGIN", key="-----BEGIN KEY")
    data["certurl"] = "https://tenant.authentication.cert.example.test"
    with pytest.raises(ServiceKeyError, match="X.509.*not supported"):
        parse_service_key(data)


@pytest.mark.parametrize(
    "text", ['{"clientid": "x", "clientsecret": "' + SECRET + '"', "[1, 2]", ""]
)
def test_non_json_or_non_object(text: str) -> None:
    with pytest.raises(ServiceKeyError) as info:
        parse_service_key(text)
    assert SECRET not in str(info.value)
    assert "service key" in str(info.value)


def test_load_from_file(tmp_path: Path) -> None:
    path = tmp_path / "key.json"
    path.write_text(json.dumps(key()))
    assert load_service_key(path).clientid == "sb-abc!b1|aicore!b2"
    with pytest.raises(ServiceKeyError, match="cannot read AI Core service key file"):
        load_service_key(tmp_path / "missing.json")
