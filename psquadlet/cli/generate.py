"""``psquadlet generate``, ``init`` and ``validate``.

Kept free of podman-py, pystemd and PyYAML imports: generate runs at every configuration
change and in CI, and must stay quick and installable with click alone.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from psquadlet import config as config_mod
from psquadlet import generate as generate_mod
from psquadlet import plan as plan_mod
from psquadlet import presets, quadlet_keys
from psquadlet.cli.common import config_option, fail, json_option, reported
from psquadlet.errors import PsquadletError, RefusedError, UsageError
from psquadlet.fsutil import atomic_write

GENERATE_SCHEMA = "psquadlet-generate/1"


def _echo_plan(result: generate_mod.Result, show_diff: bool) -> None:
    gplan = result.plan
    if show_diff:
        for action in gplan.plan.changes:
            click.echo(action.diff(), nl=False)
    elif result.dry_run:
        for action in gplan.plan.actions:
            if action.new is not None:
                click.echo(f"# ==> {action.path} <==")
                click.echo(action.new, nl=False)
    if result.dry_run:
        return
    for action in gplan.plan.actions:
        click.echo(f"{plan_mod.PAST[action.kind]}: {action.path}")
    if result.reloaded:
        click.echo(f"ran: {' '.join(generate_mod.reload_argv(gplan.user))}")
    elif result.changed and (generate_mod.is_root() or gplan.user):
        scope = "--user " if gplan.user else ""
        click.echo(f"run 'systemctl {scope}daemon-reload' to load the changes")


def _json(result: generate_mod.Result, show_diff: bool) -> dict[str, object]:
    gplan = result.plan
    version = gplan.version
    doc: dict[str, object] = {
        "schema": GENERATE_SCHEMA,
        "ok": True,
        "changed": result.changed,
        "dry_run": result.dry_run,
        "format": gplan.fmt,
        "podman_version": None if version is None else quadlet_keys.format_version(version),
        "output_dir": str(gplan.unit_dir),
        "note": gplan.note,
        "files": [
            {"path": str(a.path), "action": a.kind, "kind": a.file_kind} for a in gplan.plan.actions
        ],
        "reloaded": result.reloaded,
    }
    if show_diff:
        doc["diff"] = "".join(a.diff() for a in gplan.plan.changes)
    return doc


@click.command()
@config_option
@click.option(
    "-o",
    "--output",
    "outdir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Output folder (default: the Quadlet or systemd folder for root or the user). "
    "Extension host files go under OUTPUT/psquadlet/.",
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
@click.option(
    "--force",
    is_flag=True,
    help="Overwrite files psquadlet did not generate, remove edited ones it no longer "
    "generates, and allow names of installed units.",
)
@click.option("--reload", "reload_", is_flag=True, help="Run 'systemctl daemon-reload' after.")
@click.option(
    "--as-config",
    "as_config",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Plan as though the configuration were this file (the one the units name): checks "
    "a candidate (-c) before it replaces that file, removals included.",
)
@json_option
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
    as_config: Path | None,
    as_json: bool,
) -> None:
    """Write the units for every configured container (and the volumes they use)."""
    options = generate_mod.Options(
        config_path, outdir, fmt, version_text, user, force, as_config=as_config
    )
    with reported(GENERATE_SCHEMA if as_json else None):
        if as_config is not None and not dry_run:
            raise UsageError("--as-config checks a candidate: it needs --dry-run")
        result = generate_mod.run(options, dry_run=dry_run, reload=reload_)
        if result.plan.note and not as_json:
            click.echo(f"psquadlet: note: {result.plan.note}", err=True)
        for warning in generate_mod.folder_warnings(result.plan.config):
            click.echo(f"psquadlet: warning: {result.plan.config.source}: {warning}", err=True)
        if as_json:
            result.plan.plan.check()
            click.echo(json.dumps(_json(result, show_diff), indent=2))
        else:
            _echo_plan(result, show_diff)
            result.plan.plan.check()


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
        cfg = generate_mod.validate(config_path)
    except PsquadletError as exc:
        fail(exc)
    for warning in generate_mod.config_warnings(cfg):
        click.echo(f"psquadlet: warning: {cfg.source}: {warning}", err=True)
    click.echo(f"OK: {len(cfg.containers)} containers ({cfg.source})")
