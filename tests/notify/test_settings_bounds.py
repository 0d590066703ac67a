"""``[notifications]`` durations are bounded, and a URL's password in a configuration others
can read is warned about (issue 17 item 9)."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from psquadlet import schema
from psquadlet.cli import main
from psquadlet.config import parse_config
from psquadlet.errors import ConfigError

BASE = '[containers.tp]\npreset = "perfsonar-testpoint"\n\n[notifications]\n'
CHANNEL = '\n[notifications.channels.hook]\nurl = "{url}"\n'


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('quiet_period = "31d"', "quiet_period: must be at most 2592000 (30d)"),
        ("quiet_period = 100000000000000000000", "quiet_period: must be at most"),
        ("quiet_period = -1", "quiet_period: must be >= 0"),
        ('timeout = "10m"', "timeout: must be at most 300 (5m)"),
        ("timeout = 86400", "timeout: must be at most 300 (5m)"),
    ],
)
def test_notification_durations_are_bounded(line: str, message: str) -> None:
    text = BASE + line + "\n" + CHANNEL.format(url="json://127.0.0.1:9/")
    with pytest.raises(ConfigError, match=re.escape(message)) as info:
        parse_config(text, "t.toml")
    assert info.value.line == 5  # located


def test_notification_durations_within_bounds() -> None:
    text = BASE + 'quiet_period = "30d"\ntimeout = "5m"\n' + CHANNEL.format(url="json://h/")
    settings = parse_config(text, "t.toml").notifications
    assert settings is not None
    assert (settings.quiet_period, settings.timeout) == (30 * 86400, 300)


@pytest.mark.parametrize(
    ("url", "secret"),
    [
        ("mailtos://ops:hunter2@127.0.0.1:2525", True),
        ("json://127.0.0.1:9/?token=abc", True),
        ("json://127.0.0.1:9/path?x=1&api_password=y", True),
        ("json://127.0.0.1:9/", False),
        ("mailtos://ops@127.0.0.1:2525", False),
        ("json://127.0.0.1:9/a:b@c", False),  # in the path, not the user part
    ],
)
def test_url_secret_detector(url: str, secret: bool) -> None:
    assert schema.url_has_secret(url) is secret


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o600])
def test_validate_warns_about_a_password_others_can_read(tmp_path: Path, mode: int) -> None:
    config = tmp_path / "psquadlet.toml"
    state = tmp_path / "state"
    config.write_text(
        f'[watch]\nstate_dir = "{state}"\n\n'
        + BASE
        + CHANNEL.format(url="mailtos://ops:hunter2@127.0.0.1:2525")
    )
    os.chmod(config, mode)
    result = CliRunner().invoke(main, ["validate", "-c", str(config)])
    assert result.exit_code == 0, result.output
    warned = "notifications.channels.hook.url: carries a password or token" in result.output
    assert warned is (mode != 0o600)
    assert "hunter2" not in result.output
