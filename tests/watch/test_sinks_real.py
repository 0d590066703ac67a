"""``psquadlet upgrade`` reports to the configured sinks: loopback registry, host podman, a real
webhook receiver (Apprise for real) and the metrics file; a hanging webhook costs at most the
channel timeout."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from realbed import PodmanRunUnits, unique
from test_pass_real import cli, deploy, write_config

from tests.notify.receivers import Webhook
from tests.support import images
from tests.support.registry import Registry

pytestmark = pytest.mark.registry
pytest.importorskip("apprise")
pytest.importorskip("prometheus_client")


def _sinks_config(tmp_path: Path, hook: Webhook, timeout: str) -> str:
    (tmp_path / "prom").mkdir()
    return (
        f'[notifications]\ntimeout = "{timeout}"\n'
        f'[notifications.channels.hook]\nurl = "{hook.url()}"\n'
        f'[metrics]\ntextfile_dir = "{tmp_path}/prom"\n'
    )


def _notify_policy(ref: str, c: str, host: str, tmp_path: Path, sinks: str) -> Path:
    cfg = write_config(tmp_path / "p.toml", c, ref, host)
    cfg.write_text(sinks + cfg.read_text().replace('policy = "auto"', 'policy = "notify"'))
    return cfg


def test_upgrade_sends_the_event_and_writes_the_metrics(
    registry: Registry,
    plain_images: dict[str, Any],
    units: PodmanRunUnits,
    podman_url: str,
    tmp_path: Path,
) -> None:
    hook = Webhook()
    try:
        ref, c, _ = deploy(registry, plain_images["1.0"], units, unique("perfsonar/testpoint"))
        new = images.push(plain_images["2.0"], ref)
        cfg = _notify_policy(ref, c, registry.host, tmp_path, _sinks_config(tmp_path, hook, "60s"))
        res = cli(cfg, tmp_path / "state", podman_url)
        assert res.returncode == 0, res.stderr
        (message,) = hook.received
        assert "update available" in message["title"].lower(), message
        assert new in message["message"]
        prom = (tmp_path / "prom/psquadlet.prom").read_text()
        assert f'psquadlet_update_available{{container="{c}"}} 1.0' in prom
        assert f'psquadlet_last_check_success{{container="{c}"}} 1.0' in prom
    finally:
        hook.close()


def test_a_hanging_webhook_costs_the_pass_at_most_its_timeout(
    registry: Registry,
    plain_images: dict[str, Any],
    units: PodmanRunUnits,
    podman_url: str,
    tmp_path: Path,
) -> None:
    hook = Webhook()
    hook.hang.set()
    try:
        ref, c, _ = deploy(registry, plain_images["1.0"], units, unique("perfsonar/testpoint"))
        images.push(plain_images["2.0"], ref)
        cfg = _notify_policy(ref, c, registry.host, tmp_path, _sinks_config(tmp_path, hook, "3s"))
        started = time.monotonic()
        res = cli(cfg, tmp_path / "state", podman_url)
        elapsed = time.monotonic() - started
        assert res.returncode == 0, res.stderr
        assert "no answer within 3 s" in res.stderr
        assert elapsed < 3 + 10, elapsed  # the pass itself takes a few seconds on CI
        box = json.loads((tmp_path / "state/notifications/hook.json").read_text())
        assert len(box["pending"]) == 1  # kept for the next pass or hook
    finally:
        hook.close()
