"""The one redactor: every text that leaves the operator passes through `redact` (pure).

Log records (logs.py's filter), Events and status messages (the reconciler's single writer), and
AI Core error messages (aicore/errors.py) all use the patterns below, so a secret shape masked in
one exit is masked in all of them. Two kinds of rule:

- *Shapes*: values of secret-named fields (not a shell command that makes one, as in the hint
  ``--from-literal=apiKey="$(openssl rand -hex 32)"``) in JSON, Python reprs, YAML-ish
  ``key: value`` lines, form bodies and query strings (``client_secret=…``, also percent-encoded
  and inside escaped JSON), ``Authorization`` headers of any scheme, ``Bearer`` tokens of any
  length, JWTs (whole or cut short: a JSON object in base64url always starts with ``eyJ``), and
  PEM private keys.
- *Known values*: the client secrets and tokens this process holds (`remember`), and the extra
  values a caller passes, matched verbatim, percent-encoded (any case, ``+`` for space),
  JSON-escaped, and base64-encoded, also after percent-encoding (standard and URL-safe, at every
  byte alignment, so the secret is found inside an encoded ``clientid:secret`` pair or an encoded
  form body too).

NB: the known values live in one process-wide registry because the exits that need them (the log
handler, the status writer) are process-wide as well and never see the AI Core session.
"""

from __future__ import annotations

import base64
import re
import threading
from collections import OrderedDict
from collections.abc import Iterable
from typing import TypeVar
from urllib.parse import quote, quote_plus

REDACTED = "<redacted>"

MIN_KNOWN_LENGTH = 6
"""Shorter known values are not matched verbatim: masking every ``abc`` would eat prose."""

_MAX_KNOWN = 64
"""Known values kept (client secrets and recent tokens); the oldest are dropped first."""

_FIELDS = (
    r"client[_-]?secret|client[_-]assertion|(?:access|refresh|id)[_-]token|password|passwd"
    r"|api[_-]?key|private[_-]?key"
)
_GENERIC = r"token|secret"
_PREFIX = r"(?:[a-z0-9]+[_-])*"  # AICORE_CLIENT_SECRET=…, X-Api-Key: …
"""Field names too common in prose to mask after a bare ``name:``; masked when quoted or ``=``."""
# A value that is a shell command substitution with arguments, e.g. the hint
# `--from-literal=apiKey="$(openssl rand -hex 32)"`: a command that makes a secret, not one. A
# secret itself has no spaces, so one shaped like `$(…)` (`"$(Xk9!q)"`) is still masked.
_SHELL_COMMAND = r"\$\([a-z][\w.-]*(?:[ \t]+[\w./:=+-]+)+\)"
# NB: a key may be quoted ("k", 'k', or \"k\" inside a JSON string that holds JSON); the value is
# a quoted string of the same kinds or a bare run up to a delimiter; `=` may arrive as %3D.
_FIELD = re.compile(
    rf"""(?ix)
    (?P<key>
        (?P<q>\\?["']){_PREFIX}(?:{_FIELDS}|{_GENERIC})(?P=q)\s*[:=]\s*
      | \b{_PREFIX}(?:{_FIELDS}|{_GENERIC})\s*(?:=|%3D)\s*
      | \b{_PREFIX}(?:{_FIELDS})\s*:\s*
    )
    (?!(?P<cq>\\?["']?){_SHELL_COMMAND}(?P=cq)(?![^\s"'&,;}}\]<>\\]))  # a shell command
    (?P<value>
        \\"(?:[^"\\]|\\[^"])*\\"      # \"…\" (JSON inside a JSON string)
      | "(?:[^"\\]|\\.)*"              # "…"
      | '[^']*'                        # '…'
      | (?!null\b|None\b|true\b|false\b|[{{\[])[^\s"'&,;}}\]<>\\]+  # bare, up to a delimiter
    )
    """
)
_AUTH_HEADER = re.compile(
    r"""(?ix)
    (?P<key>\b(?:proxy-)?authorization(?:\\?["'])?\s*[:=]\s*(?:\\?["'])?
        (?:(?:bearer|basic|digest|token|negotiate)\s+)?)
    (?P<value>[^\s"'\\,;}]+)
    """
)
# Prose after "bearer" ("the bearer token is missing", `WWW-Authenticate: Bearer realm="x"`).
_BEARER_PROSE = (
    r"tokens?|auth|authentication|authorization|realm|scheme|header|is|was"
    r"|and|or|the|a|an|in|for|of|with|required|missing|invalid|expired|error"
)
_BEARER = re.compile(
    rf"(?i)\b(?P<key>bearer\s+)(?!(?:{_BEARER_PROSE})\b)(?P<value>[A-Za-z0-9\-._~+/]+=*)"
)
_JWT = re.compile(
    r"\beyJ[A-Za-z0-9_-]{8,}(?:\.[A-Za-z0-9_-]*){0,2}"
    r"|\bey[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}(?:\.[A-Za-z0-9_-]*)?"
)
_PEM = re.compile(
    r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?(?:-----END [A-Z ]*PRIVATE KEY-----|\Z)", re.S
)

