"""``.env`` files as compose reads them: ``NAME=VALUE`` lines, quotes, ``export``, comments."""

from __future__ import annotations

import re

from psquadlet.importer.draft import ImportInputError
from psquadlet.importer.inputfile import read_text

_ENV_LINE = re.compile(r"^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_.-]*)\s*=\s*(.*)$")
_DQ_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\", "$": "$"}


def read_dotenv(path: str) -> dict[str, str]:
    """The variables of a ``.env`` file (compose's syntax); missing file: none."""
    text = read_text(path, missing_ok=True)
    if text is None:
        return {}
    lines = text.splitlines()
    values: dict[str, str] = {}
    for number, line in enumerate(lines, 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        match = _ENV_LINE.match(line)
        if match is None:
            raise ImportInputError(f"{path}:{number}: expected NAME=VALUE, not {line.strip()!r}")
        name, value = match.group(1), match.group(2).strip()
        if value.startswith("'"):
            end = value.find("'", 1)
            if end < 0:
                raise ImportInputError(f"{path}:{number}: unbalanced quotes")
            value = value[1:end]
        elif value.startswith('"'):
            out = []
            i = 1
            while True:
                if i >= len(value):
                    raise ImportInputError(f"{path}:{number}: unbalanced quotes")
                if value[i] == '"':
                    break
                if value[i] == "\\" and i + 1 < len(value):
                    out.append(_DQ_ESCAPES.get(value[i + 1], "\\" + value[i + 1]))
                    i += 2
                    continue
                out.append(value[i])
                i += 1
            value = "".join(out)
        else:
            value = re.sub(r"\s+#.*$", "", value)
        values[name] = value
    return values
