"""What a pass reports and runs on: outcome actions, ``Outcome``/``PassReport``, ``Deps``
(the adapters behind the Protocols), and the small helpers every step shares (``emit`` an
event, ``save`` a container's state, ``short`` digests)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from psquadlet.watch.events import Event, EventKind, EventSink, NullSink
from psquadlet.watch.interfaces import (
    Clock,
    Images,
    Log,
    Overrides,
    Registry,
    StateStore,
    Units,
    WatchError,
)
from psquadlet.watch.state import (
    ContainerState,
    WatchState,
)
from psquadlet.watch.targets import Target

# Outcome actions
UP_TO_DATE = "up-to-date"
UPGRADED = "upgraded"
WOULD_UPGRADE = "would-upgrade"
AVAILABLE = "available"
HELD_BACK = "held-back"
KNOWN_BAD = "known-bad"
ROLLED_BACK = "rolled-back"
PINNED = "pinned"
OFF = "off"
NOT_RUNNING = "not-running"
ERROR = "error"
FAILED_ACTIONS = (ROLLED_BACK, ERROR)
RESULTS = {
    UP_TO_DATE: "up-to-date",
    UPGRADED: "upgraded",
    WOULD_UPGRADE: "update-available",
    AVAILABLE: "update-available",
    HELD_BACK: "skipped",
    KNOWN_BAD: "blocked",
    ROLLED_BACK: "rolled-back",
    PINNED: "skipped",
    OFF: "skipped",
    NOT_RUNNING: "skipped",
    ERROR: "failed",
}
CHANGED_ACTIONS = (UPGRADED, ROLLED_BACK)

CHECK_FAILING_AFTER = 3  # failed registry checks in a row before a check-failing event


@dataclass(frozen=True)
class Outcome:
    name: str
    unit: str
    image: str
    action: str
    message: str
    running_digest: str = ""
    remote_digest: str = ""
    previous_digest: str = ""  # upgraded: the digest it ran before

    @property
    def result(self) -> str:
        """The outcome as ``upgrade --json`` names it (JSON_CONTRACT: psquadlet-upgrade/1)."""
        return RESULTS.get(self.action, "failed")


@dataclass(frozen=True)
class PassReport:
    outcomes: tuple[Outcome, ...]
    started: float
    finished: float
    dry_run: bool = False

    @property
    def ok(self) -> bool:
        return not any(o.action in FAILED_ACTIONS for o in self.outcomes)


@dataclass
class Deps:
    """The adapters a pass runs on, plus its tunables."""

    registry: Registry
    images: Images
    units: Units
    clock: Clock
    store: StateStore
    log: Log
    parallel: int = 4
    job_timeout: float = 900.0
    health_interval: float = 5.0
    status: Callable[[str], None] | None = None
    events: EventSink = field(default_factory=NullSink)
    overrides: Overrides | None = None  # release tracking: None = retag the configured tag
    behind_check: bool = False  # compare testpoint tags with upstream's other registry daily
    registry_budget: float = 300.0  # registry time one pass may spend (budget.PassRegistry)

    def set_status(self, text: str) -> None:
        if self.status is not None:
            self.status(text)


def emit(
    deps: Deps, t: Target, kind: EventKind, *, old: str = "", new: str = "", detail: str = ""
) -> None:
    """One event about *t*; a sink that raises never breaks a pass."""
    event = Event(
        kind,
        t.name,
        t.unit,
        str(t.image),
        deps.clock.now(),
        old_digest=old,
        new_digest=new,
        detail=detail,
    )
    try:
        deps.events.emit(event)
    except Exception as e:  # a broken sink is logged, the pass goes on
        deps.log.warning(f"{t.name}: event {kind.value} not delivered: {e}")


def short(digest: str) -> str:
    return digest.split(":", 1)[-1][:12] if digest else "-"


def save(deps: Deps, state: WatchState, cs: ContainerState) -> WatchState:
    state = state.put(cs)
    deps.store.save(state)
    return state


def keep_going(deps: Deps, state: WatchState, cs: ContainerState) -> WatchState:
    """``save`` once the unit may run the new image: a state that cannot be written (a disk
    the pull filled) must not stop a switch half-way, with the unit on an image the health
    gate never passed. The error is logged and the switch goes on; the phase already on disk
    (restarting or later) has recovery gate the new image or roll back."""
    state = state.put(cs)
    try:
        deps.store.save(state)
    except WatchError as e:
        deps.log.error(f"{cs.name}: {e}; going on without it")
    return state


def report_outcome(deps: Deps, o: Outcome) -> None:
    line = f"{o.name}: {o.action}: {o.message}"
    if o.action in FAILED_ACTIONS:
        deps.log.error(line)
    elif o.action in (UPGRADED, AVAILABLE, WOULD_UPGRADE, HELD_BACK, KNOWN_BAD, NOT_RUNNING):
        deps.log.warning(line) if o.action == NOT_RUNNING else deps.log.info(line)
    else:
        deps.log.info(line)
