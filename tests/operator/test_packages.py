"""The Debian package: built from this tree, installed on a clean Debian root, and run there.

The clean root is a debootstrapped bookworm (minbase plus python3), cached under
/var/cache/psquadlet-tests so that only the first run pays for debootstrap; every test works
on a throw-away copy. apt inside the copy resolves the package's dependencies from the Debian
mirror, which is what proves the Depends line is installable.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import require_programs, require_root, unavailable

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
CACHE = Path(os.environ.get("PSQUADLET_TEST_CACHE", "/var/cache/psquadlet-tests"))
MIRROR = os.environ.get("PSQUADLET_DEBIAN_MIRROR", "http://deb.debian.org/debian")
CLEAN_ROOT = CACHE / "deb-clean-root-bookworm"
BUILD_TOOLS = ("dpkg-buildpackage", "dh", "dh_python3", "debootstrap", "chroot")


def _run(argv: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(argv, capture_output=True, text=True, check=False, **kwargs)  # type: ignore[call-overload]
    assert isinstance(done, subprocess.CompletedProcess)
    if done.returncode != 0:
        pytest.fail(f"{' '.join(argv)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return done


def _clean_root() -> Path:
    """The cached clean root, built once (atomically: a half-built root is never used)."""
    if (CLEAN_ROOT / "usr/bin/python3").exists():
        return CLEAN_ROOT
    building = CACHE / "deb-clean-root-bookworm.building"
    shutil.rmtree(building, ignore_errors=True)
    building.parent.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        [
            "debootstrap",
            "--variant=minbase",
            "--include=python3",
            "bookworm",
            str(building),
            MIRROR,
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        shutil.rmtree(building, ignore_errors=True)
        unavailable(f"debootstrap of a clean root failed: {done.stderr[-2000:]}")
    # debootstrap leaves no package lists: fetch them once, here, for every later copy.
    _run(["chroot", str(building), "apt-get", "update", "-q"])
    building.rename(CLEAN_ROOT)
    return CLEAN_ROOT


@pytest.fixture(scope="module")
def deb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    require_root()
    require_programs(*BUILD_TOOLS)
    out = tmp_path_factory.mktemp("dist")
    done = _run([str(REPO / "packaging" / "build-deb"), str(out)])
    path = Path(done.stdout.strip().splitlines()[-1])
    assert path.is_file(), done.stdout
    return path


@pytest.fixture
def root(tmp_path: Path) -> Iterator[Path]:
    require_root()
    require_programs("debootstrap", "chroot")
    copy = tmp_path / "root"
    _run(["cp", "-a", "--reflink=auto", str(_clean_root()), str(copy)])
    try:
        yield copy
    finally:
        shutil.rmtree(copy, ignore_errors=True)


def test_deb_contents(deb: Path) -> None:
    files = _run(["dpkg-deb", "-c", str(deb)]).stdout
    for expected in (
        "./usr/bin/psquadlet",
        "./usr/lib/python3/dist-packages/psquadlet/cli/operator.py",
        "./etc/psquadlet/psquadlet.toml",
        "./usr/share/man/man1/psquadlet.1.gz",
        "./usr/share/bash-completion/completions/psquadlet",
        "./usr/share/zsh/vendor-completions/_psquadlet",
    ):
        assert expected in files, f"{expected} missing from the package:\n{files}"
    for unit in sorted((REPO / "units").glob("*.[st]*")):
        assert f"./lib/systemd/system/{unit.name}" in files
    control = _run(["dpkg-deb", "-f", str(deb), "Architecture", "Depends"]).stdout
    assert "Architecture: all" in control
    assert "python3-click" in control
    assert "/etc/psquadlet/psquadlet.toml" in _run(["dpkg-deb", "-I", str(deb), "conffiles"]).stdout


def test_deb_installs_on_a_clean_root_and_runs(deb: Path, root: Path) -> None:
    shutil.copy(deb, root / "tmp" / deb.name)
    env = {"DEBIAN_FRONTEND": "noninteractive", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}
    _run(
        [
            "chroot",
            str(root),
            "apt-get",
            "install",
            "-y",
            "-q",
            "--no-install-recommends",
            f"/tmp/{deb.name}",
        ],
        env=env,
    )
    version = _run(["chroot", str(root), "psquadlet", "--version"], env=env).stdout
    from psquadlet import __version__

    assert version.strip() == f"psquadlet, version {__version__}"
    # The packaged default configuration is valid for the packaged psquadlet.
    _run(
        ["chroot", str(root), "psquadlet", "validate", "-c", "/etc/psquadlet/psquadlet.toml"],
        env=env,
    )
    # The man page lists every command; the completion script is the one click generates.
    manpage = _run(
        ["chroot", str(root), "sh", "-c", "zcat /usr/share/man/man1/psquadlet.1.gz"]
    ).stdout
    from psquadlet.cli import COMMANDS

    for name in COMMANDS:
        assert f".SS {name}" in manpage
    completion = (root / "usr/share/bash-completion/completions/psquadlet").read_text()
    assert "_PSQUADLET_COMPLETE=bash_complete" in completion
    # Podman is only recommended: on this root doctor says what to install, and fails.
    doctor = subprocess.run(
        ["chroot", str(root), "psquadlet", "doctor", "--json"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert doctor.returncode == 2, doctor.stderr
    checks = {c["id"]: c for c in json.loads(doctor.stdout)["checks"]}
    assert checks["podman"]["status"] == "fail"
    assert "apt-get install podman" in checks["podman"]["advice"]


def test_rpm_spec_builds_with_config_noreplace(tmp_path: Path) -> None:
    # The EL9 build itself needs an EL9 host; here the spec is built without its
    # BuildRequires (rpmbuild --nodeps) to check the layout and the config marking.
    require_programs("rpmbuild", "rpm")
    done = _run(
        [str(REPO / "packaging" / "build-rpm"), str(tmp_path), "--nodeps"],
        env={**os.environ, "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"},
    )
    rpm = done.stdout.strip().splitlines()[-1]
    flags = _run(["rpm", "-qp", "--qf", "[%{FILEFLAGS:fflags} %{FILENAMES}\n]", rpm]).stdout
    assert "cn /etc/psquadlet/psquadlet.toml" in flags, flags
    files = _run(["rpm", "-qlp", rpm]).stdout.splitlines()
    assert "/usr/bin/psquadlet" in files
    for unit in sorted((REPO / "units").glob("*.[st]*")):
        assert f"/usr/lib/systemd/system/{unit.name}" in files
    requires = _run(["rpm", "-qRp", rpm]).stdout
    assert "python3-click" in requires
    assert "(python3-tomli if python3 < 3.11)" in requires
