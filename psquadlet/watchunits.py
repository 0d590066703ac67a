"""psquadlet's own units (the upgrade watcher), rendered from one source.

``generate`` plans them next to the containers' units (``[watch] enabled``, ``mode``), and the
files in the source tree's ``units/`` (which the .deb installs into ``/lib/systemd/system``)
are this module's text for the packaged program, ``ExecStart=/usr/bin/psquadlet ...``: a test
holds them equal, so the two can never drift.

How they start without ``systemctl enable``: every container unit the watcher manages carries
``Wants=`` of the chosen unit (``render``), so starting the testpoint, by hand or at boot,
starts the watcher too, the way Quadlet's ``WantedBy=`` starts the testpoint. No enable
symlink is written, so opting out (``[watch] enabled = false`` and ``generate``) leaves
nothing behind.

``ExecStart=`` names the psquadlet that is running ``generate``: ``sys.executable -m
psquadlet``, which is right for a venv, pipx (``sys.executable`` is the pipx venv's python)
and a system Python. The distribution's package (module under ``/usr/lib``) is
``/usr/bin/psquadlet``; when its units are installed in systemd's vendor folder, ``generate``
writes no copy that would shadow them.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import psquadlet
from psquadlet import unitfile
from psquadlet.errors import PsquadletError

DAEMON = "daemon"
TIMER = "timer"
MODES = (DAEMON, TIMER)

WATCH_SERVICE = "psquadlet-watch.service"
UPGRADE_SERVICE = "psquadlet-upgrade.service"
UPGRADE_TIMER = "psquadlet-upgrade.timer"
HEAL_SERVICE = "psquadlet-health.service"
HEAL_TIMER = "psquadlet-health.timer"
HEAL_UNITS = (HEAL_SERVICE, HEAL_TIMER)
OWN_UNITS = frozenset({WATCH_SERVICE, UPGRADE_SERVICE, UPGRADE_TIMER, *HEAL_UNITS})

PACKAGED_COMMAND = ("/usr/bin/psquadlet",)
"""Where the .deb and the RPM put the program (what units/ names)."""
VENDOR_UNIT_DIRS = (Path("/usr/lib/systemd/system"), Path("/lib/systemd/system"))
"""Where a distribution package installs units (the .deb: /lib/systemd/system)."""
SYSTEM_MODULE_DIRS = (Path("/usr/lib"), Path("/usr/lib64"))
"""A psquadlet module below these came from a distribution package (pip uses /usr/local)."""


def wanted_unit(mode: str) -> str:
    """The unit a managed container's unit ``Wants=`` in this mode."""
    return WATCH_SERVICE if mode == DAEMON else UPGRADE_TIMER


def mode_units(mode: str) -> tuple[str, ...]:
    """The unit files one mode consists of."""
    return (WATCH_SERVICE,) if mode == DAEMON else (UPGRADE_SERVICE, UPGRADE_TIMER)


def is_packaged(module_file: str | None = None, in_venv: bool | None = None) -> bool:
    """Whether the running psquadlet is a distribution package's (the .deb's, the RPM's)."""
    if in_venv is None:
        in_venv = sys.prefix != sys.base_prefix
    path = Path(module_file or psquadlet.__file__).resolve()
    return not in_venv and any(path.is_relative_to(d) for d in SYSTEM_MODULE_DIRS)


def installed_command() -> tuple[str, ...]:
    """The command that runs this psquadlet, for the units' ``ExecStart=``."""
    if is_packaged():
        return PACKAGED_COMMAND
    if not sys.executable:
        raise PsquadletError(
            "cannot tell which python runs psquadlet (sys.executable is empty): "
            "set [watch] enabled = false and install the units from units/ yourself"
        )
    # Not resolved: a venv's bin/python is a symlink whose target does not see the venv.
    return (sys.executable, "-m", "psquadlet")


# Each unit's own lines; _service adds the [Unit] head and the scheduling tail. The {unit},
# {env} and {state} lines differ between the system and the user manager. units/ holds these
# texts for PACKAGED_COMMAND and the system manager.

_WATCH_COMMENT = """\
# psquadlet's upgrade watcher: checks each managed container's image at its scheduled time
# (one HEAD request per image), pulls a new one first, restarts the unit, health-checks it
# and rolls back on failure. Use either this service or psquadlet-upgrade.timer, not both.
# 'psquadlet generate' writes it (unless the package's copy is installed) and makes each
# managed container's unit want it: starting the container, or booting, starts the watcher.
"""
_WATCH_SERVICE = """\
Type=notify
NotifyAccess=main
{env}ExecStart={command}
WatchdogSec=5min
Restart=on-failure
# psquadlet exits 5 ("not installed") when a Python module the watcher needs is missing
# (podman-py, requests; not pystemd, without which it uses busctl): it says which package
# to install; restarting would only repeat that every 30 s.
RestartPreventExitStatus=5
RestartSec=30s
# A kill mid-upgrade is recovered at the next start; give a pass time to finish first.
TimeoutStopSec=5min
"""

_UPGRADE_COMMENT = """\
# One upgrade pass (what psquadlet-upgrade.timer starts): the timer-driven alternative to
# psquadlet-watch.service for operators who prefer systemd timers to a daemon
# ([watch] mode = "timer").
"""
_UPGRADE_SERVICE = """\
Type=oneshot
{env}ExecStart={command}
"""


