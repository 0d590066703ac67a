"""``psquadlet heal``: one round of the health supervisor, run by ``psquadlet-health.timer``.

Observes each supervised container (``HealthSpec.supervised``: a check and a restart budget)
through ``systemctl show`` and ``podman container inspect`` (subprocesses: the same for root
and ``--user``, for Podman 3, whose health lives under ``.State.Healthcheck``, and for 4+,
``.State.Health``), lets ``heal.decide`` choose, acts with ``systemctl reset-failed`` +
``restart``/``start``, and reports through the configured sinks (``watch/sinks.py``).

It skips a round while a watcher pass holds ``STATE_DIR/lock`` (``pass_running`` tests it and
lets go at once): it never restarts a unit in the middle of an upgrade, and a pass, ``block`` or
``pin`` never finds that lock taken by it. Its rounds are serialised by ``STATE_DIR/health.lock``,
its memory is ``STATE_DIR/health.json`` (versioned; an unreadable one is moved aside, as the
state file is).
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import fcntl
import json
import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from psquadlet import host
from psquadlet.fsutil import atomic_write
from psquadlet.model import Config, ContainerSpec
from psquadlet.watch import heal
from psquadlet.watch.events import Event
from psquadlet.watch.interfaces import LockedError, WatchError
from psquadlet.watch.sinks import reporting
from psquadlet.watch.state import LOCK_FILE as PASS_LOCK_FILE

STATE_FILE = "health.json"
LOCK_FILE = "health.lock"
MAX_STATE_BYTES = 1 << 20
INSPECT_TIMEOUT = 30.0
JOB_TIMEOUT = 300.0  # a restart job (stop + start of an image already present)
PODMAN_ACTIONS = ("kill", "restart", "stop")


class _Log:
    """Lines for the journal (the timer's service): stdout, one per event or action."""

    def __init__(self, write: Callable[[str], None]) -> None:
        self.write = write

    def info(self, msg: str) -> None:
        self.write(msg)

    def warning(self, msg: str) -> None:
        self.write(f"warning: {msg}")

    def error(self, msg: str) -> None:
        self.write(f"error: {msg}")

    def progress(self, msg: str) -> None:
        self.write(msg)


@dataclass(frozen=True)
class HealthLog:
    status: str = ""  # healthy | unhealthy | starting | "" (no check, or not running)
    output: str = ""
    podman_acts: bool = False
    problem: str = ""  # why it could not be read


def health_log(run: host.Runner, container: str, podman: Sequence[str] = ("podman",)) -> HealthLog:
    """Podman's view of the container's health check (status, last output, its own action)."""
    code, out = run([*podman, "container", "inspect", container])
    if code != 0:
        first = out.strip().splitlines()[0][:200] if out.strip() else f"exit {code}"
        return HealthLog(problem=f"podman container inspect {container}: {first}")
    try:
        data = json.loads(out)
        entry = data[0] if isinstance(data, list) else data
        state = entry.get("State") or {}
        config = entry.get("Config") or {}
    except (ValueError, IndexError, KeyError, AttributeError, TypeError):
        return HealthLog(problem=f"podman container inspect {container}: not JSON")
    acts = str(config.get("HealthcheckOnFailureAction", "")).lower() in PODMAN_ACTIONS
    if not state.get("Running"):
        return HealthLog(podman_acts=acts)
    health = state.get("Health") or state.get("Healthcheck") or {}  # Podman 3: Healthcheck
    if not isinstance(health, dict):
        return HealthLog(podman_acts=acts)
    logs = health.get("Log") or []
    last = logs[-1] if isinstance(logs, list) and logs and isinstance(logs[-1], dict) else {}
    return HealthLog(str(health.get("Status", "")), str(last.get("Output", "")), acts)


@dataclass
class Round:
    """What one round did, for the command's output."""

    lines: list[str] = field(default_factory=list)
    skipped: str = ""


def _systemctl(user: bool) -> list[str]:
    return ["systemctl", *(["--user"] if user else [])]


@contextlib.contextmanager
def _own_lock(state_dir: str) -> Iterator[None]:
    """``STATE_DIR/health.lock``: one round at a time (the timer never overlaps; a hand-run
    ``psquadlet heal`` might). Not the watcher's lock, which heal only tests: an upgrade,
    ``block`` or ``pin`` never finds it taken by a health round."""
    path = os.path.join(state_dir, LOCK_FILE)
    try:
        os.makedirs(state_dir, mode=0o755, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
    except OSError as e:
        raise WatchError(f"cannot open lock file {path}: {e.strerror or e}") from e
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            if e.errno not in (errno.EAGAIN, errno.EACCES):
                raise
            raise LockedError(f"another health round holds {path}") from e
        yield
    finally:
        os.close(fd)


def pass_running(state_dir: str) -> str:
    """Why a watcher pass (or block, pin...) holds ``STATE_DIR/lock`` now, "" when none does.
    A test of the lock, released at once: heal never restarts a unit in the middle of an
    upgrade, and never keeps a pass from starting."""
    path = os.path.join(state_dir, PASS_LOCK_FILE)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return ""  # no lock file: no pass ever ran here
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as e:
        if e.errno not in (errno.EAGAIN, errno.EACCES):
            return ""
        holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
        return f"a psquadlet pass holds {path} (pid {holder})"
    finally:
        os.close(fd)  # closing releases the test lock at once
    return ""


def _observe(spec: ContainerSpec, run: host.Runner, user: bool) -> tuple[heal.Observation, str]:
    shown, problem = host.systemctl_show(run, spec.unit_name, ("ActiveState", "Result"), user)
    if problem:
        return heal.Observation("unknown"), problem
    active = shown.get("ActiveState", "")
    if active != "active":
        return heal.Observation(active, unit_result=shown.get("Result", "")), ""
    log = health_log(run, spec.effective_container_name)
    return heal.Observation(active, log.status, log.output, log.podman_acts), log.problem


def _act(action: str, spec: ContainerSpec, job: host.Runner, user: bool) -> str:
    """reset-failed (a deliberate restart neither spends nor is refused by the start limit),
    then restart or start; "" or why it failed."""
    job([*_systemctl(user), "reset-failed", spec.unit_name])
    code, out = job([*_systemctl(user), action, spec.unit_name])
    return "" if code == 0 else (out.strip()[:300] or f"exit {code}")


def _diagnosis(config: Config) -> str:
    """The doctor's checks most likely to explain a failing check, one line each."""
    from psquadlet.doctor.checks import HEAL_CHECKS  # noqa: PLC0415 - only when giving up
    from psquadlet.doctor.context import context_for  # noqa: PLC0415

    ctx = context_for(config)
    lines = []
    for check in HEAL_CHECKS:
        try:
            result = check(ctx)
        except Exception as exc:
            lines.append(f"- {check.__name__}: could not run ({exc})")
            continue
        advice = f" ({result.advice})" if result.advice and result.status != "pass" else ""
        lines.append(f"- {result.id}: {result.status}: {result.summary}{advice}")
    return "What psquadlet doctor says about the likely causes:\n" + "\n".join(lines)


def load_states(path: Path, log: _Log) -> dict[str, heal.HealState]:
    try:
        with open(path, "rb") as f:
            raw = f.read(MAX_STATE_BYTES + 1)
    except FileNotFoundError:
        return {}
    try:
        if len(raw) > MAX_STATE_BYTES:
            raise ValueError("too large")
        return heal.from_json(json.loads(raw.decode("utf-8")))
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        aside = f"{path}.corrupt-{int(time.time())}"
        try:
            os.replace(path, aside)
        except OSError:
            aside = "(could not be moved)"
        log.warning(f"{path} was unreadable ({exc}); moved to {aside}, starting afresh")
        return {}


def save_states(path: Path, states: dict[str, heal.HealState]) -> None:
    atomic_write(path, json.dumps(heal.to_json(states), indent=1) + "\n", 0o644)


def run_round(
    config: Config,
    *,
    run: host.Runner = host.run_command,
    job: host.Runner | None = None,
    now: Callable[[], float] = time.time,
    write: Callable[[str], None] = print,
    user: bool | None = None,
) -> Round:
    """One round over every supervised container."""
    if user is None:
        user = os.geteuid() != 0
    if job is None:
        job = _job_runner
    log = _Log(write)
    done = Round()
    specs = [s for s in config.containers if s.health is not None and s.health.supervised]
    if not specs:
        done.skipped = "no container has a health check with a restart budget"
        return done
    state_dir = config.watch.state_dir
    try:
        with _own_lock(state_dir):
            holder = pass_running(state_dir)
            if holder:
                done.skipped = f"skipped this round: {holder}"
                return done
            path = Path(state_dir) / STATE_FILE
            states = load_states(path, log)
            with reporting(config, state_dir, log) as sinks:
                ctx = _Round(config, run, job, now, user, sinks.events.emit)
                for spec in specs:
                    line = _one(ctx, spec, states)
                    if line:
                        log.info(line)
                        done.lines.append(line)
            save_states(path, {s.name: states.get(s.name, heal.HealState()) for s in specs})
    except LockedError as exc:
        done.skipped = f"skipped this round: {exc}"
    return done


@dataclass(frozen=True)
class _Round:
    """What one round runs on."""

    config: Config
    run: host.Runner
    job: host.Runner
    now: Callable[[], float]
    user: bool
    emit: Callable[[Event], None]


def _one(r: _Round, spec: ContainerSpec, states: dict[str, heal.HealState]) -> str:
    assert spec.health is not None
    obs, problem = _observe(spec, r.run, r.user)
    if problem:
        return f"{spec.name}: cannot observe: {problem}"
    before = states.get(spec.name, heal.HealState())
    quiet = r.config.notifications.quiet_period if r.config.notifications else heal.DAY
    step = heal.decide(obs, before, heal.Budget.of(spec.health, quiet), r.now())
    states[spec.name] = step.state
    said = []
    if step.event is not None:
        detail = step.detail
        if step.diagnose:
            detail = f"{detail}\n\n{_diagnosis(r.config)}"
        from psquadlet.notifications.commands import running_digest  # noqa: PLC0415

        digest = running_digest(r.config.watch.state_dir, spec.name)
        event = Event(step.event, spec.name, spec.unit_name, spec.image, r.now(), detail=detail)
        r.emit(dataclasses.replace(event, new_digest=digest))
        said.append(f"{step.event.value}: {step.detail.splitlines()[0]}")
    if step.action:
        failed = _act(step.action, spec, r.job, r.user)
        said.append(f"{step.action} {spec.unit_name}" + (f" failed: {failed}" if failed else ""))
        if step.event is None and step.detail:
            said.append(step.detail.splitlines()[0])
    return f"{spec.name}: " + "; ".join(said) if said else ""


def heal_command(config_path: Path | None, state_dir: str | None = None) -> str:
    """``psquadlet heal``: load the configuration, run one round, say what it did."""
    from psquadlet.config import load_config  # noqa: PLC0415

    config = load_config(config_path)
    if state_dir:
        config = dataclasses.replace(
            config, watch=dataclasses.replace(config.watch, state_dir=state_dir)
        )
    done = run_round(config, write=lambda _line: None)
    return "\n".join(done.lines) or done.skipped


def _job_runner(argv: Sequence[str]) -> tuple[int, str]:
    return host.run_command(argv, timeout=JOB_TIMEOUT)
