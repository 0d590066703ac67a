"""Continuous health in the testpoint preset (issue 11 item 2), version-gated in both formats.

The preset asks Podman for a health check (``pscheduler troubleshoot --quick``) with no action
of its own: psquadlet's supervisor (``psquadlet-health.timer``, issue 17 item 2) restarts an
unhealthy testpoint within ``restart_budget`` and then leaves it running; systemd restarts a
crashed one under a start limit. No ``Notify=healthy``: it would hold the start job of a
testpoint that stays unhealthy until ``TimeoutStartSec`` and then stop it. Each piece is
checked against the versions that introduced it; the oracle test feeds the result to Podman
5.4.2's Quadlet, the registry-marked one runs the ``--format service`` line through the host's
Podman 4.3.1 (Debian 12's).
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from psquadlet import downgrade, generate, presets, schema
from psquadlet.config import parse_config
from psquadlet.errors import ConfigError, ConfigErrors, PodmanVersionError
from psquadlet.model import Config
from psquadlet.render import for_target, render_units
from tests.support import require_programs, require_root
from tests.support.oracle import assert_verifies, parse_unit, run_quadlet

PRESET = '[containers.perfsonar-testpoint]\npreset = "perfsonar-testpoint"\n'
DEBIAN_12 = (4, 3, 1)
ORACLE = (5, 4, 2)


def preset(variant: str = "systemd", extra: str = "") -> Config:
    return parse_config(f'{PRESET}variant = "{variant}"\n{extra}', "t.toml")


def unit_text(config: Config, fmt: str, version: tuple[int, int, int]) -> str:
    """The container's unit (not the volumes')."""
    (unit,) = [u for u in render_units(config, fmt, version) if not u.filename.endswith(".volume")]
    return unit.text


def version_errors(config: Config, fmt: str, version: tuple[int, int, int]) -> list[str]:
    try:
        render_units(config, fmt, version)
    except PodmanVersionError as exc:
        return [exc.feature]
    except ConfigErrors as exc:
        found = [e for e in exc.errors if isinstance(e, PodmanVersionError)]
        if len(found) != len(exc.errors):
            raise
        return [e.feature for e in found]
    return []


# --------------------------------------------------------------------------- the values


@pytest.mark.parametrize("variant", ["systemd", "supervisord"])
def test_both_variants_get_the_health_check_budget_restart_and_start_limit(variant: str) -> None:
    (spec,) = preset(variant).containers
    assert spec.health is not None
    assert spec.health.cmd == ("pscheduler", "troubleshoot", "--quick")
    assert (spec.health.interval, spec.health.timeout, spec.health.retries) == (60, 30, 3)
    assert spec.health.start_period == 300
    assert spec.health.on_failure == ""  # Podman takes no action: psquadlet heal does
    assert (spec.health.restart_budget, spec.health.budget_window) == (3, 3600)
    assert (spec.health.retry_after, spec.health.retry_max) == (3600, 86400)
    assert spec.health.supervised
    assert spec.notify == ""
    assert spec.service.restart == "on-failure"
    assert (spec.unit.start_limit_interval, spec.unit.start_limit_burst) == (3600, 4)


def test_the_start_limit_trips_even_when_every_start_takes_as_long_as_it_can() -> None:
    """A failing start lasts at most start period + retries x (interval + timeout) (+ the
    RestartSec pause): all ``burst`` starts must fit in the window, or the limit never trips.
    A limit in starts per 10s (systemd's default) never would."""
    (spec,) = preset().containers
    assert spec.health is not None
    h, s = spec.health, spec.service
    slowest_failing_start = h.start_period + h.retries * (h.interval + h.timeout) + s.restart_sec
    assert spec.unit.start_limit_burst is not None
    assert spec.unit.start_limit_interval is not None
    assert spec.unit.start_limit_burst * slowest_failing_start < spec.unit.start_limit_interval
    assert slowest_failing_start > 10


def test_timeout_start_covers_the_start_period_the_checks_and_a_first_pull() -> None:
    (spec,) = preset().containers
    assert spec.health is not None
    h = spec.health
    verdict = h.start_period + h.retries * (h.interval + h.timeout)  # healthy or killed by now
    first_pull = 10 * 60  # ~1 GB testpoint image at ~15 Mbit/s
    assert spec.service.timeout_start >= verdict + first_pull
    assert presets.TIMEOUT_START == "20m"


# --------------------------------------------------------------------------- versions


def test_quadlet_5_4_gets_the_check_without_a_kill_and_wants_the_supervisor() -> None:
    text = unit_text(preset(), "quadlet", ORACLE)
    assert "Notify=" not in text
    assert "HealthOnFailure" not in text
    assert "Wants=psquadlet-watch.service psquadlet-health.timer" in text.splitlines()
    for line in (
        'HealthCmd=["pscheduler", "troubleshoot", "--quick"]',
        "HealthInterval=60s",
        "HealthTimeout=30s",
        "HealthRetries=3",
        "HealthStartPeriod=300s",
        "StartLimitIntervalSec=3600",
        "StartLimitBurst=4",
        "Restart=on-failure",
        "TimeoutStartSec=1200",
    ):
        assert line in text.splitlines(), line
    assert text.index("StartLimitBurst=") < text.index("[Container]")  # a [Unit] key


@pytest.mark.parametrize("version", [(4, 7, 0), (4, 9, 5)])  # the volumes need 4.7
def test_quadlet_before_5_0_degrades_notify_and_keeps_the_health_check(
    version: tuple[int, int, int],
) -> None:
    text = unit_text(preset(extra='notify = "healthy-when-supported"\n'), "quadlet", version)
    assert "Notify=" not in text
    assert "HealthCmd=" in text
    assert "StartLimitBurst=4" in text.splitlines()


def test_quadlet_4_4_lacks_the_health_keys_and_auto_writes_a_service_instead() -> None:
    features = version_errors(preset(), "quadlet", (4, 4, 0))
    assert "key HealthCmd= in [Container]" in features
    assert not any("Notify" in f for f in features)  # the degraded value never refuses
    fmt, _units, note = generate.render_units(preset(), "quadlet", (4, 4, 0), False, auto=True)
    assert fmt == "service"
    assert note is not None


@pytest.mark.parametrize("version", [ORACLE, (5, 0, 0)])
def test_auto_stays_with_quadlet_where_notify_healthy_exists(version: tuple[int, int, int]) -> None:
    fmt, _units, note = generate.render_units(preset(), "quadlet", version, False, auto=True)
    assert (fmt, note) == ("quadlet", None)


def test_debian_12_podman_4_3_1_service_degrades_to_conmon_without_an_error() -> None:
    text = unit_text(preset(), "service", DEBIAN_12)
    (run,) = [line for line in text.splitlines() if line.startswith("ExecStart=")]
    assert "--sdnotify=conmon" in run
    assert "--sdnotify=healthy" not in run
    assert "--health-on-failure" not in run
    assert "--health-start-period=300s" in run
    assert "StartLimitIntervalSec=3600" in text.splitlines()


@pytest.mark.parametrize(("version", "mode"), [((4, 6, 2), "conmon"), ((4, 7, 0), "healthy")])
def test_service_gets_sdnotify_healthy_from_4_7(version: tuple[int, int, int], mode: str) -> None:
    text = unit_text(preset(extra='notify = "healthy-when-supported"\n'), "service", version)
    assert f"--sdnotify={mode} " in text


@pytest.mark.parametrize("version", [(3, 0, 1), (3, 4, 4), (4, 2, 0)])
def test_before_4_3_the_preset_is_never_refused(version: tuple[int, int, int]) -> None:
    """Debian 11 (3.0.1), Ubuntu 22.04 (3.4.4): the health check, and psquadlet's supervisor
    for the kill; nothing to note, nothing lost."""
    text = unit_text(preset(), "service", version)
    assert "--health-cmd=" in text
    assert "--health-on-failure" not in text
    assert "psquadlet-health.timer" in text
    assert downgrade.target_notes(preset(), "service", version) == ()


@pytest.mark.parametrize("value", ["kill", "restart", "none"])
def test_before_4_3_psquadlet_stands_in_for_the_health_kill_and_says_so(value: str) -> None:
    config = preset(extra=f'[containers.perfsonar-testpoint.health]\non_failure = "{value}"\n')
    text = unit_text(config, "service", (3, 4, 4))
    assert "--health-on-failure" not in text
    assert "psquadlet-health.timer" in text
    notes = downgrade.target_notes(config, "service", (3, 4, 4))
    if value == "none":  # Podman's default: nothing is lost
        assert notes == ()
    else:
        (note,) = notes
        assert f"on_failure = '{value}'" in note
        assert "psquadlet-health.timer" in note
    # From 4.3 Podman does it itself (and then psquadlet heal leaves it to Podman).
    assert f"--health-on-failure={value}" in unit_text(config, "service", DEBIAN_12)


@pytest.mark.parametrize(
    "extra", ['on_failure = "stop"\n', 'on_failure = "kill"\nrestart_budget = 0\n']
)
def test_before_4_3_what_nothing_stands_in_for_is_refused_by_name(extra: str) -> None:
    config = preset(extra=f"[containers.perfsonar-testpoint.health]\n{extra}")
    assert version_errors(config, "service", (4, 2, 0)) == ["--health-on-failure"]


@pytest.mark.parametrize(
    ("fmt", "version", "feature"),
    [("quadlet", (4, 9, 0), "Notify=healthy"), ("service", (4, 6, 0), "--sdnotify=healthy")],
)
def test_an_explicit_notify_healthy_is_still_refused_where_it_does_not_exist(
    fmt: str, version: tuple[int, int, int], feature: str
) -> None:
    assert feature in version_errors(preset(extra='notify = "healthy"\n'), fmt, version)


def test_healthy_when_supported_without_a_health_check_is_off() -> None:
    config = parse_config(
        '[containers.c]\nimage = "docker.io/library/busybox:1"\n'
        'notify = "healthy-when-supported"\n',
        "t.toml",
    )
    (spec,) = config.containers
    assert for_target(spec, "quadlet", ORACLE).notify == ""
    (sick,) = preset(extra='[containers.perfsonar-testpoint.health]\ncmd = "none"\n').containers
    assert for_target(sick, "service", ORACLE).notify == ""


def test_the_schema_carries_the_version_facts() -> None:
    podman = [row for row in schema.HEALTH.values() if row.render == schema.SPECIAL]
    assert {row.quadlet_since for row in podman} == {(4, 5)}
    assert schema.HEALTH["on_failure"].flag_since == schema.HEAL_SINCE == (4, 3)
    supervisor = [row for row in schema.HEALTH.values() if row.render == schema.ELSEWHERE]
    assert [r.key for r in supervisor] == [
        "restart_budget", "budget_window", "retry_after", "retry_max"
    ]  # fmt: skip
    assert all(r.quadlet is None and r.flag is None for r in supervisor)
    assert schema.CONTAINER["notify"].values_since == {"healthy": ((5, 0), (4, 7))}
    assert schema.UNIT["start_limit_burst"].systemd == "Unit.StartLimitBurst"


# --------------------------------------------------------------------------- tuning, off


def test_each_piece_can_be_tuned_or_turned_off_in_toml() -> None:
    config = preset(
        extra="notify = false\n"
        "[containers.perfsonar-testpoint.health]\n"
        'on_failure = "none"\ninterval = "2m"\n'
        "[containers.perfsonar-testpoint.unit]\n"
        "start_limit_interval = 0\nstart_limit_burst = 0\n"
        "[containers.perfsonar-testpoint.service]\n"
        'restart = "no"\ntimeout_start = "45m"\n'
    )
    lines = unit_text(config, "quadlet", ORACLE).splitlines()
    assert not [line for line in lines if line.startswith("Notify=")]
    for line in (
        "HealthOnFailure=none",  # explicit: written where Podman has it
        "HealthInterval=120s",
        "HealthStartPeriod=300s",  # untouched keys keep the preset's value
        "StartLimitIntervalSec=0",  # systemd: no start limit
        "StartLimitBurst=0",
        "Restart=no",
        "TimeoutStartSec=2700",
    ):
        assert line in lines, line


def test_without_the_preset_nothing_new_is_written() -> None:
    config = parse_config('[containers.c]\nimage = "docker.io/library/busybox:1"\n', "t.toml")
    text = unit_text(config, "quadlet", ORACLE)
    assert "StartLimit" not in text
    assert "Health" not in text
    assert "Notify" not in text


@pytest.mark.parametrize(
    ("toml", "path", "message"),
    [
        ("start_limit_burst = -1", "unit.start_limit_burst", "must be between 0 and 1000"),
        ("start_limit_burst = 1001", "unit.start_limit_burst", "must be between 0 and 1000"),
        ('start_limit_burst = "4"', "unit.start_limit_burst", "expected an integer"),
        ('start_limit_interval = "2d"', "unit.start_limit_interval", ""),
        ("start_limit_interval = true", "unit.start_limit_interval", "expected a duration"),
    ],
)
def test_bad_start_limits_are_located_errors(toml: str, path: str, message: str) -> None:
    text = f"{PRESET}[containers.perfsonar-testpoint.unit]\n{toml}\n"
    with pytest.raises(ConfigError) as info:
        parse_config(text, "t.toml")
    assert info.value.key_path == f"containers.perfsonar-testpoint.{path}"
    assert info.value.line == 4
    assert message in info.value.message


def test_init_writes_the_health_settings_and_parses_back_to_the_preset() -> None:
    for variant in presets.variants(presets.PERFSONAR_TESTPOINT):
        text = presets.init_text(variant)
        assert "[containers.perfsonar-testpoint.health]" in text
        assert "restart_budget = 3" in text
        assert "start_limit_burst = 4" in text
        assert parse_config(text, "init.toml").containers == preset(variant).containers


# --------------------------------------------------------------------------- real programs


@pytest.mark.oracle
def test_quadlet_5_4_reads_the_preset_as_meant() -> None:
    units = render_units(preset(), "quadlet", ORACLE)
    result = run_quadlet({u.filename: u.text for u in units}).check()
    service = result.service("perfsonar-testpoint.service")
    argv = service.exec_argv()
    assert "--sdnotify=healthy" not in argv
    assert "--health-on-failure" not in argv
    pairs = set(zip(argv, argv[1:]))
    for pair in (
        ("--health-cmd", '["pscheduler", "troubleshoot", "--quick"]'),
        ("--health-start-period", "300s"),
        ("--health-retries", "3"),
        ("--health-interval", "60s"),
        ("--health-timeout", "30s"),
    ):
        assert pair in pairs, argv
    assert service.value("Unit", "StartLimitIntervalSec") == "3600"
    assert service.value("Unit", "StartLimitBurst") == "4"
    assert service.value("Service", "TimeoutStartSec") == "1200"
    for_the_service_format = render_units(preset(), "service", ORACLE)
    assert_verifies({u.filename: u.text for u in for_the_service_format})


NAME = "psq-health-svc"


@pytest.fixture
def sickly() -> Iterator[str]:
    require_root()
    require_programs("podman", "busybox")
    from tests.support.images import build_plain, remove

    stand_in = build_plain("health-svc", sickly=True)
    try:
        yield stand_in.local
    finally:
        subprocess.run(["podman", "rm", "-f", "--ignore", NAME], capture_output=True, check=False)
        for suffix in ("psconfig", "lsregistration", "psconfig-state"):
            subprocess.run(
                ["podman", "volume", "rm", "-f", f"{NAME}-{suffix}"],
                capture_output=True,
                check=False,
            )
        remove(stand_in.local)


def _run(argv: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, check=False, timeout=120)


def _podman_run_argv(config: Config, runtime_dir: Path) -> list[str]:
    (unit,) = render_units(config, "service", DEBIAN_12)
    text = re.sub(r"(?<!%)%N", NAME, re.sub(r"(?<!%)%t", str(runtime_dir), unit.text))
    argv = parse_unit(text, unit.filename).exec_argv()
    # split needs the cgroup systemd delegates to a service; this host has no systemd PID 1.
    return [a if a != "--cgroups=split" else "--cgroups=enabled" for a in argv]


@pytest.mark.registry
def test_podman_4_3_1_takes_the_service_line_and_kills_an_unhealthy_testpoint(
    sickly: str, tmp_path: Path
) -> None:
    image = f'image = "{sickly}"\n'
    base = f'[containers.{NAME}]\npreset = "perfsonar-testpoint"\nvariant = "supervisord"\n'

    # The preset as it is: Podman 4.3.1 accepts every flag and records the health check.
    started = _run(_podman_run_argv(parse_config(base + image, "t.toml"), tmp_path))
    assert started.returncode == 0, started.stderr
    info = _run(["podman", "inspect", NAME, "--format", "{{json .Config.Healthcheck}}"])
    assert '"pscheduler","troubleshoot","--quick"' in info.stdout.replace(" ", "")
    assert _run(["podman", "healthcheck", "run", NAME]).returncode == 0
    assert _run(["podman", "rm", "-f", NAME]).returncode == 0
    (tmp_path / f"{NAME}.cid").unlink()  # the unit's ExecStartPre

    # Short health values from the TOML: an unhealthy verdict makes Podman kill it (--rm).
    quick = (
        f"{base}{image}[containers.{NAME}.health]\nstart_period = 0\nretries = 1\n"
        'on_failure = "kill"\n'
    )
    started = _run(_podman_run_argv(parse_config(quick, "t.toml"), tmp_path))
    assert started.returncode == 0, started.stderr
    assert _run(["podman", "healthcheck", "run", NAME]).returncode == 0
    assert _run(["podman", "exec", NAME, "touch", "/run/psq-sick"]).returncode == 0
    assert _run(["podman", "healthcheck", "run", NAME]).returncode != 0
    gone = _run(["podman", "wait", "--condition=stopped", NAME])
    assert gone.returncode in (0, 125), gone.stderr  # killed: stopped, or already removed
    running = _run(["podman", "container", "inspect", "--format", "{{.State.Running}}", NAME])
    assert running.returncode != 0 or running.stdout.strip() == "false"


def test_generate_says_what_stands_in_for_the_health_kill(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from psquadlet.cli import main

    config = tmp_path / "c.toml"
    config.write_text(f'{PRESET}[containers.perfsonar-testpoint.health]\non_failure = "kill"\n')
    argv = ["generate", "-c", str(config), "-o", str(tmp_path / "out"), "--dry-run"]
    result = CliRunner().invoke(main, [*argv, "--podman-version", "3.0.1"])
    assert result.exit_code == 0, result.output
    assert (
        "has no --health-on-failure (needs 4.3); psquadlet-health.timer restarts" in result.output
    )
    newer = CliRunner().invoke(main, [*argv, "--podman-version", "4.3.1"])
    assert "psquadlet-health.timer restarts" not in newer.output
