"""The schema rows: they agree with the model, the configuration reference (docs/configuration.md
and the man page) and the renderer, and they carry the Podman versions of keys, values and flags
(facts from Podman's git tags, issue 11)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from psquadlet import config, containerconfig, model, render, schema
from psquadlet.errors import ConfigError, ConfigErrors, PodmanVersionError
from psquadlet.quadlet_keys import KEYS, key

REFERENCE = Path(__file__).resolve().parents[2] / schema.DOC_FILE
HEAD = '[containers.tp]\nimage = "docker.io/library/busybox:1"\n'


def render_one(body: str, fmt: str, version: tuple[int, int, int]) -> str:
    cfg = config.parse_config(HEAD + body, "t.toml")
    (unit,) = render.render_units(cfg, fmt, version)
    return unit.text


def version_errors(body: str, fmt: str, version: tuple[int, int, int]) -> list[PodmanVersionError]:
    cfg = config.parse_config(HEAD + body, "t.toml")
    with pytest.raises((ConfigError, ConfigErrors)) as info:
        render.render_units(cfg, fmt, version)
    errors = list(info.value.errors)
    assert all(isinstance(e, PodmanVersionError) for e in errors), [str(e) for e in errors]
    return [e for e in errors if isinstance(e, PodmanVersionError)]


# --------------------------------------------------------------------------- one source


def test_reference_tables_are_the_generated_ones() -> None:
    text = REFERENCE.read_text(encoding="utf-8")
    for name in schema.DOC_TABLES:
        assert schema.doc_table(name) in text, f"run: python -m psquadlet.schema docs ({name})"
    assert schema.update_doc(text) == text


def test_the_docs_command_rewrites_only_the_generated_tables(tmp_path: Path) -> None:
    stale = REFERENCE.read_text(encoding="utf-8").replace("| `hostname` |", "| `hostnme` |")
    target = tmp_path / "configuration.md"
    target.write_text(stale, encoding="utf-8")
    assert schema.main(["docs", str(target)]) == 0
    assert target.read_text(encoding="utf-8") == REFERENCE.read_text(encoding="utf-8")
    assert schema.main(["bogus"]) == 2


def test_the_man_page_carries_every_row_of_the_reference() -> None:
    """The man page's CONFIGURATION section is written from the same cells as the tables."""
    from psquadlet.cli import main
    from psquadlet.cli.manpage import _escape, _markdown, render

    page = render(main, "psquadlet")
    section = page.split("\n.SH CONFIGURATION\n", 1)[1].split("\n.SH ", 1)[0]
    for name, rows in schema.DOC_TABLES.items():
        assert f"\n.SS {_escape(schema.DOC_TITLES[name])}\n" in section, name
        for row in rows.values():
            key, default, quadlet, flag, meaning = schema.reference_cells(row)
            assert f".TP\n{_markdown(key)} ({row.type})\n" in section, row.key
            for cell in (default, quadlet, flag, meaning):
                if cell.strip() not in ("", "-"):
                    assert _markdown(cell) in section, (row.key, cell)
    assert "\\fBHostName=\\fR (4.6)" in section
    assert "`" not in section
    assert "**" not in section


def test_every_row_is_a_model_field_whose_default_the_parser_keeps() -> None:
    names = {f.name for f in dataclasses.fields(model.ContainerSpec)}
    defaults = model.field_defaults(model.ContainerSpec)
    spec = config.parse_config(HEAD, "t.toml").containers[0]
    for name in schema.CONTAINER:
        assert name in names, name
        if name != "image":
            assert getattr(spec, name) == defaults[name], name


def test_config_and_import_read_the_schema_keys() -> None:
    from psquadlet.importer import draft

    assert containerconfig.CONTAINER_KEYS == draft.CONTAINER_KEYS == schema.CONTAINER_KEYS
    assert "memory" in schema.CONTAINER_KEYS
    assert "secrets" in schema.CONTAINER_KEYS


def test_every_quadlet_key_of_a_row_is_in_the_key_table() -> None:
    for row in (*schema.CONTAINER.values(), *schema.HEALTH.values()):
        if row.quadlet is not None:
            assert ("Container", row.quadlet) in KEYS, row.key
        if row.render == schema.SIMPLE:
            assert row.flag is not None, row.key


