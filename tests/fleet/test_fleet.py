"""Issue 14: a fleet of three booted hosts run by the collection over a real connection.

tp1 (the canary) and tp2 are Debian 13 (systemd 257, Podman 5.4, Quadlet), tp3 is Debian 12
(systemd 252, Podman 4.3.1: the `.service` format). Ansible reaches each through
`community.docker.nsenter`; each host installs the .deb. The scenarios run in order on the
same hosts: the role, then a good roll-out, then a bad one.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Any

import pytest

from tests.support.fleet import AfterTask, Fleet, digests
from tests.support.images import StandIns

HERE = Path(__file__).parent
SITE = HERE / "site.yml"
PLAYBOOKS = Path(__file__).resolve().parents[2] / "packaging/ansible/playbooks"
UPGRADE = PLAYBOOKS / "upgrade.yml"
REPORT = PLAYBOOKS / "report.yml"
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


RECORD = "Record the digest the canary passed, for the waves after it"


def _moving_tag_rollout(
    fleet: Fleet,
    standins: StandIns,
    passed: str,
    moved: str,
    canary: str,
    **play: Any,
) -> tuple[str, Any]:
    """A roll-out of *passed* (the tag's image now) during which the tag moves to the new
    image *moved* right after *canary* passed."""
    after = {}

    def move_the_tag() -> None:
        after["digest"] = standins.push("systemd", moved, TAG)

    hook = AfterTask(fleet.workdir / "after-canary", canary, RECORD, move_the_tag)
    started = time.monotonic()
    res = hook.play(fleet, UPGRADE, **play)
    print(f"[fleet] roll-out {play.get('extra_vars')}: {time.monotonic() - started:.1f}s")
    assert hook.ran, res.output[-6000:]
    assert after["digest"] != passed
    return after["digest"], res


def test_later_waves_take_the_canarys_digest_when_the_tag_moves(
    fleet: Fleet, standins: StandIns
) -> None:
    """Issue 20 §1: waves [1, 1, "100%"], the canary first in the inventory; the tag moves
    to an untested image once the canary passed: every later host ends on the canary's."""
    before = digests(fleet, UNIT)
    # --check first: every wave a dry run, the later ones with --digest (was refused).
    passed = standins.push("systemd", "4.0", TAG)
    dry = fleet.play(UPGRADE, {"psquadlet_waves": [1, 1, "100%"]}, check=True)
    assert dry.rc == 0, dry.output[-6000:]
    assert {h: dry.recap[h]["failed"] for h in HOSTS} == dict.fromkeys(HOSTS, 0), dry.output
    assert digests(fleet, UNIT) == before

    moved, res = _moving_tag_rollout(
        fleet, standins, passed, "5.0", "tp1", extra_vars={"psquadlet_waves": [1, 1, "100%"]}
    )
    assert res.rc == 0, res.output[-6000:]
    assert digests(fleet, UNIT) == dict.fromkeys(HOSTS, passed), (moved, res.output[-6000:])
    for h in ("tp2", "tp3"):
        assert fleet.status(h, UNIT)["last_upgrade"]["to_digest"] == passed


def test_the_canary_need_not_be_first_in_the_inventory(fleet: Fleet, standins: StandIns) -> None:
    """Waves [1, "100%"], the canary (tp3, the Debian 12 host) last in [testpoints] and
    first of the play through the pattern "canary:testpoints"."""
    passed = standins.push("systemd", "6.0", TAG)
    moved, res = _moving_tag_rollout(
        fleet,
        standins,
        passed,
        "7.0",
        "tp3",
        extra_vars={"psquadlet_waves": [1, "100%"], "psquadlet_hosts": "canary:testpoints"},
        order=("tp1", "tp2", "tp3"),
        groups={"canary": ["tp3"]},
    )
    assert res.rc == 0, res.output[-6000:]
    assert digests(fleet, UNIT) == dict.fromkeys(HOSTS, passed), (moved, res.output[-6000:])
    ups = {h: fleet.status(h, UNIT)["last_upgrade"] for h in HOSTS}
    assert ups["tp3"]["time"] <= ups["tp1"]["time"], ups
    assert ups["tp3"]["time"] <= ups["tp2"]["time"], ups
    STATE["v6"] = passed


def test_the_morning_report_puts_what_needs_attention_first(fleet: Fleet) -> None:
    """Issue 20 §4: report.yml, one table and one JSON file for the whole fleet."""
    fleet.hosts["tp2"].systemctl("stop", f"{UNIT}.service")
    fleet.hosts["tp1"].run(["psquadlet", "pin", UNIT, "--reason", "site visit"])
    out = fleet.workdir / "report.json"
    try:
        res = fleet.play(REPORT, {"psquadlet_report_path": str(out)})
        assert res.rc == 0, res.output[-6000:]
        rows = json.loads(out.read_text())["rows"]
        assert [r["host"] for r in rows] == ["tp2", "tp1", "tp3"], rows
        assert {r["container"] for r in rows} == {UNIT}
        assert "not running" in rows[0]["attention"], rows[0]
        assert "pinned" in rows[1]["attention"], rows[1]
        for row in rows:
            assert row["blocked_count"] >= 1, row  # the bad image, blocked fleet-wide
        assert rows[1]["digest"] == rows[2]["digest"] == STATE["v6"]
        assert rows[1]["image"].endswith(TAG), rows[1]
        # The table: a header and one line per container, in the same order.
        table = res.output[res.output.index("HOST") :]
        assert [line.split()[0].strip('"') for line in table.splitlines()[1:4]] == [
            "tp2",
            "tp1",
            "tp3",
        ], table[:2000]
    finally:
        fleet.hosts["tp1"].run(["psquadlet", "unpin", UNIT])
        fleet.hosts["tp2"].systemctl("start", f"{UNIT}.service")
