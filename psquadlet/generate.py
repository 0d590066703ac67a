"""``generate`` as a library call: configuration -> one plan of every file -> applied.

``plan_generate(options)`` reads the configuration, chooses the format, renders the units and
the extensions' host files, and compares all of them with the disk: one ``plan.Plan`` for
the whole run, under one root. ``apply(generate_plan)`` applies it all or nothing, holding the
output folder's lock. ``run(options)`` is what the command does: plan, and unless it is a dry
run, plan again under the lock and apply.

Where the files of a run go (the root):

=================  =============================  ==========================================
run                units                          extension host files
=================  =============================  ==========================================
root (--system)    /etc/containers/systemd        /etc/psquadlet/perfsonar/NAME/
                   (/etc/systemd/system)
--user             ~/.config/containers/systemd   ~/.config/psquadlet/perfsonar/NAME/
                   (~/.config/systemd/user)
-o DIR             DIR                            DIR/psquadlet/perfsonar/NAME/
=================  =============================  ==========================================

The units' bind mounts name the host files where this run writes them. The watcher's own
units (``watchunits``) go into systemd's folder of the mode (/etc/systemd/system,
~/.config/systemd/user) or DIR.

Kept free of podman-py, pystemd and PyYAML imports: generate runs at every configuration
change and in CI, and must stay quick and installable with click alone.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from psquadlet import config as config_mod
from psquadlet import (
    downgrade,
    dropin,
    fsutil,
    marker,
    ownhooks,
    quadlet_keys,
    registrymove,
    render,
    schema,
    watchunits,
)
from psquadlet import plan as plan_mod
from psquadlet.errors import (
    ConfigError,
    ConfigErrors,
    PodmanVersionError,
    PsquadletError,
    UsageError,
)
from psquadlet.host import detect_podman_version
from psquadlet.model import BUILTIN_SOURCE, Config

QUADLET_DIR_ROOT = Path("/etc/containers/systemd")
QUADLET_DIR_USER = Path("~/.config/containers/systemd")
SERVICE_DIR_ROOT = Path("/etc/systemd/system")
SERVICE_DIR_USER = Path("~/.config/systemd/user")
HOST_DIR_ROOT = Path("/etc/psquadlet")
HOST_DIR_USER = Path("~/.config/psquadlet")


def is_root() -> bool:
    return os.geteuid() == 0


@dataclass(frozen=True)
class Options:
    """What ``psquadlet generate`` is asked; None: the default for this host."""

    config_path: Path | None = None
    outdir: Path | None = None
    fmt: str = "auto"
    podman_version: str | None = None
    user: bool | None = None
    force: bool = False
    unit_search_path: tuple[Path, ...] | None = None
    """Installed units a new one must not shadow (None: systemd's search path for the mode)."""
    watch_command: tuple[str, ...] | None = None
    """The psquadlet the watcher's units run (None: this one, ``watchunits.installed_command``)."""
    vendor_unit_dirs: tuple[Path, ...] | None = None
    """Where a package's own units are installed (None: ``watchunits.VENDOR_UNIT_DIRS``)."""
    config_text: str | None = None
    """The configuration's text when it is not on disk yet (``adopt --dry-run``); its source
    is still ``config_path``."""
    replacing: tuple[Path, ...] = ()
    """Installed units this run moves aside first (``adopt``): they do not count as shadowed."""
    as_config: Path | None = None
    """Plan as though the configuration read were this file (the source the units name and
    the watcher reads): a candidate checked beside the file it is to replace."""


@dataclass(frozen=True)
class GeneratePlan:
    """One run: every file under one root, compared with the disk."""

    config: Config
    options: Options
    fmt: str
    version: tuple[int, int, int] | None
    user: bool
    note: str | None
    unit_dir: Path
    host_dir: Path
    targets: tuple[plan_mod.Target, ...]
    folders: tuple[Path, ...]
    """The unit folder first, then the watcher's unit folder when it differs, then the
    extensions' host-file folders (``owned``)."""
    owned: tuple[Path, ...]
    """The extensions' host-file folders: psquadlet owns every file in them."""
    plan: plan_mod.Plan
    stale_dropins: tuple[Path, ...] = ()
    """The watcher's release drop-ins whose base image is no longer the configured one."""
    new_dropins: tuple[tuple[Path, str], ...] = ()
    """Drop-ins that keep an installed Docker Hub testpoint until the watcher moves it."""

    @property
    def changed(self) -> bool:
        return bool(self.plan.changes) or bool(self.stale_dropins) or bool(self.new_dropins)


def default_outdir(fmt: str, user: bool) -> Path:
    if fmt == "quadlet":
        folder = QUADLET_DIR_USER if user else QUADLET_DIR_ROOT
    else:
        folder = SERVICE_DIR_USER if user else SERVICE_DIR_ROOT
    return folder.expanduser()


def host_dir(user: bool, outdir: Path | None) -> Path:
    """The folder extensions write host files under (see the table above)."""
    if outdir is not None:
        return outdir / "psquadlet"
    return (HOST_DIR_USER if user else HOST_DIR_ROOT).expanduser()


def with_extension_mounts(config: Config, host: Path) -> Config:
    """``config`` with each extension's bind mounts (reading files under ``host``) added."""
    specs = []
    for spec in config.containers:
        volumes = list(spec.volumes)
        for ext in config_mod.CONTAINER_EXTENSIONS:
            value: Any = getattr(spec, ext.key)
            if value is not None:
                volumes += [config_mod.parse_volume(m) for m in ext.mounts(spec.name, value, host)]
        specs.append(dataclasses.replace(spec, volumes=tuple(volumes)))
    return dataclasses.replace(config, containers=tuple(specs))


def _located(exc: ConfigError | ConfigErrors) -> PsquadletError:
    errors = config_mod.locate(exc.errors)
    return errors[0] if len(errors) == 1 else ConfigErrors(errors)


def choose_format(
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
    if not has_quadlet:
        assert version is not None
        where = "installed " if detected else ""
        lacks = (
            f"the {where}Podman {quadlet_keys.format_version(version)} has no Quadlet (needs 4.4)"
        )
        if fmt == "auto":
            note = f"{lacks}: writing a plain .service instead"
        elif fmt == "quadlet" and detected:
            raise UsageError(
                f"{lacks}: use --format service, or --podman-version VER to write units for "
                "another host"
            )
    if fmt == "auto":
        fmt = "quadlet" if has_quadlet else "service"
    return fmt, version, note


def _missing_keys(exc: ConfigError | ConfigErrors) -> str:
    features = (e.feature for e in exc.errors if isinstance(e, PodmanVersionError))
    keys = dict.fromkeys(f.split(" in [", 1)[0].removeprefix("key ") for f in features)
    return ", ".join(keys)


def render_units(
    config: Config, fmt: str, version: tuple[int, int, int] | None, user: bool, auto: bool
) -> tuple[str, tuple[render.UnitFile, ...], str | None]:
    """(format, units, note). ``auto``: fall back to .service when Quadlet lacks a key."""
    try:
        return fmt, render.render_units(config, fmt, version, user=user), None
    except (ConfigError, ConfigErrors) as exc:
        only_version = all(isinstance(e, PodmanVersionError) for e in exc.errors)
        if not (auto and fmt == "quadlet" and only_version):
            raise _located(exc) from None
        # The target's Quadlet lacks keys this configuration needs: the plain .service
        # format expresses the same podman run flags without them.
        assert version is not None
        note = (
            f"Podman {quadlet_keys.format_version(version)}'s Quadlet lacks "
            f"{_missing_keys(exc)}: writing a plain .service instead"
        )
    try:
        return "service", render.render_units(config, "service", version, user=user), note
    except (ConfigError, ConfigErrors) as again:
        raise _located(again) from None


def watch_dir(user: bool, outdir: Path | None) -> Path:
    """Where the watcher's own units go: systemd's folder (Quadlet's is read by no one else)."""
    return outdir if outdir is not None else default_outdir("service", user)


def _own_units(
    config: Config, options: Options, folder: Path, user: bool
) -> tuple[list[plan_mod.Target], list[str]]:
    """The watcher's units to write (``[watch] enabled``, ``mode``), and notes on those kept.

    Not written: a unit that reads exactly like the package's copy in the vendor folder (the
    packaged psquadlet with the default configuration: a copy would only shadow it, and the
    containers' ``Wants=`` starts the package's), and a unit in the folder without the marker
    (an operator's own copy) unless ``--force``.
    """
    watch = config.watch
    watcher = watch.enabled and any(ownhooks.watcher_wants(config, s) for s in config.containers)
    healer = any(ownhooks.heal_wants(s) for s in config.containers)
    if not (watcher or healer):
        return [], []
    command = options.watch_command or watchunits.installed_command()
    vendor = options.vendor_unit_dirs or watchunits.VENDOR_UNIT_DIRS
    path_arg = _config_arg(config.source)
    try:
        units = (
            *(watchunits.render(watch.mode, command, user, path_arg) if watcher else ()),
            *(watchunits.render_heal(command, user, path_arg) if healer else ()),
        )
    except PsquadletError as exc:
        return [], [f"not writing the watcher's units: {exc}"]
    targets, notes = [], []
    for unit in units:
        path = folder / unit.filename
        packaged = None if user else watchunits.packaged_copy(unit, vendor)
        if packaged is not None:
            notes.append(f"using the package's {packaged}")
            continue
        old = _read_text(path)
        if old is not None and not marker.is_generated(old) and not options.force:
            notes.append(f"keeping {path} (not written by psquadlet)")
            continue
        text = f"{marker.marker(config.source)}\n{unit.body}"
        targets.append(plan_mod.Target(path, text, plan_mod.UNIT))
    return targets, notes


def _config_arg(source: str) -> str | None:
    """The ``-c`` the watcher needs to read this configuration (None: it reads it anyway)."""
    if source == BUILTIN_SOURCE:
        return None
    path = os.path.abspath(source)
    return None if Path(path) == config_mod.DEFAULT_CONFIG_PATH else path


def _read_text(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8", errors="replace") if path.is_file() else None
    except OSError:
        return None


def _files(
    config: Config, units: Sequence[render.UnitFile], unit_dir: Path, host: Path
) -> tuple[tuple[plan_mod.Target, ...], tuple[Path, ...]]:
    """The containers' and extensions' files, and the folders they go into (units first)."""
    targets = [
        plan_mod.Target(unit_dir / u.filename, u.text, plan_mod.unit_kind(u.filename))
        for u in units
    ]
    folders = [unit_dir]
    header = marker.marker(config.source)
    for spec in config.containers:
        for ext in config_mod.CONTAINER_EXTENSIONS:
            value: Any = getattr(spec, ext.key)
            if value is None:
                continue
            folders.append(ext.host_folder(spec.name, host))
            targets += [
                plan_mod.Target(f.path, f.content, plan_mod.HOST_FILE)
                for f in ext.host_files(spec.name, value, host, header)
            ]
    return tuple(targets), tuple(folders)


def _compare(generate_plan: GeneratePlan) -> plan_mod.Plan:
    options = generate_plan.options
    search = options.unit_search_path
    if search is None:
        search = plan_mod.unit_search_path(generate_plan.user)
    return plan_mod.compute_plan(
        generate_plan.targets,
        generate_plan.folders,
        generate_plan.config.source,
        force=options.force,
        search_path=search,
        owned=generate_plan.owned,
        replacing=options.replacing,
    )


def plan_generate(options: Options) -> GeneratePlan:
    """Everything ``generate`` would do, touching nothing. Raises PsquadletError."""
    if options.config_text is not None and options.config_path is not None:
        config = config_mod.parse_config(options.config_text, str(options.config_path))
    else:
        config = config_mod.load_config(options.config_path)
    fmt, version, note = choose_format(options.fmt, options.podman_version)
    user = (not is_root()) if options.user is None else options.user
    host = host_dir(user, options.outdir)
    config = with_extension_mounts(config, host)
    chosen_dir = options.outdir if options.outdir is not None else default_outdir(fmt, user)
    moves = registrymove.plan_moves(config, chosen_dir, fmt, version)
    config = moves.config
    fmt, units, fallback = render_units(config, fmt, version, user, auto=options.fmt == "auto")
    if options.as_config is not None:  # errors above name the file read; the plan, this one
        config = dataclasses.replace(config, source=str(options.as_config))
        units = render_units(config, fmt, version, user, auto=False)[1]
    unit_dir = options.outdir if options.outdir is not None else default_outdir(fmt, user)
    targets, folders = _files(config, units, unit_dir, host)
    own_dir = watch_dir(user, options.outdir)
    own, kept = _own_units(config, options, own_dir, user)
    left_out = downgrade.target_notes(config, fmt, version)
    notes = "; ".join(n for n in (note, fallback, *left_out, moves.note, *kept) if n)
    empty = plan_mod.Plan(())
    draft = GeneratePlan(
        config,
        options,
        fmt,
        version,
        user,
        notes or None,
        unit_dir,
        host,
        (*targets, *own),
        tuple(dict.fromkeys((folders[0], own_dir, *folders[1:]))),
        folders[1:],
        empty,
    )
    return dataclasses.replace(
        draft,
        plan=_compare(draft),
        stale_dropins=_stale_dropins(draft),
        new_dropins=moves.dropins if fmt == "quadlet" else (),
    )


def _stale_dropins(generate_plan: GeneratePlan) -> tuple[Path, ...]:
    """Release drop-ins (``psquadlet.dropin``) to remove: the operator changed the image."""
    if generate_plan.fmt != "quadlet":
        return ()
    found = (
        dropin.stale_dropin(generate_plan.unit_dir / f"{spec.name}.container", spec.image)
        for spec in generate_plan.config.containers
    )
    return tuple(path for path in found if path is not None)


def apply(generate_plan: GeneratePlan) -> GeneratePlan:
    """Apply the run, all or nothing, under the output folder's lock; the plan carried out.

    The files are compared with the disk again once the lock is held (another run may have
    gone first). Refuses (RefusedError, nothing written) when a file is in the way; reports an
    OSError plainly, saying whether anything was written.
    """
    generate_plan.plan.check()
    folder = generate_plan.unit_dir
    try:
        with fsutil.folder_lock(folder):
            current = dataclasses.replace(generate_plan, plan=_compare(generate_plan))
            plan_mod.apply_plan(current.plan)  # reports its own OSErrors
            _remove_dropins(generate_plan.stale_dropins)
            _write_dropins(generate_plan.new_dropins)
    except OSError as exc:
        raise PsquadletError(
            f"cannot use {folder}: {exc.strerror or exc}; nothing was written"
        ) from None
    return current


def _remove_dropins(paths: tuple[Path, ...]) -> None:
    for path in paths:
        try:
            path.unlink(missing_ok=True)
        except OSError as exc:
            raise PsquadletError(
                f"the units were written, but the stale release drop-in {path} cannot be "
                f"removed: {exc.strerror or exc}"
            ) from None


def _write_dropins(dropins: tuple[tuple[Path, str], ...]) -> None:
    for path, text in dropins:
        try:
            path.parent.mkdir(mode=0o755, exist_ok=True)
            fsutil.atomic_write(path, text)
        except OSError as exc:
            raise PsquadletError(
                f"the units were written, but {path} cannot be: {exc.strerror or exc}; "
                "do not restart the testpoint before 'psquadlet generate' succeeds"
            ) from None


@dataclass(frozen=True)
class Result:
    plan: GeneratePlan
    dry_run: bool
    reloaded: bool

    @property
    def changed(self) -> bool:
        return self.plan.changed


def run(options: Options, dry_run: bool = False, reload: bool = False) -> Result:
    """``psquadlet generate``: plan, and unless ``dry_run`` apply; ``reload``: then run
    ``systemctl daemon-reload`` when something changed."""
    generate_plan = plan_generate(options)
    if dry_run:
        return Result(generate_plan, dry_run=True, reloaded=False)
    done = apply(generate_plan)
    if reload and done.changed:
        daemon_reload(done.user)
    return Result(done, dry_run=False, reloaded=reload and done.changed)


def reload_argv(user: bool) -> list[str]:
    return ["systemctl", "--user", "daemon-reload"] if user else ["systemctl", "daemon-reload"]


def daemon_reload(user: bool) -> None:
    argv = reload_argv(user)
    try:
        result = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=120)
    except (OSError, subprocess.SubprocessError) as exc:
        raise PsquadletError(f"{' '.join(argv)} failed: {exc}") from None
    if result.returncode != 0:
        detail = (result.stderr or result.stdout).strip()
        raise PsquadletError(f"{' '.join(argv)} failed: {detail}")


def folder_warnings(config: Config) -> list[str]:
    """The configured folders this user (who runs the watcher and the hooks of units written
    for this user or, as root, the system's) cannot use: unwritable, or others can write."""
    uid = os.geteuid()
    who = "root" if uid == 0 else f"uid {uid}"
    folders = [("watch.state_dir", config.watch.state_dir, True)]
    if config.metrics is not None:
        folders.append(("metrics.textfile_dir", config.metrics.textfile_dir, False))
    warnings = []
    for key, folder, parents in folders:
        problem = fsutil.folder_problem(folder, parents) or fsutil.unwritable(folder, parents)
        if problem:
            warnings.append(f"{key} {folder}: {problem}: psquadlet run as {who} cannot use it")
    return warnings


def config_warnings(config: Config) -> list[str]:
    """What ``validate`` warns about: secret-looking environment names, channel URLs with a
    password in a configuration others can read, and ``folder_warnings``."""
    warnings = [
        w
        for spec in config.containers
        for w in schema.secret_warnings(spec.environment, f"containers.{spec.name}.environment")
    ]
    channels = config.notifications.channels if config.notifications else ()
    try:
        readable = os.stat(config.source).st_mode & 0o044 != 0
    except OSError:  # the built-in default, stdin
        readable = False
    if readable:
        urls = ((c.name, c.url) for c in channels)
        warnings += schema.url_secret_warnings(urls, "notifications.channels")
    return warnings + folder_warnings(config)


def validate(config_path: Path | None) -> Config:
    """Load a configuration and render it in both formats; raises located errors."""
    config = config_mod.load_config(config_path)
    mounted = with_extension_mounts(config, HOST_DIR_ROOT)
    for fmt in render.FORMATS:
        try:
            render.render_units(mounted, fmt)
        except (ConfigError, ConfigErrors) as exc:
            raise _located(exc) from None
    return config
