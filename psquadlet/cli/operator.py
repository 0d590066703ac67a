"""Operator commands: doctor, status, shell, logs, completion, man."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path
from typing import NoReturn

import click
from click.shell_completion import get_completion_class

from psquadlet import status as status_module
from psquadlet.cli import main
from psquadlet.cli.common import config_option, fail, reported
from psquadlet.cli.manpage import render
from psquadlet.config import load_config
from psquadlet.doctor import JSON_SCHEMA as DOCTOR_SCHEMA
from psquadlet.doctor import diagnose as doctor_module
from psquadlet.errors import PsquadletError, UsageError


def _exec(argv: list[str]) -> NoReturn:
    """Replace psquadlet by the program, so that signals, the tty and the exit code are its own."""
    program = shutil.which(argv[0])
    if program is None:
        fail(PsquadletError(f"{argv[0]} not found on PATH"))
    sys.stdout.flush()
    os.execv(program, argv)  # noqa: S606 - argv is a list, no shell involved


def _user_mode() -> bool:
    return os.geteuid() != 0


@click.command()
@config_option
@click.option("--json", "as_json", is_flag=True, help="print the stable JSON report (see below)")
def doctor(config_path: Path | None, as_json: bool) -> None:
    """Check this host before (or while) running the testpoint.

    Each check passes, warns or fails, and says what to do: Podman and its version (Quadlet
    needs 4.4), the cgroup v2 the systemd variant needs, SELinux's container_manage_cgroup
    boolean for containers that run systemd, the image's CPU architecture, time
    synchronisation (owping needs it), CAP_NET_RAW for ping, the testpoint's host ports
    already taken by another process (named with its pid), short image names and unreadable
    unit files, the files mounted over perfSONAR's, and the configuration itself.

    \b
    Exit status (the Nagios plugin convention):
      0  every check passed (or did not apply)
      1  at least one warning, no failure
      2  at least one failure (also: bad command line)
    \b
    --json prints {"schema": "psquadlet-doctor/1", "ok", "psquadlet_version", "status",
    "exit_code", "checks": [{"id", "status", "summary", "advice", "details": [...],
    "items": [...]}]}; ok is false when a check failed; status is pass|warn|fail|skip;
    check ids: config, podman, cgroup, selinux, arch, time-sync, capabilities, ports,
    short-names, perfsonar-files. Keys are only added within schema version 1.
    """
    with reported(DOCTOR_SCHEMA if as_json else None):
        report = doctor_module.diagnose(config_path)
        text = report.dumps() if as_json else report.text()
    click.echo(text, nl=False)
    sys.exit(report.exit_code)


@click.command()
@config_option
@click.option("--json", "as_json", is_flag=True, help="print JSON (schema psquadlet-status/1)")
@click.argument("names", nargs=-1)
def status(config_path: Path | None, as_json: bool, names: tuple[str, ...]) -> None:
    """Show each managed container's unit state, image and digest, perfSONAR bundle version,
    last and next update check, and last upgrade or rollback.

    NAMES are container table names (default: all). Exits 0 when every unit shown is active,
    3 otherwise (like 'systemctl is-active').

    \b
    --json prints {"schema": "psquadlet-status/1", "ok", "containers": [...]}; ok is true
    when every unit shown is active; on an error, {"schema", "ok": false, "error":
    {"message", "problems": [{"file", "line", "key_path", "message", "hint"}]}}.
    """
    with reported(status_module.JSON_SCHEMA if as_json else None):
        config = load_config(config_path)
        known = {c.name for c in config.containers}
        unknown = [n for n in names if n not in known]
        if unknown:
            raise UsageError(f"no container {unknown[0]!r} in {config.source}")
        statuses = status_module.collect(config, names)
        text = status_module.dumps(statuses) if as_json else "\n".join(s.text() for s in statuses)
    click.echo(text, nl=False)
    sys.exit(0 if status_module.all_active(statuses) else 3)


def _pick(config_path: Path | None, name: str | None) -> tuple[str, str]:
    """(unit, container) for NAME, or for the only container when NAME is not given."""
    config = load_config(config_path)
    specs = config.containers
    if name is not None:
        specs = tuple(s for s in specs if name in (s.name, s.effective_container_name, s.unit_name))
        if not specs:
            raise UsageError(f"no container {name!r} in {config.source}")
    if len(specs) != 1:
        names = ", ".join(s.name for s in config.containers)
        raise UsageError(f"several containers are configured ({names}): name one")
    return specs[0].unit_name, specs[0].effective_container_name


@click.command()
@config_option
@click.argument("name", required=False)
@click.argument("command", nargs=-1)
def shell(config_path: Path | None, name: str | None, command: tuple[str, ...]) -> None:
    """Open a shell in the container NAME (or run COMMAND there), like upstream's psdocker.

    Without NAME, the only configured container. Use 'psquadlet shell NAME -- CMD ARGS' to run
    a command instead of bash.
    """
    try:
        _unit, container = _pick(config_path, name)
    except PsquadletError as exc:
        fail(exc)
    flags = ["-i", "-t"] if sys.stdin.isatty() else ["-i"]
    inner = list(command) or ["sh", "-c", "command -v bash >/dev/null && exec bash -l; exec sh -l"]
    _exec(["podman", "exec", *flags, container, *inner])


@click.command()
@config_option
@click.option("-f", "--follow", is_flag=True, help="keep printing new entries")
@click.option("-n", "--lines", type=int, default=None, help="show only the last N entries")
@click.argument("name", required=False)
def logs(config_path: Path | None, follow: bool, lines: int | None, name: str | None) -> None:
    """Show the journal of the unit running container NAME (default: the only one)."""
    try:
        unit, _container = _pick(config_path, name)
    except PsquadletError as exc:
        fail(exc)
    argv = ["journalctl", "--no-pager"]
    if _user_mode():
        argv.append("--user")
    argv += ["-u", unit]
    if follow:
        argv.append("-f")
    if lines is not None:
        argv += ["-n", str(lines)]
    _exec(argv)


@click.command()
@click.argument("shell_name", metavar="SHELL", type=click.Choice(["bash", "zsh"]))
def completion(shell_name: str) -> None:
    """Print the shell completion script for SHELL.

    \b
    bash:  psquadlet completion bash > /etc/bash_completion.d/psquadlet
    zsh:   psquadlet completion zsh > "${fpath[1]}/_psquadlet"
    """
    cls = get_completion_class(shell_name)
    assert cls is not None
    click.echo(cls(main, {}, "psquadlet", "_PSQUADLET_COMPLETE").source())


@click.command()
@click.option(
    "-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="write to a file"
)
def man(output: Path | None) -> None:
    """Print the psquadlet(1) man page, generated from this command line's own help."""
    text = render(main, "psquadlet")
    if output is None:
        click.echo(text, nl=False)
    else:
        output.write_text(text, encoding="utf-8")
