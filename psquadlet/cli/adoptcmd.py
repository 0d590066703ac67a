"""``psquadlet adopt``: take over a testpoint that runs without psquadlet (or undo that)."""

from __future__ import annotations

from pathlib import Path

import click

from psquadlet.cli.common import fail
from psquadlet.errors import PsquadletError


@click.command()
@click.argument("name", required=False)
@click.option(
    "-c",
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("/etc/psquadlet/psquadlet.toml"),
    show_default=True,
    help="The configuration to write (it must not exist yet).",
)
@click.option(
    "--unit",
    "unit_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="The unit to take over (default: /etc/systemd/system/NAME.service if it exists, "
    "else the container NAME).",
)
@click.option(
    "--compose",
    "compose_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Take over this compose file's service (its container is stopped and kept aside).",
)
@click.option("--service", help="With --compose: the service to take over.")
@click.option(
    "--dry-run", is_flag=True, help="Show the configuration and the plan; change nothing."
)
@click.option(
    "--into-volumes",
    is_flag=True,
    help="Copy the bind-mounted pSConfig folder into the named volume NAME-psconfig and use "
    "that instead (the folder is left as it is).",
)
@click.option("--undo", is_flag=True, help="Put the old unit or container back and start it.")
def adopt(
    *,
    name: str | None,
    config_path: Path,
    unit_file: Path | None,
    compose_file: Path | None,
    service: str | None,
    dry_run: bool,
    into_volumes: bool,
    undo: bool,
) -> None:
    """Switch NAME (default perfsonar-testpoint) over to psquadlet, behind the health gate.

    \b
      psquadlet adopt --dry-run                      # OSG's perfsonar-testpoint.service
      psquadlet adopt                                # ... switch over
      psquadlet adopt web                            # a container started by hand
      psquadlet adopt --compose docker-compose.yml --service testpoint
      psquadlet adopt --undo                         # put the old one back

    The old unit file is kept in /var/lib/psquadlet/adopted/NAME/ (outside systemd's search
    path); any failure puts it back and starts it. Bind mounts stay as they were.
    """
    from psquadlet import adopt as adopt_mod  # noqa: PLC0415 - keep 'psquadlet --help' fast
    from psquadlet import importer  # noqa: PLC0415

    try:
        if undo:
            click.echo(adopt_mod.undo(name))
            return
        prepared = adopt_mod.prepare(
            name,
            config_path,
            unit_file=unit_file,
            compose_file=compose_file,
            service=service,
            into_volumes=into_volumes,
        )
        for message in importer.messages(prepared.result):
            click.echo(f"psquadlet: adopt: {message}", err=True)
        if dry_run:
            click.echo(f"# ==> {config_path} <==")
            click.echo(prepared.adoption.config_text, nl=False)
            for action in adopt_mod.plan_for(prepared.adoption).plan.actions:
                click.echo(f"# ==> {action.path} ({action.kind}) <==")
                click.echo(action.new or "", nl=False)
            return
        rec = adopt_mod.run(prepared)
        click.echo(
            f"{rec.name}: adopted; the old unit is kept in {Path(rec.kept_unit).parent}"
            if rec.kept_unit
            else f"{rec.name}: adopted; the old container is kept as {rec.container_aside}"
        )
    except PsquadletError as exc:
        fail(exc)
