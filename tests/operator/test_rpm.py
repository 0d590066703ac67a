"""The RPM for Enterprise Linux 9 and 10, built here (packaging/build-rpm --el N --nodeps).

No EL host can be booted here, so the package is checked as far as rpm itself can: installed
into an ``rpm --root`` tree (its own rpmdb) and verified there, its file list laid out for
that release's Python, its scriptlets plain shell (the systemd macros written out), its
dependencies named as EL names them, and Debian's rpmlint clean but for the findings
packaging/rpm/rpmlint.toml justifies. The installed tree is then run by the host's Python.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import require_programs, require_root

REPO = Path(__file__).resolve().parents[2]
PYTHON = {"9": "3.9", "10": "3.12"}  # EL9's and EL10's python3
UNITS = sorted(p.name for p in (REPO / "units").glob("*.[st]*"))


def _run(argv: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(argv, capture_output=True, text=True, check=False, **kwargs)  # type: ignore[call-overload]
    assert isinstance(done, subprocess.CompletedProcess)
    if done.returncode != 0:
        pytest.fail(f"{' '.join(argv)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return done


@pytest.fixture(scope="module", params=sorted(PYTHON))
def rpm(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> tuple[str, Path]:
    require_programs("rpmbuild", "rpm")
    el = str(request.param)
    out = tmp_path_factory.mktemp(f"el{el}")
    done = _run(
        [str(REPO / "packaging" / "build-rpm"), str(out), "--el", el, "--nodeps"],
        env={**os.environ, "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"},
    )
    path = Path(done.stdout.strip().splitlines()[-1])
    assert path.name.endswith(f".el{el}.noarch.rpm"), path
    return el, path


def test_installs_into_an_rpm_root_laid_out_for_the_release(
    rpm: tuple[str, Path], tmp_path: Path
) -> None:
    require_root()
    el, path = rpm
    root = tmp_path / "root"
    _run(["rpm", "--root", str(root), "--initdb"])
    # --nodeps: the root holds no python3 or systemd to satisfy them; --noscripts: it has no
    # /bin/sh to run them in (the scriptlets are checked below).
    _run(["rpm", "--root", str(root), "--nodeps", "--noscripts", "-i", str(path)])
    files = _run(["rpm", "--root", str(root), "-ql", "psquadlet"]).stdout.splitlines()
    sitelib = f"/usr/lib/python{PYTHON[el]}/site-packages"
    allowed = (f"{sitelib}/psquadlet", "/usr/bin/psquadlet", "/usr/lib/systemd/system/",
               "/usr/share/man/man1/psquadlet.1.gz", "/usr/share/bash-completion/",
               "/usr/share/zsh/site-functions/", "/usr/share/doc/psquadlet/",
               "/etc/psquadlet")  # fmt: skip
    assert [f for f in files if not f.startswith(allowed)] == []
    for unit in UNITS:
        assert f"/usr/lib/systemd/system/{unit}" in files
    assert f"{sitelib}/psquadlet/watch/busctl_units.py" in files
    assert not any("cpython-3" in f and PYTHON[el].replace(".", "") not in f for f in files)
    # Every file is in the root as rpm recorded it (the ghost config is owned, not shipped).
    _run(["rpm", "--root", str(root), "-V", "--nodeps", "psquadlet"])
    assert not (root / "etc/psquadlet/psquadlet.toml").exists()
    # The installed tree is complete: the host's Python runs it.
    version = _run(
        [sys.executable, "-m", "psquadlet", "--version"],
        env={**os.environ, "PYTHONPATH": str(root / sitelib.lstrip("/"))},
        cwd=tmp_path,
    )
    assert version.stdout.strip().endswith(
        _run(["rpm", "-qp", "--qf", "%{VERSION}", str(path)]).stdout
    )
    _run(["rpm", "--root", str(root), "--nodeps", "--noscripts", "-e", "psquadlet"])
    assert not (root / "usr/bin/psquadlet").exists()


def test_scriptlets_are_the_expanded_systemd_macros(rpm: tuple[str, Path], tmp_path: Path) -> None:
    _, path = rpm
    scripts = _run(["rpm", "-qp", "--scripts", str(path)]).stdout
    assert "%" not in scripts, scripts  # no macro left unexpanded
    bodies: dict[str, str] = {}
    current = ""
    for line in scripts.splitlines():
        if line.endswith("scriptlet (using /bin/sh):"):
            current = line.split()[0]
            bodies[current] = ""
        else:
            bodies[current] += line + "\n"
    assert sorted(bodies) == ["postinstall", "preuninstall"]
    helper = "/usr/lib/systemd/systemd-update-helper"
    units = " ".join(
        [
            "psquadlet-watch.service",
            "psquadlet-upgrade.service",
            "psquadlet-upgrade.timer",
            "psquadlet-health.service",
            "psquadlet-health.timer",
        ]
    )
    assert f'if [ $1 -eq 1 ] && [ -x "{helper}" ]' in bodies["postinstall"]
    assert f"{helper} install-system-units {units} || :" in bodies["postinstall"]
    assert f'if [ $1 -eq 0 ] && [ -x "{helper}" ]' in bodies["preuninstall"]
    assert f"{helper} remove-system-units {units} || :" in bodies["preuninstall"]
    assert set(units.split()) == set(UNITS) - {u for u in UNITS if not u.startswith("psquadlet-")}
    for name, body in bodies.items():
        script = tmp_path / name
        script.write_text(body)
        _run(["sh", "-n", str(script)])
        # An upgrade (1 = one package left after it) never touches the units, nor does a
        # host without the helper: both run to a clean exit.
        for arg in ("1", "2", "0"):
            assert subprocess.run(["sh", str(script), arg], check=False).returncode == 0


def test_dependencies_are_named_as_el_names_them(rpm: tuple[str, Path]) -> None:
    el, path = rpm
    requires = _run(["rpm", "-qRp", str(path)]).stdout.splitlines()
    assert f"python(abi) = {PYTHON[el]}" in requires
    assert "python3-click" in requires
    assert "(python3-tomli if python3 < 3.11)" in requires
    weak = _run(["rpm", "-qp", "--recommends", "--suggests", str(path)]).stdout.split()
    assert "podman" in weak
    assert "python3-podman" in weak
    assert not [r for r in requires + weak if "pystemd" in r]  # not in EL/EPEL: busctl instead
    order = _run(["rpm", "-qp", "--qf", "[%{ORDERNAME} %{ORDERFLAGS:deptype}\n]", str(path)])
    assert order.stdout.splitlines() == ["systemd post", "systemd preun"]


def test_rpmlint_finds_nothing_unjustified(rpm: tuple[str, Path]) -> None:
    require_programs("rpmlint")
    _, path = rpm
    config = REPO / "packaging" / "rpm" / "rpmlint.toml"
    res = subprocess.run(
        ["rpmlint", "-c", str(config), str(path)], capture_output=True, text=True, check=False
    )
    assert res.returncode == 0, res.stdout + res.stderr
    assert "0 errors, 0 warnings" in res.stdout, res.stdout
