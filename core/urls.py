"""Endpoint URLs without their secrets, for everything that records or prints one.

``http://user:pass@host/v1?api-key=XYZ&region=eu`` is recorded as
``http://***@host/v1?api-key=***&region=eu``: the reader still sees that credentials
were given, never what they were. :func:`endpoint_key` is the normalised form a cache
keys on (no credentials at all, so rotating a key keeps the cache).
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

HIDDEN = "***"
_SECRET_WORDS = ("key", "token", "secret", "passw", "auth", "credential", "signature")
_SECRET_NAMES = {"sig", "pwd", "pass", "code"}
_URL = re.compile(r"\b[a-z][a-z0-9+.-]*://[^\s'\"<>]+", re.IGNORECASE)


def is_secret_param(name: str) -> bool:
    """Does a query parameter look like it carries a credential (api-key, token, password...)?"""
    bare = name.casefold().replace("-", "").replace("_", "")
    return bare in _SECRET_NAMES or any(word in bare for word in _SECRET_WORDS)


def redact_url(url: str) -> str:
    """``url`` with its userinfo and secret-looking query values replaced by ``***``."""
    parts = urlsplit(url)
    netloc = parts.netloc
    if "@" in netloc:
        netloc = f"{HIDDEN}@{netloc.rpartition('@')[2]}"
    query = [
        (k, HIDDEN if is_secret_param(k) else v) for k, v in parse_qsl(parts.query, keep_blank_values=True)
    ]
    return urlunsplit((parts.scheme, netloc, parts.path, urlencode(query, safe="*"), parts.fragment))


def redact_text(text: str) -> str:
    """Every URL inside ``text`` redacted (for error lines that quote a library's message)."""
    return _URL.sub(lambda m: redact_url(m.group()), text)


def endpoint_key(url: str) -> str:
    """The endpoint a cache keys on: scheme and host lower-cased, no credentials, no trailing '/'."""
    parts = urlsplit(url.strip())
    host = parts.netloc.rpartition("@")[2].lower()
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if not is_secret_param(k)]
    return urlunsplit((parts.scheme.lower(), host, parts.path.rstrip("/"), urlencode(sorted(query)), ""))
