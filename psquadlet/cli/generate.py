"""``psquadlet generate``, ``init`` and ``validate``.

Kept free of podman-py, pystemd and PyYAML imports: generate runs at every configuration
change and in CI, and must stay quick and installable with click alone.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Sequence
from pathlib import Path

import click

from psquadlet import config as config_mod
from psquadlet import perfsonar, presets, quadlet_keys, render, schema
from psquadlet import plan as plan_mod
from psquadlet.cli.common import config_option, fail
from psquadlet.errors import (
    ConfigError,
    ConfigErrors,
    PodmanVersionError,
    PsquadletError,
    RefusedError,
    UsageError,
)
from psquadlet.fsutil import atomic_write
from psquadlet.host import detect_podman_version

QUADLET_DIR_ROOT = Path("/etc/containers/systemd")
QUADLET_DIR_USER = Path("~/.config/containers/systemd")
SERVICE_DIR_ROOT = Path("/etc/systemd/system")
SERVICE_DIR_USER = Path("~/.config/systemd/user")


def _is_root() -> bool:
    return os.geteuid() == 0


def default_outdir(fmt: str, user: bool) -> Path:
    if fmt == "quadlet":
        folder = QUADLET_DIR_USER if user else QUADLET_DIR_ROOT
    else:
        folder = SERVICE_DIR_USER if user else SERVICE_DIR_ROOT
    return folder.expanduser()


def _located(exc: ConfigError | ConfigErrors) -> PsquadletError:
    errors = config_mod.locate(exc.errors)
    return errors[0] if len(errors) == 1 else ConfigErrors(errors)


def _choose_format(
    fmt: str, version_text: str | None
) -> tuple[str, tuple[int, int, int] | None, str | None]:
    """(format, target version, note for the operator) from the options and the host."""
    if version_text is not None:
        try:
            version: tuple[int, int, int] | None = quadlet_keys.parse_version(version_text)
        except ValueError as exc:
            raise UsageError(f"--podman-version: {exc}") from None
        detected = False
    else:
        version = detect_podman_version()
        detected = version is not None
    note = None
    has_quadlet = version is None or version[:2] >= quadlet_keys.QUADLET_MIN_VERSION
    if fmt == "auto":
        fmt = "quadlet" if has_quadlet else "service"
        if not has_quadlet:
            assert version is not None
            where = "installed " if detected else ""
            note = (
                f"the {where}Podman {quadlet_keys.format_version(version)} has no Quadlet "
                "(needs 4.4): writing a plain .service instead"
            )
    if fmt == "quadlet" and not has_quadlet and detected:
        assert version is not None
        raise UsageError(
            f"the installed Podman {quadlet_keys.format_version(version)} has no Quadlet "
            "(needs 4.4): use --format service, or --podman-version VER to write units for "
            "another host"
        )
    return fmt, version, note


def _only_version_errors(exc: ConfigError | ConfigErrors) -> bool:
    return all(isinstance(e, PodmanVersionError) for e in exc.errors)


def _missing_keys(exc: ConfigError | ConfigErrors) -> str:
    features = (e.feature for e in exc.errors if isinstance(e, PodmanVersionError))
    keys = dict.fromkeys(f.split(" in [", 1)[0].removeprefix("key ") for f in features)
    return ", ".join(keys)


def _report(actions: Sequence[plan_mod.Action], applied: bool) -> None:
    for action in actions:
        word = plan_mod.PAST[action.kind] if applied else f"would {action.kind}"
        if action.kind == plan_mod.UNCHANGED:
            word = "unchanged"
        click.echo(f"{word}: {action.path}")


def _daemon_reload(user: bool) -> None:
    argv = ["systemctl", "--user", "daemon-reload"] if user else ["systemctl", "daemon-reload"]
    try:
        result = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=120)
    except (OSError, subprocess.SubprocessError) as exc:
        raise PsquadletError(f"{' '.join(argv)} failed: {exc}") from None
    if result.returncode != 0:
        detail = (result.stderr or result.stdout).strip()
        raise PsquadletError(f"{' '.join(argv)} failed: {detail}")
    click.echo(f"ran: {' '.join(argv)}")


@click.command()
@config_option
@click.option(
    "-o",
    "--output",
    "outdir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Output folder (default: the Quadlet or systemd folder for root or the user).",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["auto", "quadlet", "service"]),
    default="auto",
    show_default=True,
    help="quadlet: .container/.volume files (Podman >= 4.4); service: a plain .service that "
    "runs podman itself; auto: quadlet unless the target Podman is older than 4.4.",
)
@click.option(
    "--podman-version",
    "version_text",
    metavar="VER",
    help="Target Podman version (default: the installed one, else the newest). Quadlet keys "
    "it does not know are refused.",
)
@click.option("--user/--system", "user", default=None, help="User units (default: unless root).")
@click.option("--dry-run", is_flag=True, help="Print the units; touch nothing.")
@click.option("--diff", "show_diff", is_flag=True, help="Print unified diffs of the changes.")
@click.option("--force", is_flag=True, help="Overwrite files psquadlet did not generate.")
@click.option("--reload", "reload_", is_flag=True, help="Run 'systemctl daemon-reload' after.")
def generate(  # noqa: PLR0917 (one parameter per click option)
    config_path: Path | None,
    outdir: Path | None,
    fmt: str,
    version_text: str | None,
    user: bool | None,
    dry_run: bool,
    show_diff: bool,
    force: bool,
    reload_: bool,
) -> None:
    """Write the units for every configured container (and the volumes they use)."""
    try:
        cfg = config_mod.load_config(config_path)
        auto = fmt == "auto"
        fmt, version, note = _choose_format(fmt, version_text)
        as_user = (not _is_root()) if user is None else user
        try:
            units = render.render_units(cfg, fmt, version, user=as_user)
        except (ConfigError, ConfigErrors) as exc:
            if not (auto and fmt == "quadlet" and _only_version_errors(exc)):
                raise _located(exc) from None
            # The target's Quadlet lacks keys this configuration needs: the plain .service
            # format expresses the same podman run flags without them.
            assert version is not None
            note = (
                f"Podman {quadlet_keys.format_version(version)}'s Quadlet lacks "
                f"{_missing_keys(exc)}: writing a plain .service instead"
            )
            fmt = "service"
            try:
                units = render.render_units(cfg, fmt, version, user=as_user)
            except (ConfigError, ConfigErrors) as again:
                raise _located(again) from None
        if note:
            click.echo(f"psquadlet: note: {note}", err=True)
        folder = outdir if outdir is not None else default_outdir(fmt, as_user)
        plan = plan_mod.compute_plan(units, folder, force)
        # Files rendered from [containers.X.perfsonar], in psquadlet's own folders.
        host_plans = perfsonar.host_file_plans(cfg)
        host_changes = [a for p in host_plans for a in p.changes]
        if dry_run:
            if show_diff:
                for action in (*plan.changes, *host_changes):
                    click.echo(action.diff(), nl=False)
            else:
                for unit in units:
                    click.echo(f"# ==> {folder / unit.filename} <==")
                    click.echo(unit.text, nl=False)
                for action in (a for p in host_plans for a in p.actions):
                    click.echo(f"# ==> {action.path} <==")
                    click.echo(action.new or "", nl=False)
            plan.check()
            return
        if show_diff:
            for action in (*plan.changes, *host_changes):
                click.echo(action.diff(), nl=False)
        changed = plan_mod.apply_plan(plan)
        _report(plan.actions, applied=True)
        for host_plan in host_plans:
            changed += plan_mod.apply_plan(host_plan)
            _report(host_plan.actions, applied=True)
        if changed:
            if reload_:
                _daemon_reload(as_user)
            elif _is_root() or as_user:
                scope = "--user " if as_user else ""
                click.echo(f"run 'systemctl {scope}daemon-reload' to load the changes")
    except PsquadletError as exc:
        fail(exc)


@click.command()
@click.option(
    "--variant",
    type=click.Choice(list(presets.variants(presets.PERFSONAR_TESTPOINT))),
    default=presets.DEFAULT_VARIANTS[presets.PERFSONAR_TESTPOINT],
    show_default=True,
    help="systemd (recommended; needs cgroup v2) or supervisord.",
)
@click.option("--force", is_flag=True, help="Overwrite an existing file.")
@click.argument("path", required=False, default=str(config_mod.DEFAULT_CONFIG_PATH))
def init(variant: str, force: bool, path: str) -> None:
    """Write a commented configuration to start from (PATH '-' for stdout)."""
    text = presets.init_text(variant)
    if path == "-":
        click.echo(text, nl=False)
        return
    target = Path(path)
    try:
        if target.exists() and not force:
            raise RefusedError(f"{target} exists; use --force to overwrite it")
        if target.is_dir():
            raise UsageError(f"{target} is a folder")
        target.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(target, text)
    except OSError as exc:
        fail(PsquadletError(f"cannot write {target}: {exc.strerror or exc}"))
    except PsquadletError as exc:
        fail(exc)
    click.echo(f"wrote {target}; check it with 'psquadlet validate -c {target}'")


@click.command()
@config_option
def validate(config_path: Path | None) -> None:
    """Check a configuration; print "OK: N containers" or every problem (exit code 2)."""
    try:
        cfg = config_mod.load_config(config_path)
        try:
            render.render_units(cfg, "quadlet")
            render.render_units(cfg, "service")
        except (ConfigError, ConfigErrors) as exc:
            raise _located(exc) from None
    except PsquadletError as exc:
        fail(exc)
    for spec in cfg.containers:
        for warning in schema.secret_warnings(
            spec.environment, f"containers.{spec.name}.environment"
        ):
            click.echo(f"psquadlet: warning: {cfg.source}: {warning}", err=True)
    count = len(cfg.containers)
    click.echo(f"OK: {count} containers ({cfg.source})")
