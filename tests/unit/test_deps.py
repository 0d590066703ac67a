"""A missing watcher dependency: one line naming the package, exit code 5, no traceback.

The commands run in a real subprocess with the module blocked (``sys.modules[name] = None``
is how Python itself marks a module as unimportable), so what is checked is exactly what
systemd sees: the exit status that RestartPreventExitStatus= in psquadlet-watch.service
names, and the one line in the journal.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from psquadlet import deps

REPO = Path(__file__).resolve().parents[2]
UNITS = REPO / "units"


def _psquadlet_without(module: str, *args: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    code = (
        f"import sys; sys.modules[{module!r}] = None\n"
        "from psquadlet.cli import main\n"
        f"sys.argv = ['psquadlet', *{list(args)!r}]\n"
        "main()\n"
    )
    return subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        check=False,
    )


@pytest.mark.parametrize(
    ("module", "package"),
    [
        ("pystemd", "python3-pystemd"),
        ("podman", "python3-podman"),
        ("requests", "python3-requests"),
    ],
)
@pytest.mark.parametrize("command", [["upgrade", "--dry-run"], ["watch"]])
def test_missing_module_is_one_line_naming_the_package(
    tmp_path: Path, module: str, package: str, command: list[str]
) -> None:
    state = ["--state-dir", str(tmp_path / "state")]
    res = _psquadlet_without(module, *command, *state, tmp_path=tmp_path)
    assert res.returncode == deps.EXIT_MISSING_DEPENDENCY == 5, res.stderr
    assert "Traceback" not in res.stderr
    lines = res.stderr.splitlines()
    assert len(lines) == 1, res.stderr
    assert lines[0].startswith("psquadlet: error: the watcher needs the Python module")
    assert f"install the package {package}" in lines[0]


def test_other_commands_do_not_need_the_watcher_modules(tmp_path: Path) -> None:
    res = _psquadlet_without("pystemd", "generate", "--dry-run", tmp_path=tmp_path)
    assert res.returncode == 0, res.stderr


def test_vendor_dir_comes_after_the_systems_packages(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The .deb's podman-py is a fallback: a python3-podman or a venv's podman-py wins."""
    monkeypatch.setattr(sys, "path", list(sys.path))
    deps.require_watch_deps(tmp_path)
    assert sys.path[-1] == str(tmp_path)
    deps.require_watch_deps(tmp_path)
    assert sys.path.count(str(tmp_path)) == 1
    missing = tmp_path / "absent"
    deps.require_watch_deps(missing)
    assert str(missing) not in sys.path


def test_vendored_module_is_found(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.setitem(sys.modules, "pystemd", None)
    with pytest.raises(deps.MissingDependencyError) as err:
        deps.require_watch_deps(tmp_path)
    assert err.value.package == "python3-pystemd"
    monkeypatch.delitem(sys.modules, "pystemd")
    monkeypatch.setattr(deps, "WATCH_MODULES", (("psq_vendored_probe", "python3-x", "x"),))
    with pytest.raises(deps.MissingDependencyError):
        deps.require_watch_deps(tmp_path)
    (tmp_path / "psq_vendored_probe.py").write_text("")
    deps.require_watch_deps(tmp_path)


def test_watch_unit_does_not_restart_on_the_missing_dependency_status() -> None:
    text = (UNITS / "psquadlet-watch.service").read_text()
    assert "Restart=on-failure" in text
    assert f"RestartPreventExitStatus={deps.EXIT_MISSING_DEPENDENCY}\n" in text
