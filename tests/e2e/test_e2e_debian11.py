"""Debian 11 booted for real (issue 18 item 2): Podman 3.0.1, systemd 247, Python 3.9.

Debian 11 stands in for the Podman 3 family (Ubuntu 22.04 has 3.4.4 and cannot be fetched
here). The root is ``tests/support/bullseye.py``'s, booted like the Debian 13 test bed;
psquadlet is installed as an operator there would (a venv over bullseye's python3-pystemd
and python3-requests, click/tomli/podman-py as wheels). One boot serves the module; the
tests run in file order, each from no psquadlet units (``remove_psquadlet_units``).

What runs: ``generate`` of the preset (the plain ``.service``, no ``--health-on-failure``), the
unit verified by systemd 247 and started, a reboot, an upgrade to a new stand-in pushed to the
loopback registry and a rollback from a broken one (one ``psquadlet upgrade`` pass each,
through podman-py and pystemd 0.7.0 against Podman 3.0.1's API), and Podman 3's own health
check turning ``unhealthy``, then restarted by psquadlet's health supervisor (``psquadlet
heal``), which stands in for ``--health-on-failure`` below 4.3.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.e2e.conftest import booted, fresh
from tests.support import require_programs, require_root
from tests.support.bullseye import bullseye_root
from tests.support.images import StandIns
from tests.support.registry import Registry
from tests.support.testbed import TestBed, short_health_toml

UNIT = "perfsonar-testpoint"
SERVICE = f"{UNIT}.service"
CONFIG = "/etc/psquadlet/psquadlet.toml"
TAG = "perfsonar/testpoint:systemd"
UNIT_FILE = f"/etc/systemd/system/{SERVICE}"


@pytest.fixture(scope="module")
def bullseye(e2e_registry: Registry) -> Iterator[TestBed]:
    require_root()
    require_programs("systemd-nspawn", "nsenter", "debootstrap")
    tb = TestBed(
        name=f"psq-deb11-{int(time.time())}",
        registries=(e2e_registry.host,),
        lower=bullseye_root,
    )
    yield from booted(tb, "Debian 11")


@pytest.fixture
def deb11(bullseye: TestBed) -> Iterator[TestBed]:
    yield from fresh(bullseye)


def config_text(registry_host: str) -> str:
    return f"""\
[registries."{registry_host}"]
tls_verify = false

[containers.{UNIT}]
preset = "perfsonar-testpoint"
image = "{registry_host}/{TAG}"

[containers.{UNIT}.update]
health_timeout = "30s"

