"""Redaction, on by default and failing closed.

Three layers, like the best support-bundle tools (shared/research/report_anchors.md):
names (an environment variable or key whose name says it holds a secret), patterns
(passwords in URLs, Authorization-style headers, PEM private keys, registry auths),
and known values: every secret found once is replaced everywhere else it occurs,
logs included, also URL-encoded, JSON-escaped, base64 and base64 of ``user:secret``.
After scrubbing, every part is checked again; a part in which a secret survives is
left out and marked, never shipped raw (sos ships raw when its cleaner fails).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections import Counter
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote, quote_plus, unquote

MARK = "[REDACTED:{kind}]"
MARK_PREFIX = "[REDACTED"

#: A name that says its value is a secret (env var, JSON/TOML key, flag).
SENSITIVE_NAME = re.compile(
    r"pass|pwd|secret|token|key|auth|credential|cookie|private|session|salt"
    r"|signature|dsn",
    re.IGNORECASE,
)
#: Names that match SENSITIVE_NAME but never hold secrets.
NOT_SENSITIVE = frozenset({"PWD", "OLDPWD", "KEYMAP", "XAUTHORITY"})
#: Words that contain a sensitive one by accident (an image's "authors" label).
_INNOCENT_WORDS = re.compile(r"author|keyboard|keymap|hotkey|monkey", re.IGNORECASE)

_PEM = re.compile(
    r"(-----BEGIN ([A-Z0-9 ]*)PRIVATE KEY-----)(.*?)(-----END \2PRIVATE KEY-----|\Z)",
    re.DOTALL,
)
_URL_PASSWORD = re.compile(
    r"(?i)\b([a-z][a-z0-9+.-]*://)([^\s:/@\"'<>\[\]]*):([^\s@/\"'<>]+)@"
)
_HEADER = re.compile(
    r"(?i)\b(authorization|proxy-authorization|x-access-token|x-service-key"
    r"|x-api-key|x-registry-auth)([\"']?\s*[:=]\s*[\"']?)"
    r"(?:(basic|bearer|apikey|agentkey|token|digest)\s+)?([^\"'\r\n,;\[\]{}]+)"
)
_SCHEME_TOKEN = re.compile(
    r"(?i)\b(apikey|agentkey|bearer|basic)\s+([A-Za-z0-9._~+/=:-]{8,})"
)
_ASSIGN = re.compile(
    r"(?<![\w.-])(--?)?([A-Za-z_][A-Za-z0-9_.-]*)(=|\s*:\s+|\s+=\s*)"
    r"(\"(?:[^\"\\\n]|\\.)*\"|'[^'\n]*'|[^\s\"',;&)}\]]+)"
)
_JSON_PAIR = re.compile(r'"([^"\\\n]{1,80})"\s*:\s*"((?:[^"\\\n]|\\.)*)"')
_FLAG_SPACE = re.compile(
    r"(?i)(?<![\w-])(--[a-z0-9-]*(?:pass|secret|token|auth|cred)[a-z0-9-]*)\s+"
    r"([^\s-][^\s]*)"
)
_ENV_ITEM = re.compile(r"^([A-Za-z_][A-Za-z0-9_.-]*)=(.*)$", re.DOTALL)

#: Values that are never secrets, whatever the name says.
_HARMLESS = re.compile(
    r"(?i)^(|true|false|yes|no|on|off|null|none|nil|0|1|required|optional|enabled"
    r"|disabled|basic|bearer|apikey|agentkey|token|digest|\*+|x+(:x+)?|\$\{?\w+\}?"
    r"|<[^>]*>)$"
)
COMMON_USERS = ("admin", "root", "shipyard", "docker", "user")


_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,63}$")


def sensitive_name(name: str) -> bool:
    """A name (not a path or a sentence) that says its value is a secret."""
    bare = name.strip("-\"' ")
    return (
        bool(_NAME.match(bare))
        and bare.upper() not in NOT_SENSITIVE
        and bool(SENSITIVE_NAME.search(_INNOCENT_WORDS.sub("", bare)))
    )


def secret_value(value: str) -> bool:
    value = value.strip().rstrip(",;")
    if _HARMLESS.match(value) or MARK_PREFIX in value:
        return False
    # A path names where a secret is, not the secret (--tlskey /etc/docker/key.pem).
    return not (value.startswith("/") and " " not in value)


class RedactionError(Exception):
    """A part still holds a secret after scrubbing (it is then left out)."""


class Redactor:
    """Learns secrets from everything first, then scrubs each part and checks it."""

    def __init__(self, vocabulary: Iterable[str] = ()) -> None:
        self.secrets: dict[str, str] = {}  # value -> kind
        self.users: set[str] = set(COMMON_USERS)
        self.counts: Counter[str] = Counter()
        # Words the report needs (stack and container names): a secret equal to one
        # of them is masked where it stands, but not replaced everywhere.
        self.vocabulary = {v.lower() for v in vocabulary}
        self._forms: list[tuple[str, str]] | None = None

    # --- learning ----------------------------------------------------------------

    def _secret(self, value: str) -> bool:
        """A secret, unless harmless or one of the stack's own (public) words."""
        return secret_value(value) and _unquote(value).lower() not in self.vocabulary

    def add(self, value: str, kind: str) -> None:
        value = _unquote(value)
        if not self._secret(value):
            return
        self.secrets.setdefault(value, kind)
        decoded = unquote(value)
        if decoded != value and self._secret(decoded):
            self.secrets.setdefault(decoded, kind)
        self._forms = None

    def learn(self, obj: Any, key: str = "", parent: str = "") -> None:
        """Walk JSON-like data: sensitive keys, env items, and every string's text."""
        if isinstance(obj, dict):
            for k, v in obj.items():
                self.learn(v, str(k), key)
        elif isinstance(obj, list | tuple):
            for item in obj:
                self.learn(item, key, parent)
        elif isinstance(obj, str):
            if key and sensitive_name(key) and obj:
                kind = (
                    "registry-auth" if parent == "auths" or key == "auth" else "config"
                )
                self.add(obj, kind)
                if key.lower() == "auth":
                    self._learn_basic(obj, "registry-auth")
            item = _ENV_ITEM.match(obj)
            if item and sensitive_name(item.group(1)):
                self.add(item.group(2), "env")
            self.learn_text(obj)

    def learn_text(self, text: str) -> None:
        for m in _PEM.finditer(text):
            body = m.group(3)
            for chunk in re.split(r"\\n|\s+", body):
                if len(chunk) >= 16:
                    self.add(chunk, "private-key")
        text = _PEM.sub(" ", text)  # its armour lines are not values of anything
        for m in _URL_PASSWORD.finditer(text):
            if m.group(2):
                self.users.add(unquote(m.group(2)))
            self.add(m.group(3), "url-password")
        for m in _HEADER.finditer(text):
            self.add(m.group(4).strip(), "header")
            self._learn_pair(m.group(4).strip(), "header")
            if (m.group(3) or "").lower() == "basic":
                self._learn_basic(m.group(4).strip(), "header")
        for m in _SCHEME_TOKEN.finditer(text):
            self.add(m.group(2), "header")
            self._learn_pair(m.group(2), "header")
            if m.group(1).lower() == "basic":
                self._learn_basic(m.group(2), "header")
        for m in _JSON_PAIR.finditer(text):
            if sensitive_name(m.group(1)):
                kind = "registry-auth" if m.group(1).lower() == "auth" else "config"
                self.add(_json_unescape(m.group(2)), kind)
                if m.group(1).lower() == "auth":
                    self._learn_basic(m.group(2), kind)
        for name, sep, value in _assignments(text):
            if sensitive_name(name):
                kind = "env" if name.isupper() and sep == "=" else "config"
                self.add(value, kind)
        for m in _FLAG_SPACE.finditer(text):
            self.add(m.group(2), "config")

    def _learn_pair(self, value: str, kind: str) -> None:
        """'admin:KEY' (ApiKey) gives the user and the key."""
        if MARK_PREFIX in value:
            return
        user, sep, secret = value.partition(":")
        if sep and user and secret:
            self.users.add(user)
            self.add(secret, kind)

    def _learn_basic(self, value: str, kind: str) -> None:
        try:
            decoded = base64.b64decode(value.strip() + "==", validate=False).decode()
        except (binascii.Error, UnicodeDecodeError, ValueError):
            return
        user, sep, secret = decoded.partition(":")
        if sep and user and secret.isprintable():
            self.users.add(user)
            self.add(secret, kind)
            self.add(decoded, kind)

    # --- scrubbing ---------------------------------------------------------------

    def forms(self) -> list[tuple[str, str]]:
        """Every (form, kind) to replace anywhere, longest first."""
        if self._forms is not None:
            return self._forms
        found: dict[str, str] = {}
        for value, kind in self.secrets.items():
            if not self._global(value):
                continue
            for form in _encodings(value, self.users):
                found.setdefault(form, kind)
        self._forms = sorted(found.items(), key=lambda f: -len(f[0]))
        return self._forms

    def _global(self, value: str) -> bool:
        return len(value) >= 4

    def scrub(self, text: str) -> str:
        # Known values first: a password with spaces or a PEM key learned whole from
        # an env item is replaced whole before the patterns cut it at a space.
        for form, kind in self.forms():
            if form in text:
                if len(form) < 6:
                    text, n = re.subn(
                        rf"(?<![A-Za-z0-9]){re.escape(form)}(?![A-Za-z0-9])",
                        MARK.format(kind=kind),
                        text,
                    )
                else:
                    n = text.count(form)
                    text = text.replace(form, MARK.format(kind=kind))
                self.counts[kind] += n
        text = _PEM.sub(self._pem, text)
        text = _URL_PASSWORD.sub(
            lambda m: (
                f"{m.group(1)}{m.group(2)}:{self._mark('url-password', m.group(3))}@"
            ),
            text,
        )
        text = _HEADER.sub(self._header, text)
        text = _SCHEME_TOKEN.sub(
            lambda m: f"{m.group(1)} {self._mark('header', m.group(2))}", text
        )
        text = _JSON_PAIR.sub(self._json_pair, text)
        text = _ASSIGN.sub(self._assign, text)
        text = _FLAG_SPACE.sub(
            lambda m: f"{m.group(1)} {self._mark('config', m.group(2))}", text
        )
        return text

    def _mark(self, kind: str, value: str) -> str:
        if not self._secret(_unquote(value)):
            return value
        self.counts[kind] += 1
        return MARK.format(kind=kind)

    def _pem(self, m: re.Match[str]) -> str:
        self.counts["private-key"] += 1
        end = m.group(4) or ""
        return f"{m.group(1)}{MARK.format(kind='private-key')}{end}"

    def _header(self, m: re.Match[str]) -> str:
        scheme = f"{m.group(3)} " if m.group(3) else ""
        return f"{m.group(1)}{m.group(2)}{scheme}{self._mark('header', m.group(4))}"

    def _json_pair(self, m: re.Match[str]) -> str:
        if not sensitive_name(m.group(1)):
            return m.group(0)
        kind = "registry-auth" if m.group(1).lower() == "auth" else "config"
        value = self._mark(kind, m.group(2))
        return m.group(0) if value == m.group(2) else f'"{m.group(1)}": "{value}"'

    def _assign(self, m: re.Match[str]) -> str:
        if not sensitive_name(m.group(2)):
            value = m.group(4)
            if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
                # Environment="NAME=value": the assignment inside the quotes.
                inner = _ASSIGN.sub(self._assign, value[1:-1])
                return f"{m.group(0)[: -len(value)]}{value[0]}{inner}{value[0]}"
            return m.group(0)
        kind = "env" if m.group(2).isupper() and m.group(3) == "=" else "config"
        value = m.group(4)
        quote_char = value[0] if value[:1] in "\"'" else ""
        masked = self._mark(kind, value)
        if masked == value:
            return m.group(0)
        flag, name, sep = m.group(1) or "", m.group(2), m.group(3)
        return f"{flag}{name}{sep}{quote_char}{masked}{quote_char}"

    def scrub_data(self, obj: Any, key: str = "") -> Any:
        """Scrub JSON-like data: a sensitive key loses its value; strings are
        scrubbed."""
        if isinstance(obj, dict):
            return {
                self.scrub(str(k)): self.scrub_data(v, str(k)) for k, v in obj.items()
            }
        if isinstance(obj, list | tuple):
            return [self.scrub_data(v, key) for v in obj]
        if isinstance(obj, str):
            if key and sensitive_name(key) and self._secret(obj):
                kind = "registry-auth" if key.lower() == "auth" else "config"
                self.counts[kind] += 1
                return MARK.format(kind=kind)
            item = _ENV_ITEM.match(obj)
            secret = item and self._secret(item.group(2))
            if item and secret and sensitive_name(item.group(1)):
                self.counts["env"] += 1
                return f"{item.group(1)}={MARK.format(kind='env')}"
            return self.scrub(obj)
        return obj

    # --- checking ----------------------------------------------------------------

    def leaks_in(self, obj: Any) -> list[str]:
        """:meth:`leaks` for every string of JSON-like data, each checked as it is
        (patterns are not run on JSON-escaped text)."""
        if isinstance(obj, dict):
            return [k for kv in obj.items() for k in self.leaks_in(list(kv))]
        if isinstance(obj, list | tuple):
            return [k for v in obj for k in self.leaks_in(v)]
        return self.leaks(obj) if isinstance(obj, str) else []

    def leaks(self, text: str, patterns: bool = True) -> list[str]:
        """The kinds of secrets still in *text* (empty when it is clean): a known
        secret in any of its forms, or (with *patterns*) a new one the patterns find."""
        left = [kind for form, kind in self.forms() if len(form) >= 6 and form in text]
        if patterns:
            probe = Redactor()
            probe.learn_text(text)
            left += sorted(set(probe.secrets.values()))
        return left

    def check(self, content: Any, where: str, patterns: bool = True) -> None:
        if isinstance(content, str):
            left = self.leaks(content, patterns)
        else:
            left = self.leaks_in(content)
        if left:
            raise RedactionError(
                f"{where} still holds a secret ({', '.join(sorted(set(left)))})"
            )

    def summary(self) -> str:
        if not self.counts:
            return "nothing to redact was found"
        kinds = ", ".join(f"{kind} {n}" for kind, n in sorted(self.counts.items()))
        return f"{sum(self.counts.values())} values redacted ({kinds})"


def _assignments(text: str) -> Iterable[tuple[str, str, str]]:
    """(name, separator, value) of each NAME=value, also inside quoted values."""
    for m in _ASSIGN.finditer(text):
        name, sep, value = m.group(2), m.group(3), m.group(4)
        yield name, sep, value
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            yield from _assignments(value[1:-1])


def _unquote(value: str) -> str:
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        value = value[1:-1]
    return value


def _json_unescape(value: str) -> str:
    try:
        return str(json.loads(f'"{value}"'))
    except ValueError:
        return value


def _encodings(value: str, users: Iterable[str]) -> list[str]:
    """The ordinary ways a secret is written elsewhere."""
    forms = [value, quote(value, safe=""), quote_plus(value), json.dumps(value)[1:-1]]
    raw = value.encode()
    forms.append(base64.b64encode(raw).decode().rstrip("="))
    forms.append(base64.urlsafe_b64encode(raw).decode().rstrip("="))
    for user in users:
        pair = f"{user}:{value}".encode()
        forms.append(base64.b64encode(pair).decode().rstrip("="))
    # base64 of a value that is itself "user:pass" is covered by the first b64 form.
    return [f for f in dict.fromkeys(forms) if f]
