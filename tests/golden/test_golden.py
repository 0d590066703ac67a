"""Golden files: every example configuration, rendered in both formats, byte for byte.

Regenerate after an intended change with ``PSQUADLET_UPDATE_GOLDEN=1 pytest tests/golden``
and review the diff. The oracle-marked tests feed the same golden files to Podman's own
Quadlet generator and to ``systemd-analyze verify``, so the files checked in are known to be
read the way they are meant.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from psquadlet import __version__
from psquadlet.config import parse_config
from psquadlet.render import render_units
from tests.support.oracle import assert_verifies, run_quadlet_dir

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "examples").glob("*.toml"))
GOLDEN = ROOT / "tests" / "golden"
FORMATS = ("quadlet", "service")
TARGET = (5, 4, 2)  # the oracle's Podman


def _is_user(example: Path) -> bool:
    return example.stem.startswith("user")


def _render(example: Path, fmt: str) -> dict[str, str]:
    config = parse_config(example.read_text(encoding="utf-8"), f"examples/{example.name}")
    units = render_units(config, fmt, TARGET, user=_is_user(example))
    # The version is in the marker line; keep golden files stable across releases.
    return {
        u.filename: u.text.replace(f"psquadlet {__version__} from", "psquadlet VERSION from", 1)
        for u in units
    }


def test_the_examples_cover_what_the_issue_asks() -> None:
    names = {e.stem for e in EXAMPLES}
    assert {"default", "testpoint-systemd", "testpoint-supervisord", "maximal"} <= names
    assert any(_is_user(e) for e in EXAMPLES)


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.stem)
def test_golden(example: Path, fmt: str) -> None:
    rendered = _render(example, fmt)
    folder = GOLDEN / example.stem / fmt
    if os.environ.get("PSQUADLET_UPDATE_GOLDEN") == "1":
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        for name, text in rendered.items():
            (folder / name).write_text(text, encoding="utf-8")
    assert folder.is_dir(), (
        f"no golden files for {example.name}: run with PSQUADLET_UPDATE_GOLDEN=1"
    )
    expected = {p.name: p.read_text(encoding="utf-8") for p in sorted(folder.iterdir())}
    assert sorted(rendered) == sorted(expected)
    for name, text in rendered.items():
        assert text == expected[name], f"{example.stem}/{fmt}/{name} differs from golden"


_VALUE_FLAGS = {"--network", "--tmpfs", "-v", "--volume", "--cap-add", "--name", "--env"}
_ALIASES = {"-v": "--volume", "--net": "--network", "-e": "--env"}


def _flags(argv: list[str]) -> list[str]:
    """podman run arguments as ``--flag=value`` strings, lowercased, whichever spelling."""
    out: list[str] = []
    skip = False
    for index, arg in enumerate(argv):
        if skip:
            skip = False
            continue
        if arg in _VALUE_FLAGS:
            out.append(f"{_ALIASES.get(arg, arg)}={argv[index + 1]}".lower())
            skip = True
        elif arg.startswith("-") and "=" in arg:
            flag, _, value = arg.partition("=")
            out.append(f"{_ALIASES.get(flag, flag)}={value}".lower())
        else:
            out.append(arg.lower())
    return out


SYSTEMD_FLAGS = [
    "--network=host",
    "--tmpfs=/run",
    "--tmpfs=/run/lock",
    "--tmpfs=/tmp",
    "--volume=/sys/fs/cgroup:/sys/fs/cgroup:rw",
    "--cgroupns=host",
    "--cap-add=cap_net_raw",
    "--name=perfsonar-testpoint",
    "--volume=perfsonar-testpoint-psconfig:/etc/perfsonar/psconfig",
    "--tty",
    "--env=tz=utc",
    "ghcr.io/perfsonar/testpoint:systemd",
]
SUPERVISORD_FLAGS = [
    "--network=host",
    "--cap-add=cap_net_raw",
    "--name=perfsonar-testpoint",
    "--volume=perfsonar-testpoint-psconfig:/etc/perfsonar/psconfig",
    "--env=tz=utc",
    "ghcr.io/perfsonar/testpoint:latest",
]
PRESET_EXAMPLES = {
    "default": (SYSTEMD_FLAGS, []),
    "testpoint-systemd": (SYSTEMD_FLAGS, []),
    "testpoint-supervisord": (SUPERVISORD_FLAGS, ["--tmpfs=/run", "--cgroupns=host", "--tty"]),
}


def _check_flags(argv: list[str], wanted: list[str], unwanted: list[str]) -> None:
    flags = _flags(argv)
    missing = [f for f in wanted if f not in flags]
    assert not missing, f"missing {missing} in {argv}"
    present = [f for f in unwanted if f in flags]
    assert not present, f"unexpected {present} in {argv}"
    assert flags[-1].startswith("ghcr.io/perfsonar/testpoint:"), "image must come last"


@pytest.mark.oracle
@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.stem)
def test_quadlet_reads_golden_files(example: Path) -> None:
    folder = GOLDEN / example.stem / "quadlet"
    result = run_quadlet_dir(folder, user=_is_user(example)).check()
    containers = sorted(folder.glob("*.container"))
    assert containers
    for path in containers:
        argv = result.service(f"{path.stem}.service").exec_argv()
        assert argv[:2] == ["/usr/bin/podman", "run"] or "run" in argv
    if example.stem in PRESET_EXAMPLES:
        wanted, unwanted = PRESET_EXAMPLES[example.stem]
        argv = result.service("perfsonar-testpoint.service").exec_argv()
        _check_flags(argv, wanted, unwanted)
        # The named volume unit exists and creates the volume under its plain name.
        volume = result.service("perfsonar-testpoint-psconfig-volume.service").exec_argv()
        assert volume[-1] == "perfsonar-testpoint-psconfig"


@pytest.mark.parametrize("example", sorted(PRESET_EXAMPLES))
def test_service_format_carries_the_upstream_flags(example: str) -> None:
    from tests.support.oracle import parse_unit

    text = (GOLDEN / example / "service" / "perfsonar-testpoint.service").read_text()
    wanted, unwanted = PRESET_EXAMPLES[example]
    _check_flags(parse_unit(text).exec_argv(), wanted, unwanted)


@pytest.mark.oracle
@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.stem)
def test_systemd_verifies_golden_services(example: Path) -> None:
    assert_verifies(sorted((GOLDEN / example.stem / "service").glob("*.service")))


@pytest.mark.parametrize("variant", ["systemd", "supervisord"])
def test_preset_examples_are_what_init_writes(variant: str) -> None:
    from psquadlet.presets import init_text

    example = ROOT / "examples" / f"testpoint-{variant}.toml"
    assert example.read_text(encoding="utf-8") == init_text(variant), (
        f"regenerate with: psquadlet init --variant {variant} - > {example.relative_to(ROOT)}"
    )


@pytest.mark.oracle
def test_quadlet_and_service_formats_run_the_same_image_and_command() -> None:
    """The maximal example's command needs quoting: both formats must hand podman the same
    image and arguments after it."""
    from tests.support.oracle import parse_unit

    config = parse_config((ROOT / "examples" / "maximal.toml").read_text(), "maximal.toml")
    (spec,) = config.containers
    tail = [spec.image, *spec.command]
    quadlet = run_quadlet_dir(GOLDEN / "maximal" / "quadlet").check()
    quadlet_argv = quadlet.service(f"{spec.name}.service").exec_argv()
    service_text = (GOLDEN / "maximal" / "service" / f"{spec.name}.service").read_text()
    service_argv = parse_unit(service_text).exec_argv()
    assert quadlet_argv[-len(tail) :] == tail
    assert service_argv[-len(tail) :] == tail
