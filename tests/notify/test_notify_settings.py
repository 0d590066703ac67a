"""[notifications] parsing, the URLs file, redaction: errors located, secrets never shown."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from psquadlet.errors import ConfigError, ConfigErrors
from psquadlet.notifications.redact import Redactor
from psquadlet.notifications.settings import (
    DEFAULT_EVENTS,
    NotificationSettings,
    from_file,
    load_urls,
    parse_notifications,
)
from psquadlet.watch.events import EventKind

SECRET = "hunter2-Pa55word"


def _errors(tmp_path: Path, text: str) -> list[str]:
    path = tmp_path / "psquadlet.toml"
    path.write_text(text)
    with pytest.raises((ConfigError, ConfigErrors)) as info:
        from_file(path)
    return [str(e) for e in info.value.errors]


def test_full_table(tmp_path: Path) -> None:
    path = tmp_path / "psquadlet.toml"
    path.write_text(
        '[notifications]\nquiet_period = "12h"\ntimeout = "5s"\nhostname = "lab1"\n'
        "[notifications.channels.hook]\n"
        'url = "json://127.0.0.1:9/x"\nevents = ["rolled-back", "check-failing"]\n'
        'containers = ["perfsonar-testpoint"]\n'
        "[notifications.channels.mail]\n"
    )
    with pytest.raises(ConfigError, match=r"notifications\.channels\.mail: has no url"):
        from_file(path)
    path.write_text(
        path.read_text().replace("[notifications]\n", '[notifications]\nurls_file = "/x"\n')
    )
    settings = from_file(path)
    assert settings.quiet_period == 43200
    assert settings.timeout == 5
    hook = settings.channel("hook")
    assert hook is not None
    assert hook.events == (EventKind.ROLLED_BACK, EventKind.CHECK_FAILING)
    assert hook.containers == ("perfsonar-testpoint",)
    mail = settings.channel("mail")
    assert mail is not None
    assert mail.events == DEFAULT_EVENTS


def test_errors_are_located_and_all_reported(tmp_path: Path) -> None:
    lines = _errors(
        tmp_path,
        "[notifications]\n"
        'quiet_period = "soon"\n'
        "colour = 1\n"
        "[notifications.channels.hook]\n"
        f'url = "not a url {SECRET}"\n'
        'events = ["rolledback"]\n',
    )
    text = "\n".join(lines)
    assert f"{tmp_path}/psquadlet.toml:2: notifications.quiet_period: invalid duration" in text
    assert "psquadlet.toml:3: notifications.colour: unknown key 'colour'" in text
    assert "psquadlet.toml:5: notifications.channels.hook.url: is not a URL" in text
    assert "notifications.channels.hook.events[0]: unknown event 'rolledback'" in text
    assert "did you mean 'rolled-back'?" in text
    assert SECRET not in text


def test_not_a_table() -> None:
    with pytest.raises(ConfigError, match="notifications: expected a table"):
        parse_notifications("yes", "f.toml")


def test_urls_file_must_be_private(tmp_path: Path) -> None:
    secrets = tmp_path / "urls.toml"
    secrets.write_text(f'mail = "mailtos://ops:{SECRET}@smtp.example.org"\n')
    os.chmod(secrets, 0o640)
    settings = parse_notifications(
        {"urls_file": str(secrets), "channels": {"mail": {}}}, "psquadlet.toml"
    )
    with pytest.raises(ConfigError) as info:
        load_urls(settings)
    assert "readable by group or others (mode 0640)" in str(info.value)
    assert f"chmod 600 {secrets}" in str(info.value)
    os.chmod(secrets, 0o600)
    assert load_urls(settings) == {"mail": f"mailtos://ops:{SECRET}@smtp.example.org"}


def test_urls_file_errors_never_quote_the_secret(tmp_path: Path) -> None:
    secrets = tmp_path / "urls.toml"
    secrets.write_text(f'mail = "mailtos://ops:{SECRET}@smtp.example.org\n')  # unterminated
    os.chmod(secrets, 0o600)
    settings = NotificationSettings(urls_file=str(secrets))
    with pytest.raises(ConfigError) as info:
        load_urls(settings)
    assert SECRET not in str(info.value)
    secrets.write_text(f'mial = "mailtos://ops:{SECRET}@x"\nother = 3\n')
    settings = parse_notifications(
        {"urls_file": str(secrets), "channels": {"mail": {}}}, "psquadlet.toml"
    )
    with pytest.raises(ConfigErrors) as many:
        load_urls(settings)
    text = str(many.value)
    assert f"{secrets}:1: mial: no such channel" in text
    assert "did you mean 'mail'?" in text
    assert "no URL for channel 'mail'" in text
    assert SECRET not in text


def test_redactor_hides_url_pieces() -> None:
    url = f"mailtos://ops:{SECRET}@smtp.example.org/?to=a@example.org&pass=tok3nvalue"
    redact = Redactor([url])
    text = redact(f"failed for {url}; auth {SECRET} refused; token tok3nvalue; see json://h/p")
    assert SECRET not in text
    assert "tok3nvalue" not in text
    assert "json://***" in text


def test_the_tables_are_part_of_the_configuration() -> None:
    """config.parse_config carries [notifications] and [metrics], errors located at their line."""
    from psquadlet.config import parse_config

    text = (
        '[notifications]\nquiet_period = "1d"\n'
        '[notifications.channels.ops]\nurl = "mailto://ops@127.0.0.1"\n'
        '[metrics]\ntextfile_dir = "/tmp/textfiles"\n'
    )
    config = parse_config(text, "c.toml")
    assert config.notifications is not None
    assert [c.name for c in config.notifications.channels] == ["ops"]
    assert config.metrics is not None
    assert config.metrics.textfile_dir == "/tmp/textfiles"
    assert parse_config("", "c.toml").notifications is None
    with pytest.raises(ConfigError) as caught:
        parse_config('[metrics]\ntextfile_dir = "relative"\n', "c.toml")
    assert str(caught.value).startswith("c.toml:2: metrics.textfile_dir: ")
