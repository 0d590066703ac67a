"""Wiring: configuration -> adapters -> a pass or the daemon. Called by ``psquadlet.cli.watch``.

The adapters (podman-py, pystemd or busctl) are imported here, inside the functions, so that
nothing but the watcher's own commands ever loads them; ``deps.systemd_adapter`` says which
way to systemd this host has.
"""

from __future__ import annotations

import dataclasses
import json
import multiprocessing
import signal
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Callable

from psquadlet.config import load_config
from psquadlet.deps import PYSTEMD, require_watch_deps, systemd_adapter
from psquadlet.errors import PsquadletError, UsageError
from psquadlet.model import Config
from psquadlet.watch import core, interfaces, manual
from psquadlet.watch.interfaces import LockedError, SystemClock, WatchError
from psquadlet.watch.liveconfig import LiveConfig
from psquadlet.watch.log import Logger
from psquadlet.watch.schedule import read_machine_id
from psquadlet.watch.sinks import reporting
from psquadlet.watch.state import FileStateStore
from psquadlet.watch.targets import Target, select, targets_from_config


@dataclasses.dataclass(frozen=True)
class Endpoints:
    """Where the adapters connect; tests and the e2e test bed point these at their own."""

    podman_url: str | None = None  # None: $PSQUADLET_PODMAN_URL or the root podman socket
    dbus_address: str | None = None  # None: $PSQUADLET_DBUS_ADDRESS or the system bus
    state_dir: str | None = None  # None: [watch] state_dir
    registry_timeout: float = 30.0
    health_interval: float = 5.0


def build_deps(config: Config, endpoints: Endpoints, log: Logger) -> core.Deps:
    from psquadlet.watch.podman_images import PodmanImages  # noqa: PLC0415
    from psquadlet.watch.registry import registry_from_config  # noqa: PLC0415
    from psquadlet.watch.unit_overrides import UnitOverrides  # noqa: PLC0415

    tls = {r.host: r.tls_verify for r in config.registries}
    registry = registry_from_config(config, timeout=endpoints.registry_timeout)
    images = PodmanImages(
        endpoints.podman_url,
        tls_verify=lambda h: tls.get(h, True),
        auth=registry.credentials.lookup,
    )
    units = systemd_units(endpoints.dbus_address)
    return core.Deps(
        registry=registry,
        images=images,
        units=units,
        overrides=UnitOverrides(units, images.version()),
        behind_check=True,
        clock=SystemClock(),
        store=FileStateStore(_state_dir(config, endpoints)),
        log=log,
        parallel=config.watch.parallel,
        health_interval=endpoints.health_interval,
        # registry time per pass: 300 s, or ten requests' worth of a longer --registry-timeout
        registry_budget=max(300.0, 10 * endpoints.registry_timeout),
    )


def systemd_units(address: str | None) -> interfaces.UnitsAdapter:
    """The Units adapter ``deps.systemd_adapter`` names: pystemd where found, else busctl."""
    if systemd_adapter() == PYSTEMD:
        from psquadlet.watch.systemd_units import SystemdUnits  # noqa: PLC0415

        return SystemdUnits(address)
    from psquadlet.watch.busctl_units import BusctlUnits  # noqa: PLC0415

    return BusctlUnits(address)


def _state_dir(config: Config, endpoints: Endpoints) -> str:
    return endpoints.state_dir or config.watch.state_dir


UPGRADE_SCHEMA = "psquadlet-upgrade/1"


def _outcome_json(o: core.Outcome) -> dict[str, Any]:
    upgraded = o.action == core.UPGRADED
    old = o.previous_digest if upgraded else o.running_digest
    return {
        **dataclasses.asdict(o),
        "result": o.result,
        "old_digest": old or None,
        "new_digest": o.remote_digest or None,
    }


def report_json(report: core.PassReport) -> str:
    """JSON_CONTRACT's psquadlet-upgrade/1; the older keys (action, running_digest, ...) stay."""
    data: dict[str, Any] = {
        "schema": UPGRADE_SCHEMA,
        "ok": report.ok,
        "changed": any(o.action in core.CHANGED_ACTIONS for o in report.outcomes),
        "dry_run": report.dry_run,
        "started": report.started,
        "finished": report.finished,
        "containers": [_outcome_json(o) for o in report.outcomes],
    }
    return json.dumps(data, indent=2)


