"""Issue 11, item 1: the README, followed literally on a fresh booted Debian 13 root, gives a
testpoint that upgrades itself.

The working tree is copied in as an operator's clone would be, and the README's first line and
its "Quick start" block are run verbatim (read from README.md here, so they cannot drift). The
test bed has no Internet: a configuration points the testpoint at the loopback registry with a
short `interval`, and pip is told through its environment to take setuptools from Debian's
wheel folder instead of PyPI (every other dependency is a Debian package the venv sees).
Then a new stand-in is pushed, and the watcher that `generate` switched on adopts it with no
further command.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.operator.test_packages import deb  # noqa: F401 - the module-scoped .deb fixture
from tests.support.images import StandIns
from tests.support.registry import Registry
from tests.support.testbed import GIT_LS, TestBed, short_health_toml

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
CLONE = "/root/psquadlet"
UNIT = "perfsonar-testpoint"
SERVICE = f"{UNIT}.service"
WATCH = "psquadlet-watch.service"
CONFIG = "/etc/psquadlet/psquadlet.toml"
TAG = "perfsonar/testpoint:systemd"
OFFLINE = {
    "PIP_NO_INDEX": "1",
    "PIP_FIND_LINKS": "/usr/share/python-wheels",  # python3-setuptools-whl: the build backend
    "PIP_DISABLE_PIP_VERSION_CHECK": "1",
    "DEBIAN_FRONTEND": "noninteractive",
}


def readme_commands(text: str) -> tuple[str, str]:
    """(the first line's command, the Quick start's shell block), as the README gives them."""
    first = re.search(r"^1\. Install and run the main job[^\n]*: `([^`\n]+)`$", text, re.M)
    quick = re.search(r"^## Quick start\n.*?^```sh\n(.*?)^```$", text, re.M | re.S)
    assert first is not None, "README: the first line's command not found"
    assert quick is not None, "README: no sh block in the Quick start"
    return first.group(1), quick.group(1)


def test_the_readme_commands_are_found() -> None:
    first, quick = readme_commands((REPO / "README.md").read_text())
    assert "psquadlet generate" in first
    assert "systemctl start perfsonar-testpoint" in quick


def clone_into(tb: TestBed, inner: str) -> None:
    """The files `git clone` would give (tracked and untracked, not ignored), uncommitted too."""
    listed = subprocess.run(
        [*GIT_LS, "-C", str(REPO), "ls-files", "-z", "-co", "--exclude-standard"],
        capture_output=True,
        check=True,
    ).stdout.split(b"\0")
    dest = tb.path(inner)
    for raw in listed:
        rel = raw.decode()
        src = REPO / rel
        if rel and src.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)


def run_verbatim(tb: TestBed, script: str) -> str:
    res = tb.run(["/bin/sh", "-ec", f"cd {CLONE}\n{script}"], env=OFFLINE, timeout=600)
    return res.stdout


def config_text(registry_host: str) -> str:
    return f"""\
[registries."{registry_host}"]
tls_verify = false

[containers.{UNIT}]
preset = "perfsonar-testpoint"
image = "{registry_host}/{TAG}"