_lock = threading.Lock()
_known: OrderedDict[str, re.Pattern[str]] = OrderedDict()


def _masked_value(match: re.Match[str]) -> str:
    value = match["value"]
    if value.startswith('\\"'):
        return f'{match["key"]}\\"{REDACTED}\\"'
    if value[:1] in "\"'":
        return f"{match['key']}{value[0]}{REDACTED}{value[0]}"
    return f"{match['key']}{REDACTED}"


def _char_forms(char: str) -> str:
    """A regex for `char` as written, percent-encoded (any hex case) or JSON-escaped."""
    forms = [re.escape(char)]
    encoded = char.encode()
    forms.append("".join(f"%(?i:{b:02x})" for b in encoded))
    if char == " ":
        forms.append(r"\+")
    if char in '"\\/':
        forms.append(re.escape("\\" + char))
    if ord(char) < 0x10000 and (not char.isalnum() or not char.isascii()):
        forms.append(rf"\\u(?i:{ord(char):04x})")
    return forms[0] if char.isalnum() and char.isascii() else f"(?:{'|'.join(forms)})"


def _base64_cores(secret: str) -> list[str]:
    """The base64 text any encoding of a byte string containing `secret` must contain.

    The secret may start at any offset of the encoded data, so each of the three byte
    alignments gives its own core: the characters that depend on the secret's bytes only.
    """
    data, cores = secret.encode(), []
    for offset in range(3):
        encoded = base64.b64encode(b"\0" * offset + data).decode()
        core = encoded[-(-8 * offset // 6) : (8 * (offset + len(data))) // 6]
        if len(core) >= 8:
            cores += [core, core.replace("+", "-").replace("/", "_")]
    return cores


def _known_pattern(secret: str) -> re.Pattern[str]:
    # NB: a form body is percent-encoded before anyone base64-encodes it, so those forms too.
    encoded = {secret, quote(secret, safe=""), quote_plus(secret)}
    cores = [core for form in sorted(encoded) for core in _base64_cores(form)]
    forms = ["".join(_char_forms(c) for c in secret), *map(re.escape, cores)]
    return re.compile("|".join(dict.fromkeys(forms)))


def remember(*secrets: str) -> None:
    """Mask these values (and their encodings) in every later `redact`, process-wide."""
    with _lock:
        for secret in secrets:
            if len(secret) < MIN_KNOWN_LENGTH:
                continue
            if secret in _known:
                _known.move_to_end(secret)
                continue
            _known[secret] = _known_pattern(secret)
            while len(_known) > _MAX_KNOWN:
                _known.popitem(last=False)


def forget_all() -> None:
    """Drop every remembered value (tests)."""
    with _lock:
        _known.clear()


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """`text` with known secret values and everything shaped like a credential masked."""
    with _lock:
        patterns = list(_known.values())
    patterns += [_known_pattern(s) for s in secrets if len(s) >= MIN_KNOWN_LENGTH]
    # NB: known values first: a shape rule may mask only part of an encoded secret.
    for pattern in patterns:
        text = pattern.sub(REDACTED, text)
    text = _PEM.sub(REDACTED, text)
    text = _AUTH_HEADER.sub(_masked_value, text)
    text = _BEARER.sub(_masked_value, text)
    text = _JWT.sub(REDACTED, text)
    return _FIELD.sub(_masked_value, text)


T = TypeVar("T")


def redact_tree(value: T) -> T:
    """`value` (JSON-like: dicts, lists, strings) with every string passed through `redact`."""
    if isinstance(value, str):
        return redact(value)  # type: ignore[return-value]
    if isinstance(value, dict):
        return {k: redact_tree(v) for k, v in value.items()}  # type: ignore[return-value]
    if isinstance(value, list):
        return [redact_tree(v) for v in value]  # type: ignore[return-value]
    return value
