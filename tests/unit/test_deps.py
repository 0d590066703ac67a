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
from psquadlet.errors import UsageError

REPO = Path(__file__).resolve().parents[2]
UNITS = REPO / "units"


def _psquadlet_without(
    module: str, *args: str, tmp_path: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    code = (
        f"import sys; sys.modules[{module!r}] = None\n"
        "from psquadlet.cli import main\n"
        f"sys.argv = ['psquadlet', *{list(args)!r}]\n"
        "main()\n"
    )
    clean = {k: v for k, v in os.environ.items() if k != deps.SYSTEMD_ADAPTER_ENV}
    return subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        env={**clean, "PYTHONPATH": str(REPO), **(env or {})},
        check=False,
    )


FORCE_PYSTEMD = {deps.SYSTEMD_ADAPTER_ENV: "pystemd"}


@pytest.mark.parametrize(
    ("module", "package", "env"),
    [
        ("pystemd", "python3-pystemd", FORCE_PYSTEMD),  # only when asked for: see below
        ("podman", "python3-podman", {}),
        ("requests", "python3-requests", {}),
    ],
)
@pytest.mark.parametrize("command", [["upgrade", "--dry-run"], ["watch"]])
def test_missing_module_is_one_line_naming_the_package(
    tmp_path: Path, module: str, package: str, env: dict[str, str], command: list[str]
) -> None:
    state = ["--state-dir", str(tmp_path / "state")]
    res = _psquadlet_without(module, *command, *state, tmp_path=tmp_path, env=env)
    assert res.returncode == deps.EXIT_MISSING_DEPENDENCY == 5, res.stderr
    assert "Traceback" not in res.stderr
    lines = res.stderr.splitlines()
    assert len(lines) == 1, res.stderr
    assert lines[0].startswith("psquadlet: error: the watcher needs the Python module")
    assert f"install the package {package}" in lines[0]


def test_without_pystemd_the_watcher_uses_busctl(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """pystemd is optional (issue 18 item 3): missing, it is busctl, not exit 5."""
    monkeypatch.delenv(deps.SYSTEMD_ADAPTER_ENV, raising=False)
    monkeypatch.setattr(sys, "path", list(sys.path))
    assert deps.systemd_adapter(tmp_path) == deps.PYSTEMD  # the test venv has it
    assert deps.require_watch_deps(tmp_path) == deps.PYSTEMD
    monkeypatch.setitem(sys.modules, "pystemd", None)
    assert deps.systemd_adapter(tmp_path) == deps.BUSCTL
    assert deps.require_watch_deps(tmp_path) == deps.BUSCTL


def test_the_adapter_can_be_forced_and_a_bad_name_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(deps.SYSTEMD_ADAPTER_ENV, "busctl")
    assert deps.require_watch_deps(tmp_path) == deps.BUSCTL
    monkeypatch.setenv(deps.SYSTEMD_ADAPTER_ENV, "dbus-python")
    with pytest.raises(UsageError, match="PSQUADLET_SYSTEMD_ADAPTER='dbus-python': must be one"):
        deps.systemd_adapter(tmp_path)


def test_upgrade_without_pystemd_does_not_stop_at_the_dependency_check(tmp_path: Path) -> None:
    """The same command that exited 5 before gets past the check now; the pass then fails
    at its registry (loopback, nothing listening): a runtime error, exit 1, not 5."""
    config = tmp_path / "psquadlet.toml"
    config.write_text(
        '[registries."127.0.0.1:9"]\ntls_verify = false\n'
        '[containers.t]\nimage = "127.0.0.1:9/psq/absent:1"\n'
    )
    res = _psquadlet_without(
        "pystemd",
        *("upgrade", "--dry-run", "-c", str(config), "--state-dir", str(tmp_path / "state")),
        *("--podman-url", "unix:///nonexistent/podman.sock"),
        *("--dbus-address", "unix:path=/nonexistent/bus"),
        tmp_path=tmp_path,
    )
    assert res.returncode == 1, res.stderr
    assert "Traceback" not in res.stderr
    assert "127.0.0.1:9: connection refused" in res.stderr
    assert "pystemd" not in res.stderr


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
    monkeypatch.setenv(deps.SYSTEMD_ADAPTER_ENV, "pystemd")
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
