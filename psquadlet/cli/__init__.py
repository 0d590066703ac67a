"""The click front end.

Commands are loaded lazily from ``COMMANDS`` so that ``psquadlet generate`` never pays for
importing the watcher's podman-py and pystemd. Each command module holds a few-line click
command that calls one function of the library; nothing outside ``psquadlet.cli`` imports it.
"""

from __future__ import annotations

import importlib
from typing import Any

import click

from psquadlet import __version__

# command name -> "module:attribute". Add a line here when adding a command module.
COMMANDS: dict[str, str] = {
    "generate": "psquadlet.cli.generate:generate",
    "init": "psquadlet.cli.generate:init",
    "validate": "psquadlet.cli.generate:validate",
    "import": "psquadlet.cli.importcmd:import_",
    "adopt": "psquadlet.cli.adoptcmd:adopt",
    "doctor": "psquadlet.cli.operator:doctor",
    "status": "psquadlet.cli.operator:status",
    "shell": "psquadlet.cli.operator:shell",
    "logs": "psquadlet.cli.operator:logs",
    "completion": "psquadlet.cli.operator:completion",
    "man": "psquadlet.cli.operator:man",
    "upgrade": "psquadlet.cli.watch:upgrade",
    "watch": "psquadlet.cli.watch:watch",
    "heal": "psquadlet.cli.watch:heal",
    "notify": "psquadlet.cli.notify:notify",
    "block": "psquadlet.cli.watch:block",
    "unblock": "psquadlet.cli.watch:unblock",
    "pin": "psquadlet.cli.watch:pin",
    "unpin": "psquadlet.cli.watch:unpin",
}


class LazyGroup(click.Group):
    """A group whose subcommands are imported only when they are run or listed."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        module_name, attr = target.split(":")
        command = getattr(importlib.import_module(module_name), attr)
        assert isinstance(command, click.Command)
        return command


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="psquadlet")
def main(**_: Any) -> None:
    """Run perfSONAR testpoints and other long-lived containers under systemd with Podman.

    \b
    Typical use:
      psquadlet generate                  # write the default perfSONAR testpoint unit
      systemctl daemon-reload
      systemctl start perfsonar-testpoint
    """