def test_reference_states_the_versions_of_the_key_table() -> None:
    """Issue 10 'Also': the README (now docs/configuration.md) disagreed with the code."""
    text = REFERENCE.read_text(encoding="utf-8")
    for setting, quadlet in (
        ("hostname", "HostName"), ("add_hosts", "AddHost"), ("userns", "UserNS"),
        ("ulimits", "Ulimit"), ("stop_signal", "StopSignal"), ("pull", "Pull"),
    ):  # fmt: skip
        since = ".".join(map(str, key("Container", quadlet).since))
        assert f"| `{setting}` |" in text
        assert f"`{quadlet}=` ({since})" in text, quadlet


# --------------------------------------------------------------------------- version facts


@pytest.mark.parametrize(
    ("name", "since"),
    [
        ("HealthCmd", (4, 5)),
        ("HealthInterval", (4, 5)),
        ("HealthOnFailure", (4, 5)),
        ("HealthRetries", (4, 5)),
        ("HealthStartPeriod", (4, 5)),
        ("HealthTimeout", (4, 5)),
        ("GroupAdd", (5, 1)),
        ("Memory", (5, 5)),
        ("Secret", (4, 5)),
        ("Notify", (4, 4)),
    ],
)
def test_quadlet_key_versions_from_podmans_git_tags(name: str, since: tuple[int, int]) -> None:
    assert key("Container", name).since == since


def test_flag_and_value_versions_from_podmans_git_tags() -> None:
    assert schema.CONTAINER["notify"].values_since == {"healthy": ((5, 0), (4, 7))}
    assert schema.HEALTH["on_failure"].flag == "--health-on-failure"
    assert schema.HEALTH["on_failure"].flag_since == (4, 3)


HEALTH = '[containers.tp.health]\ncmd = "true"\non_failure = "kill"\n'


def test_health_keys_need_quadlet_4_5() -> None:
    errors = version_errors(HEALTH, "quadlet", (4, 4, 0))
    assert {e.feature for e in errors} >= {"key HealthOnFailure= in [Container]"}
    assert {e.needs for e in errors} == {(4, 5)}
    assert "HealthOnFailure=kill" in render_one(HEALTH, "quadlet", (4, 5, 0))


def test_health_on_failure_flag_needs_podman_4_3() -> None:
    """Without a restart budget nothing stands in for Podman's kill below 4.3: a refusal by
    name. With one, psquadlet heal does it and the flag is left out (``healgate``)."""
    (error,) = version_errors(HEALTH, "service", (4, 2, 0))
    assert (error.feature, error.needs, error.target) == ("--health-on-failure", (4, 3), (4, 2, 0))
    assert error.key_path == "containers.tp.health.on_failure"
    assert "--health-on-failure=kill" in render_one(HEALTH, "service", (4, 3, 1))
    supervised = HEALTH + "restart_budget = 3\n"
    assert "--health-on-failure" not in render_one(supervised, "service", (4, 2, 0))


def test_group_add_needs_quadlet_5_1() -> None:
    body = 'group_add = ["wheel"]\n'
    (error,) = version_errors(body, "quadlet", (5, 0, 3))
    assert (error.feature, error.needs) == ("key GroupAdd= in [Container]", (5, 1))
    assert "GroupAdd=wheel" in render_one(body, "quadlet", (5, 1, 0))


def test_notify_healthy_needs_quadlet_5_0_but_podman_run_4_7() -> None:
    body = 'notify = "healthy"\n'
    (error,) = version_errors(body, "quadlet", (4, 9, 4))
    assert (error.feature, error.needs) == ("Notify=healthy", (5, 0))
    assert "Notify=healthy" in render_one(body, "quadlet", (5, 0, 0))
    (error,) = version_errors(body, "service", (4, 6, 2))
    assert (error.feature, error.needs) == ("--sdnotify=healthy", (4, 7))
    assert "--sdnotify=healthy" in render_one(body, "service", (4, 7, 0))
    # Notify=true and --sdnotify=container are older than every target.
    assert "Notify=true" in render_one("notify = true\n", "quadlet", (4, 4, 0))
    assert "--sdnotify=container" in render_one("notify = true\n", "service", (4, 3, 1))


# --------------------------------------------------------------------------- memory: one row


def test_memory_is_a_quadlet_key_from_5_5() -> None:
    text = render_one('memory = "512m"\n', "quadlet", (5, 5, 0))
    assert "Memory=512m\n" in text
    assert "--memory" not in text


