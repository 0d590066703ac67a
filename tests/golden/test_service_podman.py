"""The ``--format service`` unit's commands, run by the host's real Podman 4.3.1 (the release
this format exists for): the container starts with the configured flags and values, and the
ExecStop/ExecStopPost lines remove it.

Only ``--cgroups=split`` is swapped for ``enabled``: split needs the cgroup systemd delegates
to a service, and this host has no systemd as PID 1. The unit itself runs under systemd in
the e2e test bed.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from psquadlet.config import parse_config
from psquadlet.render import render_units
from tests.support import require_programs, require_root
from tests.support.oracle import UnitText, parse_unit

NAME = "psq-core-svc"
VOLUME = f"{NAME}-data"
GREETING = 'it\'s 100% "odd" $HOME'


@pytest.fixture
def image() -> Iterator[str]:
    require_root()
    require_programs("podman", "busybox")
    from tests.support.images import build_plain, remove

    stand_in = build_plain("core-svc")
    try:
        yield stand_in.local
    finally:
        subprocess.run(["podman", "rm", "-f", "--ignore", NAME], capture_output=True, check=False)
        subprocess.run(["podman", "volume", "rm", "-f", VOLUME], capture_output=True, check=False)
        remove(stand_in.local)


def _unit(image: str, runtime_dir: Path) -> UnitText:
    config = parse_config(
        f'[containers.{NAME}]\nimage = "{image}"\nnetwork = "none"\ntmpfs = ["/tmp"]\n'
        f'volumes = ["{VOLUME}:/data"]\ntty = true\ncgroupns = "private"\n'
        'cap_add = ["CAP_NET_RAW"]\n'
        "environment = { GREETING = " + '"it\'s 100% \\"odd\\" $HOME"' + " }\n",
        "svc.toml",
    )
    (unit,) = render_units(config, "service")
    text = re.sub(r"(?<!%)%t", str(runtime_dir), unit.text)
    return parse_unit(re.sub(r"(?<!%)%N", NAME, text), unit.filename)


def _run(argv: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, check=False, timeout=120)


@pytest.mark.registry
def test_service_commands_run_under_podman_4_3(image: str, tmp_path: Path) -> None:
    unit = _unit(image, tmp_path)
    (tmp_path / f"{NAME}.cid").write_text("left over from a crash")
    for pre in unit.values("Service", "ExecStartPre"):
        assert _run(parse_unit(f"[S]\nX={pre}").exec_argv("X", "S")).returncode == 0
    argv = [a if a != "--cgroups=split" else "--cgroups=enabled" for a in unit.exec_argv()]
    started = _run(argv)
    assert started.returncode == 0, started.stderr

    inside = _run(["podman", "exec", NAME, "sh", "-c", 'printf %s "$GREETING"; ls -d /data'])
    assert inside.returncode == 0, inside.stderr
    assert inside.stdout == GREETING + "/data\n"
    status = _run(["podman", "exec", NAME, "cat", "/proc/self/status"]).stdout
    (cap_eff,) = [line.split()[1] for line in status.splitlines() if line.startswith("CapEff:")]
    assert int(cap_eff, 16) & (1 << 13), "CAP_NET_RAW (bit 13) missing"

    for key in ("ExecStop", "ExecStopPost"):
        assert _run(unit.exec_argv(key)).returncode == 0
    assert _run(["podman", "container", "exists", NAME]).returncode == 1
