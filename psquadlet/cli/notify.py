"""psquadlet notify: a test message, or an event from a systemd hook."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from psquadlet.cli.common import config_option, fail
from psquadlet.config import load_config
from psquadlet.errors import PsquadletError, UsageError
from psquadlet.notifications import commands
from psquadlet.watch.events import EventKind

_KINDS = [k.value for k in EventKind if k is not EventKind.TEST]


@click.command()
@config_option
@click.option("--test", "test", is_flag=True, help="send a test message now")
@click.option("--channel", help="with --test: only this channel")
@click.option(
    "--event",
    "kind",
    type=click.Choice(_KINDS),
    metavar="KIND",
    help=f"queue and send this event: {', '.join(_KINDS)}",
)
@click.option("--unit", help="with --event: the unit it happened to")
@click.option("--detail", default="", help="with --event: what happened, in a few words")
@click.option("--hook", is_flag=True, help="with --event: run by the unit's own Exec*Post= lines")
def notify(
    *,
    config_path: Path | None,
    test: bool,
    channel: str | None,
    kind: str | None,
    unit: str | None,
    detail: str,
    hook: bool,
) -> None:
    """Send a test message to the [notifications] channels, or report an event.

    \b
    psquadlet notify --test [--channel NAME]
    psquadlet notify --event restarted --unit perfsonar-testpoint.service
    Prints one line per channel; exits 1 when a channel failed (its message stays queued
    and is retried by the next pass; a test message is not kept).
    """
    try:
        if test == (kind is not None):
            raise UsageError("give either --test or --event KIND --unit UNIT")
        config = load_config(config_path)
        if test:
            results = commands.send_test(config, channel)
        else:
            if unit is None:
                raise UsageError("--event needs --unit UNIT")
            if hook:
                from psquadlet.notifications.hooks import run_hook  # noqa: PLC0415

                results = run_hook(config, EventKind(kind), unit)
            else:
                results = commands.send_event(config, EventKind(kind), unit, detail)
    except PsquadletError as exc:
        fail(exc)
    except OSError as exc:  # a hook never prints a traceback (full disk, no permission)
        where = f"{exc.filename}: " if exc.filename else ""
        fail(PsquadletError(f"{where}{exc.strerror or exc}"))
    except Exception as exc:
        if not hook:
            raise
        # One line in the unit's journal, never a traceback between the unit's own lines.
        fail(PsquadletError(f"the {kind} hook failed: {type(exc).__name__}: {exc}"))
    for result in results:
        click.echo(result.text())
    sys.exit(0 if all(r.ok for r in results) else 1)