def test_memory_below_5_5_travels_in_podman_args_without_a_refusal() -> None:
    text = render_one('memory = "512m"\n', "quadlet", (5, 4, 2))
    assert "PodmanArgs=--memory=512m\n" in text
    assert "Memory=" not in text


def test_memory_in_the_service_format() -> None:
    assert " --memory=512m " in render_one('memory = "2g"\n'.replace("2g", "512m"), "service",
                                           (4, 3, 1))  # fmt: skip


@pytest.mark.parametrize("value", ["512x", "-1", "", "0", "1.5g", "99999999999999999g"])
def test_memory_refuses_bad_sizes(value: str) -> None:
    if value == "":
        assert config.parse_config(HEAD + 'memory = ""\n', "t.toml").containers[0].memory == ""
        return
    with pytest.raises(ConfigError, match=r"t\.toml:3: containers\.tp\.memory: invalid memory"):
        config.parse_config(HEAD + f'memory = "{value}"\n', "t.toml")


# --------------------------------------------------------------------------- secrets (L10)


def test_secrets_render_secret_and_secret_flag() -> None:
    body = 'secrets = ["db-pass,type=env,target=DB_PASSWORD", "tls"]\n'
    quadlet = render_one(body, "quadlet", (5, 4, 2))
    assert "Secret=db-pass,type=env,target=DB_PASSWORD\nSecret=tls\n" in quadlet
    service = render_one(body, "service", (4, 3, 1))
    assert "--secret=db-pass,type=env,target=DB_PASSWORD --secret=tls " in service
    (error,) = version_errors(body.replace(', "tls"', ""), "quadlet", (4, 4, 0))
    assert (error.feature, error.needs) == ("key Secret= in [Container]", (4, 5))


@pytest.mark.parametrize("value", ["a b", "x,type=file", "x,bogus=1", ",type=env", "x,target="])
def test_secrets_refuse_bad_specs(value: str) -> None:
    with pytest.raises(ConfigError, match=r"containers\.tp\.secrets\[0\]: invalid secret"):
        config.parse_config(HEAD + f'secrets = ["{value}"]\n', "t.toml")


def test_environment_files_render_in_both_formats() -> None:
    body = 'environment_files = ["/etc/psquadlet/tp.env"]\n'
    assert "EnvironmentFile=/etc/psquadlet/tp.env\n" in render_one(body, "quadlet", (5, 4, 2))
    assert "--env-file=/etc/psquadlet/tp.env" in render_one(body, "service", (4, 3, 1))


@pytest.mark.parametrize(
    ("name", "secret"),
    [("DB_PASSWORD", True), ("api_token", True), ("MySecret", True), ("PASSWD", True),
     ("TZ", False), ("TOKENIZER_X", True), ("PATH", False)],
)  # fmt: skip
def test_secret_looking_names(name: str, secret: bool) -> None:
    assert schema.looks_secret(name) is secret


def test_secret_warnings_name_the_key() -> None:
    warnings = schema.secret_warnings(
        (("TZ", "UTC"), ("DB_PASSWORD", "x")), "containers.tp.environment"
    )
    assert len(warnings) == 1
    assert warnings[0].startswith("containers.tp.environment.DB_PASSWORD: looks like a secret")


def test_validate_warns_about_secret_looking_environment(tmp_path: Path) -> None:
    from tests.unit.test_cli_generate import run

    cfg = tmp_path / "c.toml"
    cfg.write_text(HEAD + 'environment = { TZ = "UTC", API_TOKEN = "t0k" }\n')
    result = run("validate", "-c", str(cfg))
    assert result.exit_code == 0
    assert "OK: 1 containers" in result.stdout
    assert f"warning: {cfg}: containers.tp.environment.API_TOKEN: looks like a secret" in (
        result.stderr
    )
    assert "TZ" not in result.stderr


def test_format_auto_on_podman_5_4_keeps_quadlet_for_memory(tmp_path: Path) -> None:
    from tests.unit.test_cli_generate import run

    cfg = tmp_path / "c.toml"
    cfg.write_text(HEAD + 'memory = "512m"\n')
    out = tmp_path / "o"
    result = run("generate", "-c", str(cfg), "-o", str(out), "--podman-version", "5.4.2")
    assert result.exit_code == 0, result.stderr
    assert sorted(p.name for p in out.glob("[!.p]*")) == ["tp.container"]  # not psquadlet-*
    assert "PodmanArgs=--memory=512m\n" in (out / "tp.container").read_text()