def _chosen(config: Config, unit: str | None) -> tuple[tuple[Target, ...], tuple[Target, ...]]:
    """(every target, the ones --unit / NAME selects); an unknown name is a usage error."""
    targets = targets_from_config(config)
    chosen = select(targets, unit)
    if unit and not chosen:
        names = ", ".join(t.name for t in targets) or "none"
        raise UsageError(f"no container or unit {unit!r} in {config.source} (have: {names})")
    return targets, chosen


def upgrade(
    config_path: Path | None,
    unit: str | None,
    dry_run: bool,
    as_json: bool,
    endpoints: Endpoints,
    *,
    digest: str | None = None,
    to: str | None = None,
) -> int:
    """One pass now; with *digest* (or release tag *to*), move the one selected container to
    exactly that image."""
    require_watch_deps()
    config = load_config(config_path)
    targets, chosen = _chosen(config, unit)
    for option, value in (("--digest", digest), ("--to", to)):
        if value is None:
            continue
        if not unit or len(chosen) != 1:
            raise UsageError(f"{option} needs the NAME of one container")
        if dry_run and option == "--to":
            raise UsageError(f"{option} and --dry-run cannot be combined")
    if digest is not None and to is not None:
        raise UsageError("give --digest or --to, not both")
    if digest is not None:
        manual.check_digest(digest)
    log = Logger()
    deps = build_deps(config, endpoints, log)
    if dry_run and digest is not None:  # what `upgrade.yml --check` runs on a later wave
        report = manual.adopt(chosen[0], digest, deps, targets, dry_run=True)
    elif dry_run:  # a dry run emits nothing, so it sends and writes nothing either
        report = core.run_pass(chosen, deps, dry_run=True, known=targets)
    else:
        with reporting(config, _state_dir(config, endpoints), log) as sinks:
            deps.events = sinks.events
            if digest is not None:
                report = manual.adopt(chosen[0], digest, deps, targets)
            elif to is not None:
                report = manual.adopt_release(chosen[0], to, deps, targets)
            else:
                report = core.run_pass(chosen, deps, known=targets)
    if as_json:
        print(report_json(report))
    return 0 if report.ok else 1


def block(
    config_path: Path | None,
    name: str,
    digest: str,
    reason: str,
    state_dir: str | None,
    *,
    wait: float = manual.LOCK_WAIT,
) -> str:
    """Record an operator block; returns the line to print."""
    config = load_config(config_path)
    t = _chosen(config, name)[1][0]  # an unknown name raised
    store = FileStateStore(state_dir or config.watch.state_dir)
    manual.block(store, t.name, digest, reason, SystemClock().now(), wait=wait)
    return f"{t.name}: {digest} blocked; the watcher will not move to it"


def unblock(
    config_path: Path | None,
    name: str,
    digest: str,
    state_dir: str | None,
    wait: float = manual.LOCK_WAIT,
) -> str:
    config = load_config(config_path)
    t = _chosen(config, name)[1][0]  # an unknown name raised
    store = FileStateStore(state_dir or config.watch.state_dir)
    if not manual.unblock(store, t.name, digest, wait=wait):
        return f"{t.name}: {digest} was not blocked"
    return f"{t.name}: {digest} unblocked"


def pin(
    config_path: Path | None,
    name: str,
    reason: str,
    state_dir: str | None,
    wait: float = manual.LOCK_WAIT,
) -> str:
    config = load_config(config_path)
    t = _chosen(config, name)[1][0]  # an unknown name raised
    manual.pin(FileStateStore(state_dir or config.watch.state_dir), t.name, reason, wait=wait)
    return f"{t.name}: pinned; the watcher leaves it where it is until 'psquadlet unpin'"


