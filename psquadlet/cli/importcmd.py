"""``psquadlet import``: a docker run line or a compose file -> a configuration file."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from psquadlet.errors import PsquadletError, RefusedError, UsageError


@click.command(
    name="import",
    context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False},
)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="write the configuration to this file (atomically) instead of standard output",
)
@click.option("--force", is_flag=True, help="overwrite the -o file if it exists")
@click.option("--name", help="the container's table (unit) name; default: --name of the line")
@click.option(
    "--compose",
    "compose_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="import the services of this compose file",
)
@click.option("--service", help="with --compose: import only this service")
@click.option(
    "--unit",
    "unit_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="import the systemd unit whose ExecStart= runs podman run or docker run",
)
@click.option("--container", help="import this existing container (podman container inspect)")
@click.argument("command", nargs=-1, type=click.UNPROCESSED)
def import_(
    *,
    output: Path | None,
    force: bool,
    name: str | None,
    compose_file: Path | None,
    service: str | None,
    unit_file: Path | None,
    container: str | None,
    command: tuple[str, ...],
) -> None:
    """Turn a docker run line or a compose file into a psquadlet configuration.

    \b
      psquadlet import -- docker run -td --name web -p 8080:80 nginx
      psquadlet import 'docker run -d --net=host perfsonar/testpoint'
      psquadlet import - < line.txt        # the line on standard input
      psquadlet import --compose docker-compose.yml [--service NAME] -o psquadlet.toml
      psquadlet import --unit /etc/systemd/system/perfsonar-testpoint.service
      psquadlet import --container perfsonar-testpoint

    Flags that have no meaning under systemd are dropped, flags without a configuration key
    go to podman_args; each is listed (with the reason) in the output and on stderr. The
    upstream perfSONAR commands come out as the perfsonar-testpoint preset.
    """
    from psquadlet import importer  # noqa: PLC0415 - keep 'psquadlet --help' fast

    try:
        sources = [compose_file is not None, bool(command), unit_file is not None, container]
        if sum(map(bool, sources)) > 1:
            raise UsageError(
                "give one of a docker run line, --compose FILE, --unit FILE or --container NAME"
            )
        if service is not None and compose_file is None:
            raise UsageError("--service needs --compose")
        if unit_file is not None:
            result = importer.from_unit(str(unit_file), name)
        elif container is not None:
            result = importer.from_container(container, name)
        elif compose_file is not None:
            result = importer.from_compose(str(compose_file), service, name)
        elif command:
            args = list(command)
            if args == ["-"]:
                args = [importer.read_stream(sys.stdin.buffer, "standard input")]
            result = importer.from_command_line(args, name)
        else:
            raise UsageError(
                "nothing to import: give a docker run line (after --) or --compose FILE"
            )
        text = importer.to_toml(result)
        importer.validate(text)
        if output is not None and output.exists() and not force:
            raise RefusedError(f"{output} exists: use --force to overwrite it")
        for message in importer.messages(result):
            click.echo(f"psquadlet: import: {message}", err=True)
        if output is None:
            click.echo(text, nl=False)
        else:
            importer.write(output, text)
            click.echo(f"psquadlet: wrote {output}", err=True)
    except PsquadletError as exc:
        click.echo(f"psquadlet: error: {exc}", err=True)
        sys.exit(exc.exit_code)
