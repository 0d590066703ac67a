"""``psquadlet upgrade`` (one pass now) and ``psquadlet watch`` (the daemon)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Callable

import click

from psquadlet.cli.common import config_option, fail, reported
from psquadlet.errors import PsquadletError, UsageError

# (flag, keyword arguments) of the options every watcher command takes, innermost last.
_ENDPOINTS: tuple[tuple[str, dict[str, Any]], ...] = (
    ("--registry-timeout", {
        "type": float, "default": 30.0, "show_default": True, "metavar": "SECONDS",
        "envvar": "PSQUADLET_REGISTRY_TIMEOUT",
        "help": "Give up on a registry that does not answer within this time."}),
    ("--state-dir", {
        "metavar": "DIR", "help": "State file and lock folder (default: [watch] state_dir)."}),
    ("--dbus-address", {
        "metavar": "ADDR", "envvar": "PSQUADLET_DBUS_ADDRESS",
        "help": "systemd's D-Bus address (default: the system bus)."}),
    ("--podman-url", {
        "metavar": "URL", "envvar": "PSQUADLET_PODMAN_URL",
        "help": "Podman API (default: unix:///run/podman/podman.sock)."}),
)  # fmt: skip


def _endpoint_options(f: Any) -> Any:
    for flag, kwargs in _ENDPOINTS:
        f = click.option(flag, **kwargs)(f)
    return config_option(f)


@click.command()
@_endpoint_options
@click.argument("name", required=False)
@click.option("--unit", metavar="NAME", help="Only this container (table name or unit).")
@click.option(
    "--digest",
    metavar="DIGEST",
    help="Move container NAME to exactly this digest "
    "(sha256:...), through the same pull, restart, health gate and rollback.",
)
@click.option(
    "--to",
    metavar="TAG",
    help="Move container NAME to this release tag (e.g. v5.2.1-systemd), through the same "
    "health gate; it must match update.tag_pattern.",
)
@click.option(
    "--dry-run",
    is_flag=True,
    help="Check and say what would happen; no pull, no restart, state left as it is.",
)
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print one JSON object (schema psquadlet-upgrade/1) on stdout.",
)
def upgrade(  # noqa: PLR0917 - one parameter per click option
    config_path: Path | None,
    podman_url: str | None,
    dbus_address: str | None,
    state_dir: str | None,
    registry_timeout: float,
    name: str | None,
    unit: str | None,
    digest: str | None,
    to: str | None,
    dry_run: bool,
    as_json: bool,
) -> None:
    """Check every managed container's image now (or only NAME) and upgrade what changed.

    One HEAD per image; a new image is pulled before the unit is restarted, health-checked,
    and rolled back if it fails. Exit code 1 when a check failed or a rollback happened.
    """
    from psquadlet.watch import app  # noqa: PLC0415 - keeps podman-py out of other commands

    with reported(app.UPGRADE_SCHEMA if as_json else None):
        if name and unit and name != unit:
            raise UsageError("give the container as NAME or --unit, not both")
        code = app.upgrade(
            config_path,
            name or unit,
            dry_run,
            as_json,
            app.Endpoints(podman_url, dbus_address, state_dir, registry_timeout),
            digest=digest,
            to=to,
        )
    sys.exit(code)


def _echo(call: Callable[[], str]) -> None:
    """Print what *call* returns; a psquadlet error is printed and exits non-zero."""
    try:
        click.echo(call())
    except PsquadletError as e:
        fail(e)


_state_dir_option = click.option(
    "--state-dir", metavar="DIR", help="State folder (default: [watch] state_dir)."
)


_wait_option = click.option(
    "--wait",
    type=click.FloatRange(min=0),
    default=300.0,
    show_default=True,
    metavar="SECONDS",
    help="Wait this long for a running pass to release the state lock, then fail.",
)


def _on_one_container(f: Any) -> Any:
    """A command on one configured container: ``-c``, ``--state-dir``, ``--wait`` and NAME."""
    return click.command()(
        config_option(_state_dir_option(_wait_option(click.argument("name")(f))))
    )


@_on_one_container
@click.argument("digest")
@click.option("--reason", default="", metavar="TEXT", help="Why (shown by status).")
def block(  # noqa: PLR0917 - one parameter per click option
    config_path: Path | None,
    state_dir: str | None,
    wait: float,
    name: str,
    digest: str,
    reason: str,
) -> None:
    """Never move container NAME to image DIGEST (until unblock)."""
    from psquadlet.watch import app  # noqa: PLC0415

    _echo(lambda: app.block(config_path, name, digest, reason, state_dir, wait=wait))


@_on_one_container
@click.argument("digest")
def unblock(
    config_path: Path | None, state_dir: str | None, wait: float, name: str, digest: str
) -> None:
    """Forget a block (or a rollback's known-bad mark) of DIGEST for container NAME."""
    from psquadlet.watch import app  # noqa: PLC0415

    _echo(lambda: app.unblock(config_path, name, digest, state_dir, wait=wait))


@_on_one_container
@click.option("--reason", default="", metavar="TEXT", help="Why (shown by status).")
def pin(
    config_path: Path | None, state_dir: str | None, wait: float, name: str, reason: str
) -> None:
    """Hold container NAME where it is: the watcher neither checks nor moves it."""
    from psquadlet.watch import app  # noqa: PLC0415

    _echo(lambda: app.pin(config_path, name, reason, state_dir, wait=wait))


@_on_one_container
def unpin(config_path: Path | None, state_dir: str | None, wait: float, name: str) -> None:
    """Let the watcher move container NAME again."""
    from psquadlet.watch import app  # noqa: PLC0415

    _echo(lambda: app.unpin(config_path, name, state_dir, wait=wait))


@click.command()
@_endpoint_options
def watch(
    config_path: Path | None,
    podman_url: str | None,
    dbus_address: str | None,
    state_dir: str | None,
    registry_timeout: float,
) -> None:
    """Run as a daemon (systemd Type=notify): upgrade each container at its scheduled time."""
    from psquadlet.watch import app  # noqa: PLC0415 - keeps podman-py out of other commands

    try:
        code = app.watch(
            config_path, app.Endpoints(podman_url, dbus_address, state_dir, registry_timeout)
        )
    except PsquadletError as e:
        fail(e)
    sys.exit(code)


@click.command()
@config_option
@_state_dir_option
def heal(config_path: Path | None, state_dir: str | None) -> None:
    """One round of the health supervisor (psquadlet-health.timer runs it every minute).

    Restarts an unhealthy container within its health.restart_budget, then leaves it
    running and retries on a backoff; reports unhealthy, gave-up and healthy events.
    """
    from psquadlet.watch import healrun  # noqa: PLC0415

    try:
        said = healrun.heal_command(config_path, state_dir)
    except PsquadletError as e:
        fail(e)
    if said:  # a quiet round prints nothing (it runs every minute)
        click.echo(said)
