"""Health events from the unit's own hooks (psquadlet.notifications.hooks) and their lines in
the rendered units, checked with Quadlet 5.4.2 and systemd-analyze verify."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from psquadlet.config import parse_config
from psquadlet.model import Config
from psquadlet.notifications import hooks
from psquadlet.render import render_units
from tests.notify.receivers import Webhook
from tests.support import oracle

ROOT = Path(__file__).resolve().parents[2]
HEALTH = '[containers.pt.health]\ncmd = "true"\non_failure = "kill"\ninterval = "1s"\n'


def _config(tmp_path: Path, sinks: str, container: str = HEALTH) -> Config:
    (tmp_path / "prom").mkdir(exist_ok=True)
    text = (
        f'[watch]\nstate_dir = "{tmp_path}/state"\n{sinks}'
        f'[containers.pt]\nimage = "docker.io/perfsonar/testpoint:systemd"\n{container}'
    )
    path = tmp_path / "p.toml"
    path.write_text(text)
    return parse_config(text, str(path))


def _metrics(tmp_path: Path) -> str:
    return f'[metrics]\ntextfile_dir = "{tmp_path}/prom"\n'


def _health(tmp_path: Path) -> str:
    facts = json.loads((tmp_path / "state/metrics.json").read_text())
    return str(facts["containers"]["pt"]["health"])


# ------------------------------------------------------------------------- rendering


@pytest.mark.parametrize("fmt", ["quadlet", "service"])
def test_no_hooks_without_notifications_or_metrics(tmp_path: Path, fmt: str) -> None:
    (unit,) = render_units(_config(tmp_path, ""), fmt)
    assert "--hook" not in unit.text


@pytest.mark.parametrize("fmt", ["quadlet", "service"])
def test_hooks_name_the_installed_psquadlet(tmp_path: Path, fmt: str) -> None:
    (unit,) = render_units(_config(tmp_path, _metrics(tmp_path)), fmt)
    head = f"-{sys.executable} -m psquadlet notify -c {tmp_path}/p.toml --hook --event"
    assert f"ExecStopPost={head} unhealthy --unit %n\n" in unit.text
    assert f"ExecStartPost={head} restarted --unit %n\n" in unit.text


@pytest.mark.oracle
def test_hooks_survive_quadlet_and_verify(tmp_path: Path) -> None:
    config = _config(tmp_path, _metrics(tmp_path))
    (unit,) = render_units(config, "quadlet")
    service = oracle.quadlet_service(unit.filename, unit.text)
    argv = [sys.executable, "-m", "psquadlet", "notify", "-c", f"{tmp_path}/p.toml", "--hook"]
    stop_posts = service.values("Service", "ExecStopPost")
    assert f"-{' '.join(argv)} --event unhealthy --unit %n" in stop_posts
    assert service.exec_argv("ExecStartPost")[: len(argv)] == argv
    oracle.assert_verifies({"pt.service": service.text})
    (plain,) = render_units(config, "service")
    oracle.assert_verifies({"pt.service": plain.text})


# ------------------------------------------------------------------------- the hooks


def test_a_stop_that_was_asked_for_reports_nothing(tmp_path: Path) -> None:
    config = _config(tmp_path, _metrics(tmp_path))
    assert hooks.stopped(config, "pt.service", {"SERVICE_RESULT": "success"}) == []
    assert not (tmp_path / "state/hooks").exists()
    assert hooks.started(config, "pt.service") == []  # a plain start: nothing either
    assert not (tmp_path / "state/metrics.json").exists()


def test_killed_restarted_healthy_through_the_cli_to_a_webhook(tmp_path: Path) -> None:
    pytest.importorskip("apprise")
    hook = Webhook()
    try:
        sinks = f'[notifications.channels.hook]\nurl = "{hook.url()}"\n' + _metrics(tmp_path)
        _config(tmp_path, sinks, container="")  # no health check: healthy once running
        base = [sys.executable, "-m", "psquadlet", "notify", "-c", str(tmp_path / "p.toml")]
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        killed = {**env, "SERVICE_RESULT": "exit-code", "EXIT_CODE": "exited", "EXIT_STATUS": "137"}
        for event, extra in (("unhealthy", killed), ("restarted", env)):
            res = subprocess.run(
                [*base, "--hook", "--event", event, "--unit", "pt.service"],
                env=extra,
                capture_output=True,
                text=True,
                timeout=120,
                check=False,
            )
            assert res.returncode == 0, res.stdout + res.stderr
        titles = [m["title"] for m in hook.received]
        assert len(titles) == 3, titles
        assert "exit-code, exited 137" in hook.received[0]["message"]
        assert _health(tmp_path) == "healthy"
        assert not (tmp_path / "state/hooks/pt.service.stopped").exists()
    finally:
        hook.close()


def test_healthy_waits_for_the_health_check(tmp_path: Path) -> None:
    config = _config(tmp_path, _metrics(tmp_path))
    flag = tmp_path / "healthy-now"
    fake_podman = tmp_path / "podman"  # stands in for `podman healthcheck run pt`
    fake_podman.write_text(f"#!/bin/sh\ntouch {tmp_path}/tries\n[ -e {flag} ]\n")
    fake_podman.chmod(0o755)
    hooks.stopped(config, "pt.service", {"SERVICE_RESULT": "signal", "EXIT_STATUS": "KILL"})
    assert _health(tmp_path) == "unhealthy"
    flag.touch()
    hooks.healthy(config, "pt.service", run=(str(fake_podman),))
    assert _health(tmp_path) == "healthy"


def test_health_wait_is_bounded() -> None:
    from psquadlet.model import HealthSpec

    assert hooks.health_budget(HealthSpec("true", interval=30, timeout=30, retries=3)) == 240
    assert hooks.health_budget(HealthSpec("true", retries=1000)) == hooks.HEALTH_WAIT_MAX
