"""psquadlet notify --test / --event, run through the real command line."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from psquadlet.cli import main
from tests.notify.receivers import SmtpSink, Webhook

pytest.importorskip("apprise")

SECRET = "t0ken-Secret-99"


def _config(tmp_path: Path, smtp: SmtpSink, webhook: Webhook, dead_port: int) -> Path:
    urls = tmp_path / "urls.toml"
    urls.write_text(
        f'mail = "{smtp.url(SECRET)}"\nbroken = "json://u:{SECRET}@127.0.0.1:{dead_port}/"\n'
    )
    os.chmod(urls, 0o600)
    path = tmp_path / "psquadlet.toml"
    path.write_text(
        "[watch]\n"
        f'state_dir = "{tmp_path}/state"\n'
        "[containers.perfsonar-testpoint]\n"
        'preset = "perfsonar-testpoint"\n'
        "[metrics]\n"
        f'textfile_dir = "{tmp_path}"\n'
        "[notifications]\n"
        f'urls_file = "{urls}"\n'
        'hostname = "lab1"\n'
        'timeout = "20s"\n'
        "[notifications.channels.mail]\n"
        "[notifications.channels.broken]\n"
        "[notifications.channels.hook]\n"
        f'url = "{webhook.url()}"\n'
        'events = ["restarted", "unhealthy"]\n'
    )
    return path


def test_notify_test_reports_each_channel_and_hides_secrets(
    tmp_path: Path, smtp: SmtpSink, webhook: Webhook
) -> None:
    from tests.notify.receivers import free_port

    config = _config(tmp_path, smtp, webhook, free_port())
    result = CliRunner().invoke(main, ["notify", "-c", str(config), "--test"])
    assert result.exit_code == 1, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith("broken: failed (")
    assert lines[1:] == ["hook: sent 1 message(s)", "mail: sent 1 message(s)"]
    assert SECRET not in result.output
    assert "test message from psquadlet notify --test" in smtp.messages[0]
    assert (
        webhook.received[0]["title"]
        == "[lab1] psquadlet: test message from psquadlet notify --test"
    )
    assert not (tmp_path / "state/notifications/broken.json").exists()  # a test is not queued

    only = CliRunner().invoke(main, ["notify", "-c", str(config), "--test", "--channel", "hook"])
    assert only.exit_code == 0, only.output
    assert only.output == "hook: sent 1 message(s)\n"

    bad = CliRunner().invoke(main, ["notify", "-c", str(config), "--test", "--channel", "hok"])
    assert bad.exit_code == 2
    assert "no notification channel 'hok' (configured: broken, hook, mail)" in bad.output


def test_notify_event_from_a_systemd_hook(tmp_path: Path, smtp: SmtpSink, webhook: Webhook) -> None:
    from tests.notify.receivers import free_port

    config = _config(tmp_path, smtp, webhook, free_port())
    state = tmp_path / "state"
    state.mkdir()
    digest = "sha256:" + "c" * 64
    (state / "state.json").write_text(
        json.dumps(
            {"version": 1, "containers": {"perfsonar-testpoint": {"running_digest": digest}}}
        )
    )
    result = CliRunner().invoke(
        main,
        [
            "notify",
            "-c",
            str(config),
            "--event",
            "restarted",
            "--unit",
            "perfsonar-testpoint.service",
            "--detail",
            "HealthOnFailure=kill",
        ],
    )
    assert result.exit_code == 1, result.output  # "broken" failed; its message stays queued
    assert "hook: sent 1 message(s)" in result.output
    assert "mail: sent 1 message(s)" in result.output
    body = webhook.received[0]["message"]
    assert "Unit: perfsonar-testpoint.service" in body
    assert f"Running: {digest}" in body  # one digest: a health event is no change
    assert "Before:" not in body
    assert "After:" not in body
    assert "HealthOnFailure=kill" in body
    queued = json.loads((state / "notifications/broken.json").read_text())
    assert len(queued["pending"]) == 1
    assert SECRET not in json.dumps(queued)
    # The same hook counts the restart for node_exporter (timer mode has no daemon).
    prom = (tmp_path / "psquadlet.prom").read_text()
    assert 'psquadlet_restarts_total{container="perfsonar-testpoint"} 1.0' in prom
    assert 'psquadlet_health_state{container="perfsonar-testpoint",state="restarted"} 1.0' in prom

    unknown = CliRunner().invoke(
        main, ["notify", "-c", str(config), "--event", "restarted", "--unit", "nope.service"]
    )
    assert unknown.exit_code == 2
    assert "no container runs unit 'nope.service'" in unknown.output


def test_notify_usage(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["notify"])
    assert result.exit_code == 2
    assert "give either --test or --event KIND --unit UNIT" in result.output
