"""The two structured headers a registry sends: ``WWW-Authenticate`` and ``Link``.

Both parsers are linear in the header's length: ``str.split``/``str.find`` and one regular
expression that cannot backtrack (a quoted string: its first character decides, and it ends
at the closing quote or at the end of the text). A regex such as ``(\\w+)=...`` retried at
every position of a 64 KiB run of letters cost 20 s of CPU; a header is bounded by
``http.client`` (64 KiB a line), the parsers do not rely on it.
"""

from __future__ import annotations

import re

# RFC 9110 5.6.4 quoted-string, unclosed ones running to the end of the text
_QUOTED = re.compile(r'("[^"\\]*(?:\\.[^"\\]*)*"?)', re.S)
_QUOTED_PAIR = re.compile(r"\\(.)", re.S)
# RFC 9110 5.6.2 token
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")


def _unquote(text: str) -> str:
    inner = text[1:-1] if len(text) >= 2 and text.endswith('"') else text[1:]
    return _QUOTED_PAIR.sub(r"\1", inner) if "\\" in inner else inner


def parse_challenge(header: str) -> tuple[str, dict[str, str]]:
    """``Bearer realm="...",service="...",scope="..."`` -> ("bearer", {...}).

    The scheme is the first word; parameters are ``name=token`` or ``name="quoted"`` (names
    lower-cased, a later one wins); anything else is skipped.
    """
    scheme, _, rest = header.strip().partition(" ")
    params: dict[str, str] = {}
    pending = ""  # "name=" seen at the end of plain text: its value is the quoted string next
    for i, piece in enumerate(_QUOTED.split(rest)):
        if i % 2:  # a quoted string
            if pending:
                params[pending] = _unquote(piece)
            pending = ""
            continue
        items = piece.split(",")
        for n, item in enumerate(items):
            pending = ""
            name, eq, value = item.partition("=")
            name = name.strip()
            if not eq or not _TOKEN.fullmatch(name):
                continue
            words = value.split(None, 1)
            if words:
                params[name.lower()] = words[0]
            elif n == len(items) - 1:
                pending = name.lower()
    return scheme.lower(), params


def next_page(header: str) -> str:
    """The ``rel="next"`` target of a ``Link`` header (RFC 8288), or ""."""
    if "next" not in header.lower():
        return ""
    pos = 0
    while True:
        start = header.find("<", pos)
        if start < 0:
            return ""
        end = header.find(">", start + 1)
        if end < 0:
            return ""
        following = header.find("<", end + 1)
        stop = len(header) if following < 0 else following
        params = header[end + 1 : stop].split(",", 1)[0]
        if _is_next(params):
            return header[start + 1 : end]
        if following < 0:
            return ""
        pos = following


def _is_next(params: str) -> bool:
    """Whether ``; rel="next"`` (or ``rel=next``, or ``rel="prev next"``) is among *params*."""
    for param in params.split(";"):
        name, eq, value = param.partition("=")
        if eq and name.strip().lower() == "rel":
            value = value.strip()
            if value.startswith('"'):
                value = _unquote(value)
            if "next" in value.lower().split():
                return True
    return False