def unpin(
    config_path: Path | None, name: str, state_dir: str | None, wait: float = manual.LOCK_WAIT
) -> str:
    config = load_config(config_path)
    t = _chosen(config, name)[1][0]  # an unknown name raised
    if not manual.unpin(FileStateStore(state_dir or config.watch.state_dir), t.name, wait=wait):
        return f"{t.name}: was not pinned"
    return f"{t.name}: unpinned"


class ForkedRunner:
    """Runs recovery and each pass in a forked child that builds the adapters itself.

    podman-py (with requests and urllib3) and pystemd roughly double the resident memory of
    the watcher; importing them only in a short-lived child keeps the idle daemon small.
    The child reports STATUS lines and its result over a pipe (NotifyAccess=main: only the
    daemon itself may talk to systemd).
    """

    def __init__(self, config: Config, endpoints: Endpoints, log: Logger) -> None:
        self.config = config
        self.endpoints = endpoints
        self.log = log

    def recover(self, known: Sequence[Target], status: Callable[[str], None]) -> None:
        def recover(deps: core.Deps) -> None:
            core.recover_now(known, deps)

        self._in_child(recover, status)

    def run_pass(
        self, due: Sequence[Target], known: Sequence[Target], status: Callable[[str], None]
    ) -> core.PassReport:
        result = self._in_child(
            lambda deps: core.run_pass(due, deps, known=known, mark_run=True), status
        )
        assert isinstance(result, core.PassReport)
        return result

    def _in_child(self, fn: Callable[[core.Deps], object], status: Callable[[str], None]) -> object:
        ctx = multiprocessing.get_context("fork")
        receiver, sender = ctx.Pipe(duplex=False)

        def child() -> None:
            receiver.close()
            try:
                deps = build_deps(self.config, self.endpoints, self.log)
                deps.status = lambda text: sender.send(("status", text))
                # The sinks live in this child only: the idle daemon never loads them.
                with reporting(self.config, _state_dir(self.config, self.endpoints), self.log) as s:
                    deps.events = s.events
                    result = fn(deps)
                sender.send(("done", result))
            except LockedError as e:
                sender.send(("locked", str(e)))
            except PsquadletError as e:
                sender.send(("error", str(e)))
            except Exception as e:  # anything else: report it, the daemon carries on
                sender.send(("error", f"{type(e).__name__}: {e}"))
            finally:
                sender.close()

        proc = ctx.Process(target=child, name="psquadlet-pass")
        proc.start()
        sender.close()
        outcome: tuple[str, object] | None = None
        try:
            while True:
                try:
                    kind, value = receiver.recv()
                except EOFError:
                    break
                if kind == "status":
                    status(str(value))
                else:
                    outcome = (kind, value)
        finally:
            receiver.close()
            proc.join()
        if outcome is None:
            raise WatchError(
                f"the pass process died (exit code {proc.exitcode}); "
                "an upgrade in flight is recovered at the next pass"
            )
        kind, value = outcome
        if kind == "locked":
            raise LockedError(str(value))
        if kind == "error":
            raise WatchError(str(value))
        return value


def watch(config_path: Path | None, endpoints: Endpoints) -> int:
    from psquadlet.watch.daemon import Daemon  # noqa: PLC0415
    from psquadlet.watch.notify import Notifier, watchdog_interval  # noqa: PLC0415

    require_watch_deps()
    config = load_config(config_path)
    log = Logger()
    stop = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    # the state folder is the one read at start (liveconfig.py); the rest follows the file
    endpoints = dataclasses.replace(endpoints, state_dir=_state_dir(config, endpoints))
    runner = ForkedRunner(config, endpoints, log)
    live = LiveConfig(config_path, config, log)

    def reload() -> tuple[Target, ...] | None:
        new = live.changed()
        if new is None:
            return None
        runner.config = new  # each pass's child builds its adapters and sinks from it
        return targets_from_config(new)

    Daemon(
        targets_from_config(config),
        runner,
        Notifier(),
        store=FileStateStore(_state_dir(config, endpoints)),
        log=log,
        clock=SystemClock(),
        machine_id=read_machine_id(),
        watchdog=watchdog_interval(),
        stop=stop,
        reload=reload,
    ).run()
    return 0
