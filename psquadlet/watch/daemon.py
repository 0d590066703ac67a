"""``psquadlet watch``: sleep until a container's slot, run a pass, tell systemd about it.

The daemon wakes only when a check is due and, when systemd asks for a watchdog
(``WatchdogSec=``), at half the watchdog interval: an idle testpoint host should not pay
for a watcher. During a pass (which may pull and wait for a health gate for minutes) a
helper thread keeps pinging the watchdog, but only up to a limit, so a pass that hangs for
good still gets the watcher restarted by systemd.

Crash recovery runs before READY=1 (systemd should only call the watcher started once the
testpoint is back on a known image), and it may restart the unit and wait for the health
gate for minutes: far longer than ``TimeoutStartSec=`` (90 s by default). So while it runs,
a helper thread keeps asking systemd for more time with ``EXTEND_TIMEOUT_USEC=`` (and feeds
the watchdog, if any), up to the same limit as a pass.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Callable, Protocol

from psquadlet.watch import core
from psquadlet.watch.interfaces import Clock, LockedError, Log, StateStore, WatchError
from psquadlet.watch.notify import Notifier
from psquadlet.watch.schedule import next_run
from psquadlet.watch.targets import Target

LOCKED_RETRY = 60.0
STATE_RETRY = 3600.0  # the state file cannot be used (e.g. a newer version): retry hourly
MAX_PASS = 6 * 3600.0  # a pass longer than this is considered hung: stop feeding the watchdog
STARTUP_PING = 20.0  # while recovering before READY=1: ask for more start time this often
STARTUP_GRACE = 3  # ... each time for this many intervals, so one late ping does not kill us
CONFIG_POLL = 300.0  # with a reload: look at the configuration at least this often while idle


def _when(t: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S %Z", time.localtime(t))


def summary(report: core.PassReport) -> str:
    counts: dict[str, int] = {}
    for o in report.outcomes:
        counts[o.action] = counts.get(o.action, 0) + 1
    return ", ".join(f"{n} {a}" for a, n in sorted(counts.items())) or "nothing to do"


@contextmanager
def _repeating(fn: Callable[[], object], interval: float, name: str) -> Iterator[None]:
    """Call *fn* every *interval* seconds while the block runs, for at most MAX_PASS."""
    done = threading.Event()
    limit = time.monotonic() + MAX_PASS

    def loop() -> None:
        while not done.wait(interval) and time.monotonic() < limit:
            fn()

    thread = threading.Thread(target=loop, name=name, daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()


@contextmanager
def feeding_watchdog(notifier: Notifier, interval: float | None) -> Iterator[None]:
    if not interval:
        yield
        return
    with _repeating(notifier.watchdog, interval, "watchdog"):
        yield


@contextmanager
def extending_start_timeout(
    notifier: Notifier, watchdog: float | None, every: float = STARTUP_PING
) -> Iterator[None]:
    """Keep systemd from killing a watcher that is still starting (recovering) for a reason.

    Asks for ``STARTUP_GRACE`` intervals more right away and then every interval (the
    watchdog's, when it is shorter), feeding the watchdog too, until the block ends or
    ``MAX_PASS`` has passed: a recovery that hangs for good still hits the start time-out.
    """
    interval = min(every, watchdog) if watchdog else every

    def ping() -> None:
        notifier.extend_timeout(interval * STARTUP_GRACE)
        if watchdog:
            notifier.watchdog()

    ping()
    with _repeating(ping, interval, "start-timeout"):
        yield


class PassRunner(Protocol):
    """Runs recovery and passes; the daemon only schedules them.

    ``app.ForkedRunner`` runs each in a child process so that the idle daemon never holds
    podman-py, requests and pystemd in memory; ``InProcessRunner`` is the plain version.
    """

    def recover(self, known: Sequence[Target], status: Callable[[str], None]) -> None: ...

    def run_pass(
        self, due: Sequence[Target], known: Sequence[Target], status: Callable[[str], None]
    ) -> core.PassReport: ...


class InProcessRunner:
    def __init__(self, deps: core.Deps) -> None:
        self.deps = deps

    def recover(self, known: Sequence[Target], status: Callable[[str], None]) -> None:
        self.deps.status = status
        core.recover_now(known, self.deps)

    def run_pass(
        self, due: Sequence[Target], known: Sequence[Target], status: Callable[[str], None]
    ) -> core.PassReport:
        self.deps.status = status
        return core.run_pass(due, self.deps, known=known, mark_run=True)


class Daemon:
    def __init__(
        self,
        targets: Sequence[Target],
        runner: PassRunner,
        notifier: Notifier,
        *,
        store: StateStore,
        log: Log,
        clock: Clock,
        machine_id: str,
        watchdog: float | None,
        stop: threading.Event | None = None,
        on_pass: Callable[[core.PassReport], None] | None = None,
        startup_ping: float = STARTUP_PING,
        reload: Callable[[], Sequence[Target] | None] | None = None,
    ) -> None:
        self._set_targets(targets)
        self.reload = reload
        self.runner = runner
        self.store = store
        self.log = log
        self.clock = clock
        self.notifier = notifier
        self.machine_id = machine_id
        self.watchdog = watchdog
        self.stop = stop or threading.Event()
        self.on_pass = on_pass
        self.startup_ping = startup_ping
        self.last_summary = "no pass yet"

    def _set_targets(self, targets: Sequence[Target]) -> None:
        self.targets = tuple(targets)
        self.scheduled = tuple(t for t in targets if t.policy != "off" and not t.pinned)

    def _reloaded(self) -> bool:
        """Take a changed configuration's targets (``reload``); True when they changed."""
        if self.reload is None:
            return False
        targets = self.reload()
        if targets is None:
            return False
        self._set_targets(targets)
        names = ", ".join(t.name for t in self.scheduled) or "nothing"
        self.log.info(f"psquadlet watch: now watching {names}")
        return True

    @classmethod
    def in_process(
        cls, targets: Sequence[Target], deps: core.Deps, notifier: Notifier, **kw: Any
    ) -> Daemon:
        return cls(
            targets,
            InProcessRunner(deps),
            notifier,
            store=deps.store,
            log=deps.log,
            clock=deps.clock,
            **kw,
        )

    def _status_during_pass(self, text: str) -> None:
        self.notifier.status(text)

    def _wait(self, seconds: float) -> bool:
        """Sleep up to *seconds*, feeding the watchdog; True when asked to stop.

        With a ``reload``, each wake-up looks at the configuration, and a change ends the
        wait early (False) so that the caller schedules from the new one."""
        deadline = time.monotonic() + max(seconds, 0.0)
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return self.stop.is_set()
            step = min(left, self.watchdog) if self.watchdog else left
            if self.reload is not None:
                step = min(step, CONFIG_POLL)
            if self.stop.wait(step):
                return True
            if self.watchdog:
                self.notifier.watchdog()
            if self._reloaded():
                return False

    def schedule(self) -> dict[str, float]:
        state = self.store.load()
        now = self.clock.now()
        return {
            t.name: next_run(t.schedule, state.get(t.name).last_run, now, self.machine_id)
            for t in self.scheduled
        }

    def _baseline(self) -> None:
        """Record *now* as the last run of never-run containers, so missed slots show later."""

        with self.store.lock():
            state = self.store.load()
            now = self.clock.now()
            changed = False
            for t in self.scheduled:
                cs = state.get(t.name)
                if cs.last_run is None:
                    state = state.put(dataclasses.replace(cs, last_run=now))
                    changed = True
            if changed:
                self.store.save(state)

    def run(self) -> None:
        log = self.log
        self.notifier.status("starting: recovering interrupted upgrades, if any")
        try:
            with extending_start_timeout(self.notifier, self.watchdog, self.startup_ping):
                self.runner.recover(self.targets, self._status_during_pass)
                self._baseline()
        except LockedError as e:
            log.warning(f"{e}; recovery postponed to the first pass")
        except WatchError as e:  # e.g. a state file of a newer psquadlet: say so, keep going
            log.error(f"recovery at start failed: {e}")
        names = ", ".join(t.name for t in self.scheduled) or "nothing"
        self.notifier.ready(f"watching {names}")
        log.info(f"psquadlet watch: watching {names}")
        while not self.stop.is_set():
            self._reloaded()  # a pass runs on the configuration as it is now
            try:
                due_at = self.schedule()
            except WatchError as e:
                log.error(f"{e}; retrying in {STATE_RETRY:g}s")
                self.notifier.status(f"waiting: {e}")
                if self._wait(STATE_RETRY):
                    break
                continue
            now = self.clock.now()
            due = [t for t in self.scheduled if due_at[t.name] <= now]
            if due:
                if self._run_pass(due):
                    continue
                if self._wait(LOCKED_RETRY):
                    break
                continue
            if not due_at:
                self.notifier.status(
                    f"idle: nothing to watch ({len(self.targets)} "
                    "container(s), all pinned or policy off)"
                )
                if self._wait(float("inf") if not self.watchdog else 365 * 86400.0):
                    break
                continue
            first = min(due_at.values())
            who = ", ".join(sorted(n for n, w in due_at.items() if w == first))
            self.notifier.status(
                f"idle; next check {_when(first)} ({who}); last pass: {self.last_summary}"
            )
            if self._wait(first - now):
                break
        self.notifier.stopping()
        log.info("psquadlet watch: stopping")

    def _run_pass(self, due: Sequence[Target]) -> bool:
        names = ", ".join(t.name for t in due)
        self.notifier.status(f"checking {names}")
        try:
            with feeding_watchdog(self.notifier, self.watchdog):
                report = self.runner.run_pass(due, self.targets, self._status_during_pass)
        except LockedError as e:
            self.log.warning(f"{e}; retrying in {LOCKED_RETRY:g}s")
            return False
        except WatchError as e:
            # e.g. the state directory is unwritable: say so, try again at the next slot
            self.log.error(f"pass failed: {e}")
            self._mark_failed(due)
            return True
        self.last_summary = f"{_when(report.started)}: {summary(report)}"
        if self.on_pass is not None:
            self.on_pass(report)
        return True

    def _mark_failed(self, due: Sequence[Target]) -> None:
        """Count a failed pass as run, so a persistent failure does not spin."""

        try:
            with self.store.lock():
                state = self.store.load()
                now = self.clock.now()
                for t in due:
                    state = state.put(dataclasses.replace(state.get(t.name), last_run=now))
                self.store.save(state)
        except (WatchError, OSError) as e:
            self.log.error(f"cannot record the failed pass: {e}; waiting an hour")
            self._wait(3600)