_HEAL_COMMENT = """\
# psquadlet's health supervisor, one round (what psquadlet-health.timer starts every minute):
# restarts an unhealthy container within its health.restart_budget, then leaves it running,
# unhealthy, and retries on a backoff; reports unhealthy, gave-up and healthy. It skips a round
# while an upgrade pass holds the state lock. 'psquadlet generate' writes it when a container's
# health check has a restart budget, and makes that container's unit want the timer.
"""
_HEAL_SERVICE = """\
Type=oneshot
{env}ExecStart={command}
TimeoutStartSec=15min
"""
_HEAL_TIMER = """\
# Every minute, one round of psquadlet-health.service (a minute after the last one ended, so
# rounds never overlap). Started by the Wants= of each supervised container's unit.
[Unit]
Description=psquadlet health supervisor, every minute
Documentation=man:psquadlet(1)

[Timer]
OnActiveSec=1min
OnUnitInactiveSec=1min
AccuracySec=5s

[Install]
WantedBy=timers.target
"""


def _service(comment: str, description: str, lines: str, fields: dict[str, str]) -> str:
    return (
        f"{comment}[Unit]\nDescription={description}\nDocumentation=man:psquadlet(1)\n"
        f"{fields['unit']}\n[Service]\n{lines.format(**fields)}"
        f"{fields['state']}Nice=5\nIOSchedulingClass=idle\n"
    )


_TIMER = """\
# Nightly upgrade pass. The per-container schedule in psquadlet.toml applies to
# psquadlet-watch.service; with this timer every managed container is checked at this time.
# RandomizedDelaySec with FixedRandomDelay= keeps a host's slot stable while a fleet spreads.
[Unit]
Description=Nightly psquadlet image upgrade pass
Documentation=man:psquadlet(1)

[Timer]
OnCalendar=*-*-* 03:00:00
RandomizedDelaySec=1h
FixedRandomDelay=true
Persistent=true

[Install]
WantedBy=timers.target
"""

# The system manager: the network and Podman's API socket first; the state in /var/lib.
_SYSTEM = {
    "unit": (
        "Wants=network-online.target podman.socket\nAfter=network-online.target podman.socket\n"
    ),
    "env": "",
    "state": "StateDirectory=psquadlet\nStateDirectoryMode=0755\n",
    "target": "multi-user.target",
}
# The user manager: the user's Podman socket and bus (%t: $XDG_RUNTIME_DIR); the state folder
# is [watch] state_dir, by default the user's $XDG_STATE_HOME/psquadlet
# (model.default_state_dir, the rule every command the user runs follows).
_USER = {
    "unit": "Wants=podman.socket\nAfter=podman.socket\n",
    "env": (
        "Environment=PSQUADLET_PODMAN_URL=unix://%t/podman/podman.sock\n"
        "Environment=PSQUADLET_DBUS_ADDRESS=unix:path=%t/bus\n"
    ),
    "state": "",
    "target": "default.target",
}


@dataclass(frozen=True)
class OwnUnit:
    """One of psquadlet's own unit files, without the generated-file marker."""

    filename: str
    body: str


def _exec(command: Sequence[str], args: Sequence[str]) -> str:
    try:
        return unitfile.exec_command([*command, *args])
    except unitfile.UnitValueError as exc:
        raise PsquadletError(
            f"cannot name this psquadlet in a unit ({exc.reason}): set [watch] enabled = "
            "false and install the units from units/ yourself"
        ) from None


def render(
    mode: str, command: Sequence[str], user: bool = False, config_path: str | None = None
) -> tuple[OwnUnit, ...]:
    """The unit files of ``mode`` whose ``ExecStart=`` runs ``command`` (argv of psquadlet),
    reading ``config_path`` (None: the default configuration)."""
    if mode not in MODES:
        raise ValueError(f"unknown watch mode {mode!r}")
    config = ("-c", config_path) if config_path is not None else ()
    manager = _USER if user else _SYSTEM
    if mode == DAEMON:
        fields = {**manager, "command": _exec(command, ("watch", *config))}
        text = _service(_WATCH_COMMENT, "psquadlet image upgrade watcher", _WATCH_SERVICE, fields)
        return (OwnUnit(WATCH_SERVICE, f"{text}\n[Install]\nWantedBy={manager['target']}\n"),)
    fields = {**manager, "command": _exec(command, ("upgrade", *config))}
    text = _service(_UPGRADE_COMMENT, "psquadlet image upgrade pass", _UPGRADE_SERVICE, fields)
    return (OwnUnit(UPGRADE_SERVICE, text), OwnUnit(UPGRADE_TIMER, _TIMER))


def render_heal(
    command: Sequence[str], user: bool = False, config_path: str | None = None
) -> tuple[OwnUnit, ...]:
    """The health supervisor's units (``psquadlet heal``), for either watch mode."""
    config = ("-c", config_path) if config_path is not None else ()
    manager = _USER if user else _SYSTEM
    # heal reaches Podman and systemd by their command-line tools: no socket, no bus address.
    fields = {**manager, "env": "", "unit": "", "command": _exec(command, ("heal", *config))}
    text = _service(_HEAL_COMMENT, "psquadlet health supervisor (one round)", _HEAL_SERVICE, fields)
    return (OwnUnit(HEAL_SERVICE, text), OwnUnit(HEAL_TIMER, _HEAL_TIMER))


def shipped() -> tuple[OwnUnit, ...]:
    """What units/ holds: both modes and the health supervisor, for the packaged program and
    the system manager."""
    return (
        *render(DAEMON, PACKAGED_COMMAND),
        *render(TIMER, PACKAGED_COMMAND),
        *render_heal(PACKAGED_COMMAND),
    )


def packaged_copy(unit: OwnUnit, vendor_dirs: Sequence[Path] = VENDOR_UNIT_DIRS) -> Path | None:
    """The distribution package's installed copy of ``unit`` when it reads the same (a copy
    of ours would only shadow it), else None."""
    for folder in vendor_dirs:
        path = folder / unit.filename
        try:
            if path.is_file() and path.read_text(encoding="utf-8") == unit.body:
                return path
        except (OSError, UnicodeDecodeError):
            continue
    return None
