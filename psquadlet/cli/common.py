"""What every command shares: the ``-c`` option and how a failure is reported.

One place, so that ``psquadlet status -c bad.toml`` and ``psquadlet generate -c bad.toml``
print the same located errors the same way and exit with the same code.
"""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Iterator
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


@contextlib.contextmanager
def reported(json_schema: str | None = None) -> Iterator[None]:
    """Around a command's work: a psquadlet error is printed and exits (``fail``). With
    ``json_schema`` (``--json``) every other failure still prints the command's JSON error
    object on stdout first, then its traceback on stderr: a script always gets JSON."""
    try:
        yield
    except PsquadletError as exc:
        fail(exc, json_schema)
    except Exception as exc:
        if json_schema is not None:
            internal = PsquadletError(f"internal error: {type(exc).__name__}: {exc}")
            click.echo(json.dumps(error_json(json_schema, internal), indent=2))
        raise
