"""The health supervisor's decisions: degrade, never die (issue 17 item 2).

Plain logic, no I/O: ``decide(observation, state, budget, now)`` says what one round of
``psquadlet heal`` does for one container (``watch/healrun.py`` observes, acts and reports).

- Unhealthy, and Podman takes no action itself: restart, at most ``restart_budget`` times per
  ``budget_window`` (an ``unhealthy`` event at the first restart of an episode).
- Budget spent: leave it running, unhealthy; one ``gave-up`` event (with the check's output;
  the runner adds the doctor's likely causes), then one restart after ``retry_after``,
  doubling up to ``retry_max``, while the check keeps failing. Exactly one ``gave-up`` per
  quiet period (the notifications' ``quiet_period``, default 1 day): a reminder once a period
  has passed since the last one, while it still fails; none for the retries themselves.
- Unit ``failed`` (systemd gave up: its start limit after crashes, or a failed start): one
  ``gave-up`` saying so, and ``reset-failed`` + start on the same backoff.
- Healthy after an episode: a ``healthy`` event; the backoff starts afresh next time (the
  restarts of the window still count).

Times recorded in the future (the clock was set back) count as now, as the schedule does.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass

from psquadlet.model import HealthSpec
from psquadlet.watch.events import EventKind

NONE = ""
RESTART = "restart"  # reset-failed, then restart the unit
START = "start"  # reset-failed, then start the (failed) unit

UNHEALTHY = "unhealthy"
GAVE_UP = "gave-up"
FAILED = "failed"
EPISODES = ("", UNHEALTHY, GAVE_UP, FAILED)

OUTPUT_MAX = 2000  # characters of the check's output carried in an event


DAY = 86400


@dataclass(frozen=True)
class Budget:
    restarts: int
    window: int
    retry_after: int
    retry_max: int
    quiet: int = DAY  # the notifications' quiet period: one gave-up per period

    @classmethod
    def of(cls, health: HealthSpec, quiet: int = DAY) -> Budget:
        return cls(
            health.restart_budget,
            health.budget_window,
            health.retry_after,
            health.retry_max,
            quiet,
        )


@dataclass(frozen=True)
class Observation:
    """One look at a container's unit and its health check."""

    unit_state: str  # systemd ActiveState: active, activating, failed, inactive, ...
    health: str = ""  # Podman's status: healthy, unhealthy, starting, "" (none / not running)
    output: str = ""  # the check's last output (Podman's health log)
    podman_acts: bool = False  # Podman's own on-failure action (kill/restart/stop) is set
    unit_result: str = ""  # systemd Result (start-limit-hit, exit-code, ...)


@dataclass(frozen=True)
class HealState:
    """What the supervisor remembers of one container (``STATE_DIR/health.json``)."""

    restarts: tuple[float, ...] = ()  # times of its restarts still inside the window
    episode: str = ""  # "" | unhealthy | gave-up | failed
    since: float | None = None  # when the episode's last gave-up was reported
    retry_at: float | None = None  # the next backoff retry
    backoff: int = 0  # the wait that led to retry_at
    output: str = ""  # the check's last failing output seen


@dataclass(frozen=True)
class Step:
    action: str  # NONE | RESTART | START
    event: EventKind | None
    detail: str
    state: HealState
    diagnose: bool = False  # add the doctor's likely causes to the event


def _clamp(value: float | None, now: float) -> float | None:
    return None if value is None else min(value, now)


def when(t: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(t))


def _output(obs: Observation) -> str:
    text = obs.output.strip()
    return text[-OUTPUT_MAX:] if text else "(the check printed nothing)"


