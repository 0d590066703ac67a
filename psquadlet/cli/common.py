"""What every command shares: the ``-c`` option and how a failure is reported.

One place, so that ``psquadlet status -c bad.toml`` and ``psquadlet generate -c bad.toml``
print the same located errors the same way and exit with the same code.
"""

from __future__ import annotations

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


def fail(exc: PsquadletError) -> NoReturn:
    """Print every line of the error with the prefix (a config may hold several) and exit."""
    for line in str(exc).splitlines() or [""]:
        click.echo(f"psquadlet: error: {line}", err=True)
    sys.exit(exc.exit_code)
