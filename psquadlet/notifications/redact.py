"""Keep channel URLs (passwords, tokens, webhook keys) out of every log line and error."""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import parse_qsl, unquote, urlsplit

_URL_RE = re.compile(r"\b([A-Za-z][A-Za-z0-9+.-]*)://[^\s'\"<>]+")
_MIN_SECRET = 4  # shorter pieces ("to", "80") would blank ordinary words


def secrets_of(url: str) -> set[str]:
    """The URL itself and each piece of it that may be a secret (user, password, path, query)."""
    pieces = {url}
    try:
        parts = urlsplit(url)
        pieces.update({parts.netloc, parts.username or "", parts.password or ""})
        pieces.update(unquote(p) for p in parts.path.split("/"))
        pieces.update(p for p in parts.path.split("/"))
        for _key, value in parse_qsl(parts.query, keep_blank_values=True):
            pieces.add(value)
    except ValueError:
        pass
    return {p for p in pieces if len(p) >= _MIN_SECRET}


class Redactor:
    """Replace known secrets, and anything shaped like a URL, by ``***``."""

    def __init__(self, urls: Iterable[str] = ()) -> None:
        found: set[str] = set()
        for url in urls:
            found |= secrets_of(url)
        # Longest first, so that a URL goes before the password inside it.
        self.secrets = sorted(found, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for secret in self.secrets:
            scheme, sep, _rest = secret.partition("://")
            text = text.replace(secret, f"{scheme}://***" if sep else "***")
        return _URL_RE.sub(lambda m: f"{m.group(1)}://***", text)
