"""Issue 14: a fleet of three booted hosts run by the collection over a real connection.

tp1 (the canary) and tp2 are Debian 13 (systemd 257, Podman 5.4, Quadlet), tp3 is Debian 12
(systemd 252, Podman 4.3.1: the `.service` format). Ansible reaches each through
`community.docker.nsenter`; each host installs the .deb. The scenarios run in order on the
same hosts: the role, then a good roll-out, then a bad one.
"""

from __future__ import annotations

import hashlib
import time
from pathlib import Path
from typing import Any

import pytest

from tests.support.fleet import Fleet, digests
from tests.support.images import StandIns

HERE = Path(__file__).parent
SITE = HERE / "site.yml"
UPGRADE = Path(__file__).resolve().parents[2] / "packaging/ansible/playbooks/upgrade.yml"
UNIT = "perfsonar-testpoint"
TAG = "perfsonar/testpoint:systemd"
CONFIG = "/etc/psquadlet/psquadlet.toml"
HOSTS = ("tp1", "tp2", "tp3")
UNIT_FILES = {
    "tp1": "/etc/containers/systemd/perfsonar-testpoint.container",
    "tp2": "/etc/containers/systemd/perfsonar-testpoint.container",
    "tp3": "/etc/systemd/system/perfsonar-testpoint.service",
}

pytestmark = pytest.mark.e2e
STATE: dict[str, Any] = {}


def role_vars(fleet: Fleet, deb: Path, registry_host: str, **more: Any) -> dict[str, Any]:
    return {
        "psquadlet_package": str(deb),
        "psquadlet_image": f"{registry_host}/{TAG}",
        "psquadlet_registries": {registry_host: {"tls_verify": False}},
        # The watcher runs, but its first scheduled check is a month away: the roll-outs
        # below are the playbook's alone.
        "psquadlet_update": {"interval": "30d", "randomized_delay": "0s", "health_timeout": "45s"},
        # The preset's health check with test-sized times (its minutes would only be slow).
        "psquadlet_container_extra": {
            "health": {"interval": "2s", "timeout": "2s", "start_period": "30s"}
        },
        "psquadlet_psconfig_remotes": [{"url": "https://psconfig.invalid/fleet.json"}],
        **more,
    }


def sha(fleet: Fleet, host: str, path: str) -> str:
    p = fleet.hosts[host].path(path)
    return hashlib.sha256(p.read_bytes()).hexdigest() if p.exists() else ""


def healthy(fleet: Fleet, host: str) -> bool:
    res = fleet.hosts[host].podman(
        "exec", UNIT, "pscheduler", "troubleshoot", "--quick", check=False
    )
    return res.returncode == 0


def test_role_installs_starts_and_is_idempotent(
    fleet: Fleet, standins: StandIns, deb_path: Path
) -> None:
    v1 = standins.push("systemd", "1.0", TAG)
    STATE["v1"] = v1
    variables = role_vars(fleet, deb_path, standins.registry.host)
    started = time.monotonic()
    first = fleet.play(SITE, variables)
    print(f"[fleet] first role run: {time.monotonic() - started:.1f}s")
    assert first.rc == 0, first.output[-6000:]
    for host in HOSTS:
        assert first.changed(host) > 0
        tb = fleet.hosts[host]
        assert tb.run(["dpkg-query", "-W", "psquadlet"]).returncode == 0  # the .deb, not pip
        assert tb.path(UNIT_FILES[host]).is_file(), host
        tb.wait_for(lambda h=host: healthy(fleet, h), 120, f"{host}'s testpoint")
        assert (
            tb.systemctl("is-active", "psquadlet-watch.service", check=False).stdout.strip()
            == "active"
        ), tb.journal("psquadlet-watch.service")[-3000:]
    assert digests(fleet, UNIT) == dict.fromkeys(HOSTS, v1)

    started = time.monotonic()
    second = fleet.play(SITE, variables)
    print(f"[fleet] second role run: {time.monotonic() - started:.1f}s")
    assert second.rc == 0, second.output[-6000:]
    assert {h: second.changed(h) for h in HOSTS} == dict.fromkeys(HOSTS, 0), second.output[-6000:]

    before = {h: (sha(fleet, h, CONFIG), sha(fleet, h, UNIT_FILES[h])) for h in HOSTS}
    changed_var = role_vars(
        fleet,
        deb_path,
        standins.registry.host,
        psquadlet_lookup_service={"site_name": "Fleet test site"},
    )
    dry = fleet.play(SITE, changed_var, check=True, diff=True)
    assert dry.rc == 0, dry.output[-6000:]
    for host in HOSTS:
        assert dry.changed(host) > 0, dry.output[-6000:]
    assert "Fleet test site" in dry.output  # the diff of the configuration
    assert {h: (sha(fleet, h, CONFIG), sha(fleet, h, UNIT_FILES[h])) for h in HOSTS} == before
    assert digests(fleet, UNIT) == dict.fromkeys(HOSTS, v1)


def test_good_image_rolls_out_wave_by_wave(fleet: Fleet, standins: StandIns) -> None:
    v2 = standins.push("systemd", "2.0", TAG)
    STATE["v2"] = v2
    started = time.monotonic()
    res = fleet.play(UPGRADE)
    print(f"[fleet] good roll-out: {time.monotonic() - started:.1f}s")
    assert res.rc == 0, res.output[-6000:]
    assert digests(fleet, UNIT) == dict.fromkeys(HOSTS, v2)
    # One wave after the other: tp1, then tp2, then tp3, each upgraded from v1 to v2.
    ups = {h: fleet.status(h, UNIT)["last_upgrade"] for h in HOSTS}
    for h in HOSTS:
        assert (ups[h]["from_digest"], ups[h]["to_digest"]) == (STATE["v1"], v2), ups
    assert ups["tp1"]["time"] <= ups["tp2"]["time"] <= ups["tp3"]["time"], ups
    assert res.output.index("tp1") < res.output.index("tp2") < res.output.index("tp3")


def test_bad_image_stops_at_the_canary_and_is_blocked_everywhere(
    fleet: Fleet, standins: StandIns
) -> None:
    v2 = STATE["v2"]
    bad = standins.push("systemd", "3.0", TAG, broken=True)
    started = time.monotonic()
    res = fleet.play(UPGRADE)
    print(f"[fleet] bad roll-out: {time.monotonic() - started:.1f}s")
    assert res.rc != 0, res.output[-6000:]
    # The canary tried it and rolled back; the play ended after the first wave.
    assert fleet.status("tp1", UNIT)["last_rollback"]["from_digest"] == bad
    assert res.recap["tp1"]["failed"] == 1, res.output[-6000:]
    assert "PLAY RECAP" in res.output
    assert "tp3 " not in res.output.split("PLAY RECAP")[1]
    # The others never took it and still run the good image; each one's watcher skips it.
    assert digests(fleet, UNIT) == dict.fromkeys(HOSTS, v2)
    for h in HOSTS:
        blocked = {b["digest"]: b for b in fleet.status(h, UNIT)["blocked"]}
        assert bad in blocked, (h, blocked)
    for h in ("tp2", "tp3"):
        assert fleet.status(h, UNIT)["blocked"][0]["source"] == "operator"
        assert healthy(fleet, h)
