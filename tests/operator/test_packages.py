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
        "./usr/share/doc/psquadlet/examples/psquadlet.toml",
        "./usr/share/psquadlet/vendor/podman/__init__.py",
        "./usr/share/psquadlet/vendor/podman-5.4.0.1.dist-info/LICENSE",
        "./usr/share/man/man1/psquadlet.1.gz",
        "./usr/share/bash-completion/completions/psquadlet",
        "./usr/share/zsh/vendor-completions/_psquadlet",
    ):
        assert expected in files, f"{expected} missing from the package:\n{files}"
    for unit in sorted((REPO / "units").glob("*.[st]*")):
        assert f"./lib/systemd/system/{unit.name}" in files
    # No live configuration: a conffile makes dpkg prompt on a host that already has one.
    assert "./etc/psquadlet/psquadlet.toml" not in files
    conffiles = subprocess.run(
        ["dpkg-deb", "-I", str(deb), "conffiles"], capture_output=True, text=True, check=False
    )
    assert "psquadlet.toml" not in conffiles.stdout
    control = _run(["dpkg-deb", "-f", str(deb), "Architecture", "Depends", "Maintainer"]).stdout
    assert "Architecture: all" in control
    assert "python3-click" in control
    assert "python3-requests" in control  # what the carried podman-py needs
    assert ".example" not in control


def test_units_name_documentation_that_exists() -> None:
    """Documentation= points at the man page the package installs, not an invented URL."""
    for unit in sorted((REPO / "units").glob("psquadlet-*")):
        docs = [ln for ln in unit.read_text().splitlines() if ln.startswith("Documentation=")]
        assert docs == ["Documentation=man:psquadlet(1)"], unit.name


def test_no_invented_addresses_in_packaging() -> None:
    """Maintainer, changelog and URL fields say nothing rather than something made up."""
    for path in [*sorted((REPO / "packaging").rglob("*")), *sorted((REPO / "units").glob("*"))]:
        if path.is_file():
            text = path.read_text()
            assert ".example" not in text, path
            assert "github.com/perfsonar/psquadlet" not in text, path


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
    # The packaged example configuration is valid for the packaged psquadlet.
    example = "/usr/share/doc/psquadlet/examples/psquadlet.toml"
    _run(["chroot", str(root), "psquadlet", "validate", "-c", example], env=env)
    assert not (root / "etc/psquadlet/psquadlet.toml").exists()
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


def _install(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """apt-get install, unattended: no terminal, stdin empty (a conffile prompt fails)."""
    env = {"DEBIAN_FRONTEND": "noninteractive", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}
    argv = ["chroot", str(root), "apt-get", "install", "-y", "-q", "--no-install-recommends"]
    return _run([*argv, *args], env=env, stdin=subprocess.DEVNULL)


def test_deb_installs_unattended_over_an_existing_config(deb: Path, root: Path) -> None:
    shutil.copy(deb, root / "tmp" / deb.name)
    config = root / "etc/psquadlet/psquadlet.toml"
    config.parent.mkdir(parents=True)
    config.write_text("# the operator's own\n[watch]\n")
    _install(root, f"/tmp/{deb.name}")
    assert config.read_text() == "# the operator's own\n[watch]\n"


OLD_CONFFILE = "# psquadlet 0.1.0's packaged configuration\n"


def _old_package(tmp_path: Path) -> Path:
    """What matters here of psquadlet 0.1.0's .deb: it owned /etc/psquadlet/psquadlet.toml."""
    tree = tmp_path / "old"
    (tree / "DEBIAN").mkdir(parents=True)
    (tree / "etc/psquadlet").mkdir(parents=True)
    (tree / "etc/psquadlet/psquadlet.toml").write_text(OLD_CONFFILE)
    (tree / "DEBIAN/conffiles").write_text("/etc/psquadlet/psquadlet.toml\n")
    (tree / "DEBIAN/control").write_text(
        "Package: psquadlet\nVersion: 0.1.0\nArchitecture: all\n"
        "Maintainer: psquadlet maintainers\nDescription: psquadlet 0.1.0 stand-in\n"
    )
    out = tmp_path / "psquadlet_0.1.0_all.deb"
    _run(["dpkg-deb", "--root-owner-group", "--build", str(tree), str(out)])
    return out


@pytest.mark.parametrize("edited", [False, True])
def test_upgrade_from_the_conffile_version(
    deb: Path, root: Path, tmp_path: Path, edited: bool
) -> None:
    """rm_conffile: an untouched 0.1.0 file goes, an operator's edited one stays in place."""
    old = _old_package(tmp_path)
    shutil.copy(old, root / "tmp" / old.name)
    shutil.copy(deb, root / "tmp" / deb.name)
    _run(["chroot", str(root), "dpkg", "-i", f"/tmp/{old.name}"], stdin=subprocess.DEVNULL)
    config = root / "etc/psquadlet/psquadlet.toml"
    if edited:
        config.write_text(OLD_CONFFILE + "[watch]\n")
    _install(root, f"/tmp/{deb.name}")
    status = _run(["chroot", str(root), "dpkg-query", "-W", "-f=${Conffiles}", "psquadlet"])
    assert "psquadlet.toml" not in status.stdout
    if edited:
        assert config.read_text() == OLD_CONFFILE + "[watch]\n"
    else:
        assert not config.exists()
    assert not list(config.parent.glob("*.dpkg-*"))  # nothing left aside


def test_rpm_spec_builds_without_a_live_config(tmp_path: Path) -> None:
    # The EL9 build itself needs an EL9 host; here the spec is built without its
    # BuildRequires (rpmbuild --nodeps) to check the layout and the config marking.
    require_programs("rpmbuild", "rpm")
    done = _run(
        [str(REPO / "packaging" / "build-rpm"), str(tmp_path), "--nodeps"],
        env={**os.environ, "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"},
    )
    rpm = done.stdout.strip().splitlines()[-1]
    flags = _run(["rpm", "-qp", "--qf", "[%{FILEFLAGS:fflags} %{FILENAMES}\n]", rpm]).stdout
    # Owned (an upgrade from 0.1.0 keeps an operator's file in place) but not shipped.
    assert "cng /etc/psquadlet/psquadlet.toml" in flags, flags
    assert "d /usr/share/doc/psquadlet/examples/psquadlet.toml" in flags, flags
    files = _run(["rpm", "-qlp", rpm]).stdout.splitlines()
    assert "/usr/bin/psquadlet" in files
    for unit in sorted((REPO / "units").glob("*.[st]*")):
        assert f"/usr/lib/systemd/system/{unit.name}" in files
    requires = _run(["rpm", "-qRp", rpm]).stdout
    assert "python3-click" in requires
    assert "(python3-tomli if python3 < 3.11)" in requires
