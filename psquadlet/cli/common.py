"""What every command shares: the ``-c`` option and how a failure is reported.

One place, so that ``psquadlet status -c bad.toml`` and ``psquadlet generate -c bad.toml``
print the same located errors the same way and exit with the same code.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import NoReturn

import click

from psquadlet.errors import PsquadletError

config_option = click.option(
    "-c",
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Configuration file (default: /etc/psquadlet/psquadlet.toml, else the built-in "
    "perfSONAR testpoint).",
)


json_option = click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print one JSON object (described in docs/operations.md).",
)


def error_json(schema: str, exc: PsquadletError) -> dict[str, object]:
    """The ``--json`` form of a failure: ``{"schema", "ok": false, "error": {...}}``."""
    problems = [
        {
            "file": e.file,
            "line": e.line,
            "key_path": e.key_path,
            "message": e.message,
            "hint": e.hint,
        }
        for e in getattr(exc, "errors", ())
    ]
    return {"schema": schema, "ok": False, "error": {"message": str(exc), "problems": problems}}


def fail(exc: PsquadletError, json_schema: str | None = None) -> NoReturn:
    """Print every line of the error with the prefix (a config may hold several) and exit.

    ``json_schema``: also print the error as that command's JSON object on stdout.
    """
    if json_schema is not None:
        click.echo(json.dumps(error_json(json_schema, exc), indent=2))
    for line in str(exc).splitlines() or [""]:
        click.echo(f"psquadlet: error: {line}", err=True)
    sys.exit(exc.exit_code)