{short_health_toml(UNIT)}"""


def healthy(tb: TestBed) -> bool:
    res = tb.podman("exec", UNIT, "pscheduler", "troubleshoot", "--quick", check=False)
    return res.returncode == 0


def active(tb: TestBed) -> bool:
    return tb.systemctl("is-active", SERVICE, check=False).stdout.strip() == "active"


def running_digests(tb: TestBed) -> str:
    """The running image's digests. Podman 3's container inspect has no ``ImageDigest``
    (4.x's): the image's ``Digest`` and ``RepoDigests`` say it, as the watcher reads them."""
    image = tb.podman("inspect", UNIT, "--format", "{{.Image}}", check=False).stdout.strip()
    if not image:
        return ""
    res = tb.podman(
        "image", "inspect", image, "--format", "{{.Digest}} {{.RepoDigests}}", check=False
    )
    return res.stdout if res.returncode == 0 else ""


def runs(tb: TestBed, digest: str) -> bool:
    return digest in running_digests(tb)


def start_testpoint(tb: TestBed, standins: StandIns) -> tuple[str, str]:
    """Generate the preset's unit, enable and start it; (digest, generate's stderr)."""
    digest = standins.push("systemd", "1.0", TAG)
    tb.write(CONFIG, config_text(standins.registry.host))
    res = tb.run(["psquadlet", "generate", "-c", CONFIG])
    tb.systemctl("daemon-reload")
    tb.systemctl("enable", "--now", SERVICE)
    tb.wait_for(lambda: active(tb) and healthy(tb), 180, "the testpoint to come up healthy")
    assert runs(tb, digest), running_digests(tb)
    return digest, res.stderr


def upgrade_pass(tb: TestBed) -> dict[str, Any]:
    res = tb.run(["psquadlet", "upgrade", "--unit", UNIT, "--json", "-c", CONFIG], check=False)
    assert res.returncode in (0, 1), f"upgrade crashed ({res.returncode}):\n{res.stderr}"
    report = json.loads(res.stdout)
    [outcome] = [o for o in report["containers"] if o["name"] == UNIT]
    return outcome  # type: ignore[no-any-return]


def test_debian11_is_the_podman_3_family(bullseye: TestBed) -> None:
    out = bullseye.sh("podman --version; systemctl --version | head -1; python3 --version")
    assert "podman version 3.0.1" in out
    assert "systemd 247" in out
    assert "Python 3.9." in out


def test_generate_start_and_reboot(deb11: TestBed, standins: StandIns) -> None:
    tb = deb11
    digest, said = start_testpoint(tb, standins)
    # --format auto on Podman 3.0.1: the plain .service, and what it left out is said.
    assert "Podman 3.0.1 has no Quadlet" in said
    assert "on_failure" not in said  # the preset asks Podman for no action: nothing is lost
    text = tb.path(UNIT_FILE).read_text()
    assert "--health-cmd=" in text
    assert "--health-on-failure" not in text
    assert "psquadlet-health.timer" in text  # Wants=: psquadlet heal acts on an unhealthy one
    verify = tb.run(["systemd-analyze", "verify", UNIT_FILE], check=False)
    assert verify.returncode == 0, verify.stderr
    assert verify.stdout + verify.stderr == ""
    # Podman 3 runs the health check itself (a systemd timer per container).
    assert tb.podman("healthcheck", "run", UNIT, check=False).returncode == 0
    # doctor names the path this host takes.
    doctor = json.loads(tb.run(["psquadlet", "doctor", "--json"], check=False).stdout)
    (stack,) = [c for c in doctor["checks"] if c["id"] == "stack"]
    assert stack["items"][0]["family"] == "Podman 3"
    assert stack["items"][0]["format"] == "service"
    assert str(stack["items"][0]["health_kill"]).startswith(
        f"{UNIT}: psquadlet's health supervisor"
    )

    tb.reboot()
    tb.wait_for(lambda: active(tb) and healthy(tb), 180, "the testpoint after the reboot")
    assert runs(tb, digest), running_digests(tb)


def test_upgrade_then_rollback_of_a_broken_image(deb11: TestBed, standins: StandIns) -> None:
    tb = deb11
    old, _said = start_testpoint(tb, standins)
    new = standins.push("systemd", "2.0", TAG)
    assert new != old
    outcome = upgrade_pass(tb)
    assert outcome["action"] == "upgraded", outcome
    tb.wait_for(lambda: runs(tb, new) and healthy(tb), 90, "the 2.0 container")
    assert active(tb)

    broken = standins.push("systemd", "3.0", TAG, broken=True)
    outcome = upgrade_pass(tb)
    assert outcome["action"] == "rolled-back", outcome
    tb.wait_for(lambda: runs(tb, new) and healthy(tb), 90, "2.0 back after rollback")
    assert active(tb)
    state = json.loads(tb.path("/var/lib/psquadlet/state.json").read_text())
    bad = [b["digest"] for b in state["containers"][UNIT]["bad_digests"]]
    assert broken in bad
    # status reads the same through Podman 3's API and systemd 247.
    res = tb.run(["psquadlet", "status", "--json", "-c", CONFIG], check=False)
    [status] = [c for c in json.loads(res.stdout)["containers"] if c["name"] == UNIT]
    assert broken in [b["digest"] for b in status["blocked"]]


def test_podman_3_health_check_turns_unhealthy(deb11: TestBed, standins: StandIns) -> None:
    """Podman 3.0.1 marks the container unhealthy after ``retries`` failed checks (its inspect
    field is ``.State.Healthcheck``); below 4.3 nothing of Podman's kills it, and psquadlet's
    health supervisor (``psquadlet heal``, issue 17) restarts it within its budget."""
    tb = deb11
    start_testpoint(tb, standins)

    def container_id() -> str:
        res = tb.podman("inspect", UNIT, "--format", "{{.Id}}", check=False)
        return res.stdout.strip() if res.returncode == 0 else ""

    def status() -> str:
        res = tb.podman("inspect", UNIT, "--format", "{{.State.Healthcheck.Status}}", check=False)
        return res.stdout.strip()

    first = container_id()
    tb.podman("exec", UNIT, "systemctl", "stop", "psq-demo.service")
    tb.wait_for(lambda: status() == "unhealthy", 120, "Podman 3 to mark the container unhealthy")
    assert active(tb)
    # One round now (psquadlet-health.timer runs one a minute; either may act first).
    tb.run(["psquadlet", "heal", "-c", CONFIG], check=False)
    tb.wait_for(
        lambda: container_id() not in ("", first) and active(tb) and healthy(tb),
        180,
        "psquadlet heal to restart the unhealthy testpoint",
    )
    state = json.loads(tb.path("/var/lib/psquadlet/health.json").read_text())
    assert UNIT in json.dumps(state), state
