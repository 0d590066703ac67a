"""The built-in default on every Podman an operator runs, from 3.0 (issue 18 item 1).

One golden folder per target Podman and preset variant, ``targets/VERSION/VARIANT/``: the
files ``generate --format auto --podman-version VERSION`` writes for the testpoint preset
(Quadlet where the target's Quadlet has every key, else the plain ``.service``), and
``NOTES``: what ``generate`` says it left out or turned off, and what stands in. The targets
are the Podman releases of the distributions perfSONAR runs on (issue 18): Debian 11 3.0.1,
Ubuntu 22.04 3.4.4, Debian 12 4.3.1, the first Quadlet 4.4, Ubuntu 24.04 4.9.3, 5.0, and
Debian 13 / RHEL 9.6 5.4.

Regenerate with ``PSQUADLET_UPDATE_GOLDEN=1 pytest tests/golden/test_targets.py`` and review
the diff. The oracle-marked tests give every ``.service`` to ``systemd-analyze verify`` (it
must print nothing) and every ``.container`` to the real Quadlet generator (5.4.2: no older
Quadlet is installable here; what an older one lacks is the version table's to say).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from psquadlet import __version__, downgrade, generate, render
from psquadlet.config import parse_config
from psquadlet.errors import PodmanVersionError, PsquadletError
from psquadlet.model import Config
from psquadlet.presets import init_text
from tests.support.oracle import assert_verifies, run_quadlet_dir

GOLDEN = Path(__file__).resolve().parent / "targets"
TARGETS = ("3.0.1", "3.4.4", "4.3.1", "4.4", "4.9.3", "5.0", "5.4")
VARIANTS = ("systemd", "supervisord")
NOTES = "NOTES"


def _config(variant: str) -> Config:
    return parse_config(init_text(variant), f"testpoint-{variant}.toml")


def _render(target: str, variant: str) -> tuple[str, dict[str, str]]:
    """What ``generate --format auto --podman-version TARGET`` writes and says."""
    config = _config(variant)
    fmt, version, note = generate.choose_format("auto", target)
    fmt, units, fallback = generate.render_units(config, fmt, version, False, auto=True)
    files = {
        u.filename: u.text.replace(f"psquadlet {__version__} from", "psquadlet VERSION from", 1)
        for u in units
    }
    notes = [n for n in (note, fallback, *downgrade.target_notes(config, fmt, version)) if n]
    files[NOTES] = "".join(f"{n}\n" for n in notes)
    return fmt, files


def _folder(target: str, variant: str) -> Path:
    return GOLDEN / target / variant


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("target", TARGETS)
def test_target_golden(target: str, variant: str) -> None:
    _fmt, rendered = _render(target, variant)
    folder = _folder(target, variant)
    if os.environ.get("PSQUADLET_UPDATE_GOLDEN") == "1":
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        for name, text in rendered.items():
            (folder / name).write_text(text, encoding="utf-8")
    assert folder.is_dir(), f"no golden files for {target}/{variant}: PSQUADLET_UPDATE_GOLDEN=1"
    expected = {p.name: p.read_text(encoding="utf-8") for p in sorted(folder.iterdir())}
    assert sorted(rendered) == sorted(expected)
    for name, text in rendered.items():
        assert text == expected[name], f"targets/{target}/{variant}/{name} differs from golden"


@pytest.mark.parametrize(
    "target", ["3.0", "3.0.1", "3.1", "3.2.3", "3.4.4", "4.0", "4.2", "4.3.1", "4.4", "4.6",
               "4.9.3", "5.0", "5.3", "5.4.2", "5.5", "5.8"],
)  # fmt: skip
@pytest.mark.parametrize("variant", VARIANTS)
def test_the_default_is_never_refused(target: str, variant: str) -> None:
    """Every Podman from 3.0 gets the preset, in the format --format auto picks."""
    fmt, version, _note = generate.choose_format("auto", target)
    chosen, units, _note = generate.render_units(_config(variant), fmt, version, False, True)
    assert units
    assert version is not None
    assert chosen == ("service" if version[:2] < (4, 7) else "quadlet")  # VolumeName= 4.7


def _service(target: str) -> str:
    files = _render(target, "systemd")[1]
    return files["perfsonar-testpoint.service"]


def _with(variant: str, health: str) -> Config:
    """The preset as ``init`` writes it, with these ``[containers.NAME.health]`` lines added."""
    text = init_text(variant).replace(
        "[containers.perfsonar-testpoint.health]\n",
        f"[containers.perfsonar-testpoint.health]\n{health}",
    )
    return parse_config(text, f"testpoint-{variant}.toml")


def test_the_default_below_4_3_loses_nothing_psquadlet_heal_acts() -> None:
    """The preset asks Podman for no action (psquadlet heal restarts within its budget), so
    below 4.3 nothing is left out and nothing needs saying; the check itself is written."""
    for target in ("3.0.1", "3.4.4", "4.2"):
        text = _service(target)
        assert "--health-on-failure" not in text
        assert "--health-cmd=" in text  # the check itself stays: the supervisor reads it
        assert "psquadlet-health.timer" in text  # Wants=, beside the watcher
        assert "on_failure" not in _render(target, "systemd")[1][NOTES]


def test_an_operators_health_kill_below_4_3_is_left_out_with_what_stands_in() -> None:
    config = _with("systemd", 'on_failure = "kill"\n')
    for target in ((3, 0, 1), (3, 4, 4), (4, 2, 0)):
        (unit,) = render.render_units(config, "service", target)
        assert "--health-on-failure" not in unit.text
        (note,) = downgrade.target_notes(config, "service", target)
        assert note.startswith(
            "containers.perfsonar-testpoint.health.on_failure = 'kill': left out: Podman"
        )
        assert "has no --health-on-failure (needs 4.3)" in note
        assert "psquadlet-health.timer restarts the unhealthy container instead" in note
    assert downgrade.target_notes(config, "service", (4, 3, 0)) == ()
    (unit,) = render.render_units(config, "service", (4, 3, 1))
    assert "--health-on-failure=kill" in unit.text


def test_without_a_restart_budget_nothing_stands_in_and_it_is_refused() -> None:
    config = parse_config(
        '[containers.t]\nimage = "docker.io/library/busybox:1"\n'
        '[containers.t.health]\ncmd = "true"\non_failure = "restart"\n',
        "t.toml",
    )
    with pytest.raises(PsquadletError, match=r"--health-on-failure needs Podman 4\.3"):
        render.render_units(config, "service", (3, 4, 4))
    assert downgrade.target_notes(config, "service", (4, 3, 0)) == ()


def test_podman_rm_time_only_from_4_0() -> None:
    """``podman rm --time`` came with 4.0.0; podman-rm(1) of 3.0.1 and 3.4.4 has none."""
    assert "rm -f --ignore --cidfile=%t/%N.cid" in _service("3.4.4")
    assert "rm -f --ignore -t 10 --cidfile=%t/%N.cid" in _service("4.3.1")


def test_notify_healthy_turned_off_is_said() -> None:
    """The preset leaves ``notify`` off; an operator's ``healthy-when-supported`` is resolved
    per target and said where it is turned off."""
    config = parse_config(
        init_text("systemd").replace(
            'variant = "systemd"', 'variant = "systemd"\nnotify = "healthy-when-supported"', 1
        ),
        "t.toml",
    )
    notes = downgrade.target_notes(config, "quadlet", (4, 9, 3))
    assert any("notify: Notify=healthy needs Podman 5.0 (target is 4.9.3)" in n for n in notes)
    assert downgrade.target_notes(config, "quadlet", (5, 0, 0)) == ()
    notes = downgrade.target_notes(config, "service", (4, 3, 1))
    assert any("--sdnotify=healthy needs Podman 4.7" in n for n in notes)


@pytest.mark.parametrize(
    ("toml", "old", "new", "feature"),
    [
        ('secrets = ["s"]', (3, 0, 1), (3, 1, 0), "--secret"),
        ('timezone = "local"', (2, 0, 0), (2, 1, 0), "--tz"),
        ('pull = "newer"', (4, 1, 0), (4, 2, 0), "--pull=newer"),
    ],
)
def test_flags_and_values_gated_on_the_podman_that_has_them(
    toml: str, old: tuple[int, int, int], new: tuple[int, int, int], feature: str
) -> None:
    config = parse_config(
        f'[containers.t]\nimage = "docker.io/library/busybox:1"\n{toml}\n', "t.toml"
    )
    render.render_units(config, "service", new)
    with pytest.raises(PsquadletError) as info:
        render.render_units(config, "service", old)
    errors = getattr(info.value, "errors", [info.value])
    mine = [e for e in errors if isinstance(e, PodmanVersionError) and e.feature == feature]
    assert mine, str(info.value)
    assert mine[0].key_path == "containers.t." + toml.split(maxsplit=1)[0] + (
        "[0]" if "[" in toml else ""
    )


def test_below_podman_2_1_the_service_format_is_refused() -> None:
    """The fixed part of the run line needs --cgroups=split and --sdnotify (2.1.0)."""
    with pytest.raises(PsquadletError, match=r"--cgroups=split needs Podman 2\.1"):
        render.render_units(_config("systemd"), "service", (2, 0, 0))


@pytest.mark.oracle
@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("target", TARGETS)
def test_target_golden_units_verify(target: str, variant: str) -> None:
    folder = _folder(target, variant)
    services = sorted(folder.glob("*.service"))
    if services:
        assert_verifies(services)
    if sorted(folder.glob("*.container")):
        result = run_quadlet_dir(folder).check()
        argv = result.service("perfsonar-testpoint.service").exec_argv()
        assert argv[-1].startswith("ghcr.io/perfsonar/testpoint:")
    assert services or sorted(folder.glob("*.container"))


@pytest.mark.parametrize("target", ["3.0.1", "3.4.4"])
def test_generate_writes_the_default_for_podman_3_and_loses_nothing(
    target: str, tmp_path: Path
) -> None:
    """The command as an operator on Debian 11 / Ubuntu 22.04 types it, on the preset."""
    from tests.unit.test_cli_generate import run

    cfg, out = tmp_path / "psquadlet.toml", tmp_path / "out"
    cfg.write_text(init_text("systemd"), encoding="utf-8")
    result = run("generate", "-c", str(cfg), "-o", str(out), "--podman-version", target)
    assert result.exit_code == 0, result.output + result.stderr
    assert "perfsonar-testpoint.service" in {p.name for p in out.iterdir()}
    unit = (out / "perfsonar-testpoint.service").read_text()
    assert "--health-cmd=" in unit
    assert "--health-on-failure" not in unit
    assert "psquadlet-health.timer" in unit  # Wants=, beside the watcher
    # The one thing that differs from a newer Podman, said: no Quadlet.
    assert f"the Podman {target} has no Quadlet" in result.stderr
    assert "on_failure" not in result.stderr  # the preset asks nothing that is left out
