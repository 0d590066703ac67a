"""psquadlet heal's round (psquadlet.watch.healrun) over fake systemctl/podman runners, the
health events' digests and output (issue 17 item 2's three message fixes)."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from psquadlet.config import parse_config
from psquadlet.model import Config
from psquadlet.notifications import hooks
from psquadlet.notifications.commands import running_digest
from psquadlet.notifications.message import render
from psquadlet.watch import healrun
from psquadlet.watch.events import Event, EventKind
from psquadlet.watch.state import PHASE_RESTARTING, ContainerState, FileStateStore, WatchState

OLD, NEW = "sha256:" + "a" * 64, "sha256:" + "b" * 64


def _config(tmp_path: Path, health: str = "restart_budget = 2\n") -> Config:
    text = (
        f'[watch]\nstate_dir = "{tmp_path}/state"\n'
        f'[metrics]\ntextfile_dir = "{tmp_path}/prom"\n'
        '[containers.pt]\nimage = "docker.io/perfsonar/testpoint:systemd"\n'
        f'[containers.pt.health]\ncmd = "true"\n{health}'
    )
    (tmp_path / "prom").mkdir(exist_ok=True)
    return parse_config(text, str(tmp_path / "p.toml"))


def inspect_json(status: str, output: str, field: str = "Health", action: str = "") -> str:
    config = {"HealthcheckOnFailureAction": action} if action else {}
    state = {"Running": True, field: {"Status": status, "Log": [{"Output": output}]}}
    return json.dumps([{"State": state, "Config": config}])


class Host:
    """systemctl show / podman container inspect answers, and the jobs run."""

    def __init__(self) -> None:
        self.active = "active"
        self.inspect = inspect_json("unhealthy", "pscheduler is not answering")
        self.jobs: list[list[str]] = []

    def run(self, argv: Sequence[str]) -> tuple[int, str]:
        if argv[0] == "systemctl":
            return 0, f"ActiveState={self.active}\nResult=success\n"
        assert list(argv[:3]) == ["podman", "container", "inspect"]
        return 0, self.inspect

    def job(self, argv: Sequence[str]) -> tuple[int, str]:
        self.jobs.append(list(argv))
        return 0, ""


def rounds(config: Config, host: Host, times: Sequence[float]) -> list[str]:
    lines: list[str] = []
    for t in times:
        done = healrun.run_round(
            config, run=host.run, job=host.job, now=lambda t=t: t, write=lines.append, user=False
        )
        assert not done.skipped
    return lines


def facts(tmp_path: Path) -> dict[str, object]:
    data = json.loads((tmp_path / "state/metrics.json").read_text())
    return dict(data["containers"]["pt"])


def test_budget_then_gave_up_then_healthy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(healrun, "_diagnosis", lambda config: "doctor: (stand-in)")
    emitted: list[Event] = []
    real = healrun.reporting

    @contextlib.contextmanager
    def recording(*args: Any) -> Iterator[Any]:
        with real(*args) as sinks:
            inner = sinks.events

            class Both:
                def emit(self, event: Event) -> None:
                    emitted.append(event)
                    inner.emit(event)

            sinks.events = Both()
            yield sinks

    monkeypatch.setattr(healrun, "reporting", recording)
    config = _config(tmp_path)
    host = Host()
    lines = rounds(config, host, [1000.0, 1060.0, 1120.0, 1180.0, 1240.0])
    restarts = [j for j in host.jobs if j[1] == "restart"]
    assert len(restarts) == 2  # the budget
    assert ["systemctl", "reset-failed", "pt.service"] in host.jobs  # before each restart
    assert [line.split(": ")[1].split(";")[0] for line in lines] == [
        "unhealthy",
        "restart pt.service",
        "gave-up",
    ]
    gave_up = [e for e in emitted if e.kind is EventKind.GAVE_UP]
    assert len(gave_up) == 1
    assert "pscheduler is not answering" in gave_up[0].detail
    assert "doctor: (stand-in)" in gave_up[0].detail
    assert facts(tmp_path)["health"] == "unhealthy"
    state = json.loads((tmp_path / "state/health.json").read_text())
    assert state["version"] == 1
    assert state["containers"]["pt"]["episode"] == "gave-up"
    host.inspect = inspect_json("healthy", "")
    assert any("healthy" in line for line in rounds(config, host, [1300.0]))
    assert facts(tmp_path)["health"] == "healthy"


def test_podman_3_field_name_and_podmans_own_action(tmp_path: Path) -> None:
    host = Host()
    host.inspect = inspect_json("unhealthy", "no pscheduler", field="Healthcheck")
    log = healrun.health_log(host.run, "pt")
    assert (log.status, log.output, log.podman_acts) == ("unhealthy", "no pscheduler", False)
    host.inspect = inspect_json("unhealthy", "x", action="kill")
    assert healrun.health_log(host.run, "pt").podman_acts
    rounds(_config(tmp_path), host, [1000.0])
    assert host.jobs == []  # Podman kills it itself: psquadlet does not restart it too


def test_a_round_is_skipped_while_a_pass_holds_the_lock(tmp_path: Path) -> None:
    config = _config(tmp_path)
    host = Host()
    with FileStateStore(config.watch.state_dir).lock():
        done = healrun.run_round(config, run=host.run, job=host.job, now=lambda: 0.0, user=False)
    assert "skipped this round" in done.skipped
    assert host.jobs == []


def test_a_pass_or_block_is_never_kept_out_by_a_health_round(tmp_path: Path) -> None:
    """heal only tests the watcher's lock: taking it in the middle of a round works."""
    config = _config(tmp_path)
    host = Host()
    taken: list[bool] = []
    real_job = host.job

    def job(argv: Sequence[str]) -> tuple[int, str]:
        with FileStateStore(config.watch.state_dir).lock():  # raises LockedError if held
            taken.append(True)
        return real_job(argv)

    healrun.run_round(config, run=host.run, job=job, now=lambda: 1000.0, user=False)
    assert taken  # heal restarted (through job) with the watcher's lock free for others
    assert healrun.pass_running(config.watch.state_dir) == ""
    with FileStateStore(config.watch.state_dir).lock():
        assert "a psquadlet pass holds" in healrun.pass_running(config.watch.state_dir)