[containers.{UNIT}.update]
interval = "5s"
randomized_delay = "0s"
health_timeout = "60s"
# The preset's health check with test-sized times (its minutes would only be slow here).
{short_health_toml(UNIT)}"""


def active(tb: TestBed, unit: str) -> bool:
    return tb.systemctl("is-active", unit, check=False).stdout.strip() == "active"


def watcher_state(tb: TestBed) -> dict[str, Any]:
    path = tb.path("/var/lib/psquadlet/state.json")
    try:
        return json.loads(path.read_text())["containers"].get(UNIT, {})  # type: ignore[no-any-return]
    except (OSError, ValueError, KeyError):
        return {}


def running_digest(tb: TestBed) -> str:
    res = tb.podman("inspect", UNIT, "--format", "{{.ImageDigest}}", check=False)
    return res.stdout.strip() if res.returncode == 0 else ""


def test_readme_on_a_fresh_root_upgrades_itself(e2e_registry: Registry, standins: StandIns) -> None:
    first, quick = readme_commands((REPO / "README.md").read_text())
    old = standins.push("systemd", "1.0", TAG)
    with TestBed(name=f"psq-readme-{os.getpid()}", registries=(e2e_registry.host,)) as tb:
        # A fresh operator host: no psquadlet, no venv (the cached root provisions one).
        tb.sh("rm -rf /opt/psquadlet /usr/local/bin/psquadlet /usr/local/src/psquadlet")
        clone_into(tb, CLONE)
        tb.write(CONFIG, config_text(e2e_registry.host))

        run_verbatim(tb, first)
        assert tb.path(f"/etc/containers/systemd/{UNIT}.container").is_file()
        watch_unit = tb.path(f"/etc/systemd/system/{WATCH}").read_text()
        # The venv's python (pip's entry point names bin/python3), not the system's.
        assert re.search(
            r"^ExecStart=/opt/psquadlet/bin/python3? -m psquadlet watch$", watch_unit, re.M
        )

        run_verbatim(tb, quick)
        assert active(tb, SERVICE)
        tb.wait_for(lambda: active(tb, WATCH), 60, "the watcher, started by the testpoint")
        wants_link = tb.path(f"/etc/systemd/system/multi-user.target.wants/{WATCH}")
        assert not wants_link.is_symlink()  # no enable symlink: the testpoint's Wants= did it
        assert running_digest(tb) == old

        status = json.loads(tb.run(["psquadlet", "status", "--json"]).stdout)
        (entry,) = [c for c in status["containers"] if c["name"] == UNIT]
        assert entry["next_check"], status
        assert "next check:" in tb.run(["psquadlet", "status"]).stdout

        new = standins.push("systemd", "2.0", TAG)
        assert new != old

        def upgraded() -> bool:  # the pass finished: pulled, restarted, health-gated
            entry = watcher_state(tb)
            return entry.get("running_digest") == new and not entry.get("phase")

        tb.wait_for(upgraded, 300, "the watcher to adopt the new image")
        assert running_digest(tb) == new
        assert active(tb, SERVICE)
        history = watcher_state(tb)["history"]
        assert any(h["action"] == "upgraded" and h["to_digest"] == new for h in history)


def test_the_debs_units_are_wanted_not_copied(deb: Path) -> None:  # noqa: F811
    """The .deb keeps working: its /usr/bin/psquadlet uses the units it installed."""
    with TestBed(name=f"psq-readme-deb-{os.getpid()}", registries=()) as tb:
        shutil.copy(deb, tb.path(f"/srv/{deb.name}"))
        tb.run(
            ["apt-get", "install", "-y", "-q", f"/srv/{deb.name}"],
            input="",
            env={"DEBIAN_FRONTEND": "noninteractive"},
        )
        res = tb.run(["psquadlet", "generate", "--reload"])
        assert "using the package's /usr/lib/systemd/system/psquadlet-watch.service" in res.stderr
        assert not tb.path(f"/etc/systemd/system/{WATCH}").exists()
        container = tb.path(f"/etc/containers/systemd/{UNIT}.container").read_text()
        (wanted,) = [ln for ln in container.splitlines() if ln.startswith(f"Wants={WATCH}")]
        assert wanted.split("=", 1)[1].split() == [WATCH, "psquadlet-health.timer"], wanted
        assert not tb.path("/etc/systemd/system/psquadlet-health.timer").exists()
        fragment = tb.systemctl("show", "-p", "FragmentPath", "psquadlet-health.timer").stdout
        assert fragment.strip().endswith("lib/systemd/system/psquadlet-health.timer"), fragment
        wants = tb.systemctl("show", "-p", "Wants", SERVICE).stdout
        assert WATCH in wants.split("=", 1)[1].split()
        fragment = tb.systemctl("show", "-p", "FragmentPath", WATCH).stdout.strip()
        assert fragment.endswith(f"lib/systemd/system/{WATCH}"), fragment