def decide(obs: Observation, st: HealState, budget: Budget, now: float) -> Step:
    """One round for one container."""
    restarts = tuple(min(t, now) for t in st.restarts if now - min(t, now) < budget.window)
    # retry_at was set at retry_at - backoff: set in the future, it counts as set now.
    retry_at = st.retry_at
    if retry_at is not None and retry_at - st.backoff > now:
        retry_at = now + st.backoff
    st = dataclasses.replace(st, restarts=restarts, since=_clamp(st.since, now), retry_at=retry_at)
    nothing = Step(NONE, None, "", st)
    if obs.unit_state == "failed":
        if st.episode != FAILED:
            retry = now + budget.retry_after
            result = f" ({obs.unit_result})" if obs.unit_result else ""
            detail = (
                f"systemd gave up on the unit{result}: it is failed and the container is "
                f"not running. psquadlet starts it again at {when(retry)} (then on a backoff "
                f"up to {budget.retry_max}s); 'systemctl reset-failed' and 'systemctl start' "
                "do it now."
            )
            new = HealState(restarts, FAILED, now, retry, budget.retry_after)
            return Step(NONE, EventKind.GAVE_UP, detail, new, diagnose=True)
        if _reminder_due(st, budget, now):
            detail = f"systemd's unit is still failed (last reported {when(st.since or now)})."
            new = dataclasses.replace(st, since=now)
            return Step(NONE, EventKind.GAVE_UP, detail, new, diagnose=True)
        return _retry(st, budget, now, START) or nothing
    if obs.unit_state != "active":
        return nothing  # starting, stopping, or stopped on purpose: systemd's business
    if obs.health == "healthy":
        if st.episode:
            detail = "The container's health check passes again."
            return Step(NONE, EventKind.HEALTHY, detail, HealState(restarts))
        return nothing
    if st.episode == FAILED:  # it runs again (started by someone): a fresh look next round
        st = HealState(restarts)
        nothing = Step(NONE, None, "", st)
    if obs.health != "unhealthy":
        return nothing  # no verdict yet
    output = _output(obs)
    if obs.podman_acts:  # Podman's HealthOnFailure= and systemd's Restart= act; the stop
        return Step(NONE, None, "", dataclasses.replace(st, output=output))  # hook tells
    if st.episode == GAVE_UP:
        st = dataclasses.replace(st, output=output)
        if _reminder_due(st, budget, now):
            detail = (
                f"Still unhealthy since {when(st.since or now)} (the last report); psquadlet keeps "
                f"it running and retries at {when(st.retry_at or now)}.\n\n"
                f"The check's last output:\n{output}"
            )
            new = dataclasses.replace(st, since=now)
            return Step(NONE, EventKind.GAVE_UP, detail, new, diagnose=True)
        return _retry(st, budget, now, RESTART) or Step(NONE, None, "", st)
    if len(restarts) < budget.restarts:
        count = len(restarts) + 1
        detail = (
            f"The health check failed:\n{output}\n\npsquadlet restarts the container "
            f"(restart {count} of {budget.restarts} per {budget.window}s)."
        )
        event = EventKind.UNHEALTHY if st.episode != UNHEALTHY else None
        new = HealState((*restarts, now), UNHEALTHY, output=output)
        return Step(RESTART, event, detail, new)
    retry = now + budget.retry_after
    detail = (
        f"The health check keeps failing after {len(restarts)} restart(s) within "
        f"{budget.window}s. The container keeps running, unhealthy (a partly working "
        f"testpoint is worth more than none); psquadlet restarts it once more at {when(retry)}, "
        f"then on a backoff up to {budget.retry_max}s, and reports when it is healthy again.\n\n"
        f"The check's last output:\n{output}"
    )
    new = HealState(restarts, GAVE_UP, now, retry, budget.retry_after, output)
    return Step(NONE, EventKind.GAVE_UP, detail, new, diagnose=True)


def _reminder_due(st: HealState, budget: Budget, now: float) -> bool:
    """A quiet period (at least ``retry_after``: a quiet period of 0 must not mean a message
    every round) has passed since the last ``gave-up`` of this episode."""
    return st.since is not None and now - st.since >= max(budget.quiet, budget.retry_after, 1)


def _retry(st: HealState, budget: Budget, now: float, action: str) -> Step | None:
    """The backoff retry once it is due (the next wait doubles, up to ``retry_max``)."""
    if st.retry_at is not None and now < st.retry_at:
        return None
    backoff = min(max(st.backoff, 1) * 2, budget.retry_max)
    new = dataclasses.replace(st, retry_at=now + backoff, backoff=backoff)
    detail = f"backoff retry; the next one in {backoff}s if the check still fails"
    return Step(action, None, detail, new)


# --------------------------------------------------------------------------- the state file

STATE_VERSION = 1


def to_json(states: dict[str, HealState]) -> dict[str, object]:
    return {
        "version": STATE_VERSION,
        "containers": {name: dataclasses.asdict(st) for name, st in sorted(states.items())},
    }


def from_json(raw: object) -> dict[str, HealState]:
    """The states of a parsed ``health.json``; ValueError for anything not of this shape."""
    if not isinstance(raw, dict) or not isinstance(raw.get("containers"), dict):
        raise ValueError("not a psquadlet health state")
    version = raw.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version > STATE_VERSION:
        raise ValueError(f"unknown version {version!r}")
    out: dict[str, HealState] = {}
    for name, entry in raw["containers"].items():
        if not isinstance(entry, dict):
            raise ValueError(f"{name}: not an object")
        out[str(name)] = _entry(str(name), entry)
    return out


def _number(value: object, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{where}: not a number")
    if not -1e11 < value < 1e11:  # NaN, or beyond year 5000: not a time psquadlet wrote
        raise ValueError(f"{where}: out of range")
    return float(value)


def _entry(name: str, entry: dict[str, object]) -> HealState:
    restarts = entry.get("restarts", [])
    if not isinstance(restarts, list) or len(restarts) > 1000:
        raise ValueError(f"{name}.restarts: not a list")
    episode = entry.get("episode", "")
    if episode not in EPISODES:
        raise ValueError(f"{name}.episode: unknown {episode!r}")
    output = entry.get("output", "")
    if not isinstance(output, str):
        raise ValueError(f"{name}.output: not a string")
    since, retry_at = (
        None if entry.get(k) is None else _number(entry.get(k), f"{name}.{k}")
        for k in ("since", "retry_at")
    )
    return HealState(
        tuple(_number(t, f"{name}.restarts") for t in restarts),
        str(episode),
        since,
        retry_at,
        int(_number(entry.get("backoff", 0), f"{name}.backoff")),
        output[-OUTPUT_MAX:],
    )