def test_an_unreadable_state_is_moved_aside(tmp_path: Path) -> None:
    config = _config(tmp_path)
    (tmp_path / "state").mkdir()
    (tmp_path / "state/health.json").write_text("[]")
    lines = rounds(config, Host(), [1000.0])
    assert any("moved to" in line for line in lines)
    assert list((tmp_path / "state").glob("health.json.corrupt-*"))


def test_no_budget_nothing_supervised(tmp_path: Path) -> None:
    done = healrun.run_round(_config(tmp_path, ""), run=Host().run, user=False)
    assert done.skipped == "no container has a health check with a restart budget"


def test_an_unhealthy_event_during_an_upgrade_names_the_new_image_once(tmp_path: Path) -> None:
    """It named the old digest as both Before and After; the new image was the sick one."""
    state_dir = str(tmp_path / "state")
    cs = ContainerState("pt", running_digest=OLD, phase=PHASE_RESTARTING, phase_digest=NEW)
    FileStateStore(state_dir).save(WatchState().put(cs))
    assert running_digest(state_dir, "pt") == NEW
    event = Event(EventKind.UNHEALTHY, "pt", "pt.service", "img", 0.0, new_digest=NEW)
    body = render(event, "h").body
    assert f"Running: {NEW}" in body
    assert "Before:" not in body
    assert "After:" not in body
    assert OLD not in body


def test_the_stop_hook_carries_the_checks_output(tmp_path: Path) -> None:
    config = _config(tmp_path, 'on_failure = "kill"\nrestart_budget = 2\n')
    (spec,) = config.containers
    host = Host()
    host.inspect = inspect_json("unhealthy", "pscheduler: no route", action="kill")
    assert hooks.last_check_output(config, spec, host.run) == "pscheduler: no route"

    def gone(argv: Sequence[str]) -> tuple[int, str]:
        return 125, "Error: no such container pt"

    # Removed already (--rm): what the supervisor last saw.
    assert hooks.last_check_output(config, spec, gone) == ""
    rounds(config, host, [1000.0])
    assert hooks.last_check_output(config, spec, gone) == "pscheduler: no route"
