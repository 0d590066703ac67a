"""Issue 13 on the booted test bed: a testpoint that follows patch releases by itself.

A testpoint on ``v5.2.0-systemd`` with ``track = "patch"`` moves to ``v5.2.1-systemd`` through
the watcher's health gate (a Quadlet drop-in: Podman 5.4 inside), reports ``v5.3.0-systemd``
as available without pulling it, rolls a broken ``v5.2.2-systemd`` back to ``v5.2.1-systemd``,
and still runs ``v5.2.1-systemd`` after a reboot of the test bed.
"""

from __future__ import annotations

import json
from typing import Any

from tests.support.images import StandIns
from tests.support.testbed import TestBed, short_health_toml

UNIT = "perfsonar-testpoint"
SERVICE = f"{UNIT}.service"
WATCH = "psquadlet-watch.service"
CONFIG = "/etc/psquadlet/psquadlet.toml"
STATE = "/var/lib/psquadlet/state.json"
REPO = "perfsonar/testpoint"
DROPIN = f"/etc/containers/systemd/{UNIT}.container.d/50-psquadlet-release.conf"


def state(tb: TestBed) -> dict[str, Any]:
    try:
        return json.loads(tb.path(STATE).read_text())["containers"].get(UNIT, {})  # type: ignore[no-any-return]
    except (OSError, ValueError, KeyError):
        return {}


def running_tag(tb: TestBed) -> str:
    res = tb.podman("inspect", UNIT, "--format", "{{.ImageName}}", check=False)
    return res.stdout.strip().rpartition(":")[2] if res.returncode == 0 else ""


def healthy(tb: TestBed) -> bool:
    res = tb.podman("exec", UNIT, "pscheduler", "troubleshoot", "--quick", check=False)
    return res.returncode == 0


def test_patch_track_adopts_reports_rolls_back_and_survives_a_reboot(
    clean_testbed: TestBed, standins: StandIns
) -> None:
    tb = clean_testbed
    reg = standins.registry
    standins.push("systemd", "1.0", f"{REPO}:v5.2.0-systemd")
    # what upstream also publishes: other variants, the moving tags, a new minor and major
    reg.retag(REPO, "v5.2.0-systemd", "v5.2.0", "v5.3.0-systemd", "v6.0.0-systemd", "systemd")
    tb.write(
        CONFIG,
        f"""\
[registries."{reg.host}"]
tls_verify = false

[containers.{UNIT}]
preset = "perfsonar-testpoint"
image = "{reg.host}/{REPO}:v5.2.0-systemd"

[containers.{UNIT}.update]
track = "patch"
interval = "3s"
randomized_delay = "0s"
health_timeout = "60s"
# The preset's health check with test-sized times (its minutes would only be slow here).
{short_health_toml(UNIT)}""",
    )
    tb.run(["psquadlet", "generate", "-c", CONFIG])
    tb.systemctl("daemon-reload")
    tb.systemctl("start", SERVICE)
    tb.wait_for(lambda: healthy(tb), 90, "the testpoint on v5.2.0-systemd to come up healthy")
    assert running_tag(tb) == "v5.2.0-systemd"

    # 1. a patch release appears: the watcher moves to it by itself, health-gated
    standins.push("systemd", "2.0", f"{REPO}:v5.2.1-systemd")
    tb.systemctl("start", WATCH)
    tb.wait_for(
        lambda: state(tb).get("release_tag") == "v5.2.1-systemd", 240, "v5.2.1-systemd adopted"
    )
    assert running_tag(tb) == "v5.2.1-systemd"
    assert healthy(tb)
    dropin = tb.path(DROPIN).read_text()
    assert f"Image={reg.host}/{REPO}:v5.2.1-systemd" in dropin
    assert f"# base-image: {reg.host}/{REPO}:v5.2.0-systemd" in dropin
    assert "v5.2.0-systemd" in tb.path(CONFIG).read_text()  # the operator's file untouched

    # 2. the new minor is reported, not adopted (nor pulled)
    st = state(tb)
    assert "v5.3.0-systemd" in st["announced_tags"]
    assert any(
        h["action"] == "available" and h["to_digest"] == "v5.3.0-systemd" for h in st["history"]
    )
    images = tb.podman("images", "--format", "{{.Tag}}").stdout.split()
    assert "v5.3.0-systemd" not in images
    status = tb.run(["psquadlet", "status", "-c", CONFIG]).stdout
    assert "v5.2.1-systemd, adopted" in status
    assert "v5.3.0-systemd" in status

    # 3. a broken patch release is rolled back to v5.2.1-systemd and never tried again
    standins.push("systemd", "3.0", f"{REPO}:v5.2.2-systemd", broken=True)
    tb.wait_for(
        lambda: "v5.2.2-systemd" in state(tb).get("rejected_tags", []),
        300,
        "v5.2.2-systemd rolled back",
    )
    tb.systemctl("stop", WATCH)
    assert state(tb)["release_tag"] == "v5.2.1-systemd"
    assert running_tag(tb) == "v5.2.1-systemd"
    assert f"Image={reg.host}/{REPO}:v5.2.1-systemd" in tb.path(DROPIN).read_text()

    # 4. a reboot of the test bed: the unit comes back on v5.2.1-systemd
    tb.reboot()
    tb.wait_for(
        lambda: tb.systemctl("is-active", SERVICE, check=False).stdout.strip() == "active",
        180,
        f"{SERVICE} active after the reboot",
    )
    tb.wait_for(lambda: healthy(tb), 120, "the testpoint healthy after the reboot")
    assert running_tag(tb) == "v5.2.1-systemd"
